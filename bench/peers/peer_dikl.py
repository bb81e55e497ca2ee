"""Peer of bench_dikl (bench/bench_dikl.cpp): one full DiKL iteration at the paper's MoG-40 settings
(dikl.md): batch 1024, 50 DSM steps of the score network per generator step, generator and score network
4 x 400, the posterior estimate of the target's noisy score with 10 proposals x 15 AIS levels (one HMC
leapfrog step of size 1.0 per level, Metropolis-adjusted) and 5 MALA steps (eta 0.01), the generator's VJP
step with gradient-norm clip 10; Adam (lr 1e-4 score, 1e-3 generator). Timed per phase like nsamp: DSM
steps, posterior, generator step.

Written as jiajunhe98/DiKL runs it: torch.nn networks, torch.optim.Adam, energy gradients by autograd, the
AIS/MALA chains as batched tensor code over B * n_is chains. torch.compile: the DSM loss, the generator,
the score network's forward and one AIS level / one MALA step (energy, gradient by torch.func, proposal,
Metropolis test) are compiled; the loops, Adam and the clip run in eager.

  python3 bench/peers/peer_dikl.py [--device cuda] [--batch 1024] [--score-iter 50] [--width 400] [--quick]
"""
from __future__ import annotations

import math
import time

import torch

import common as C
from nets import ConditionalMLP, mlp


def schedule(start=1e-4, end=0.7, levels=30):
    beta = torch.linspace(start, end, levels, dtype=torch.float64)
    abar = torch.cumprod(1 - beta, 0)
    return abar.sqrt().float(), (1 - abar).sqrt().float()


class Dikl:
    def __init__(self, target, width, device, impl, n_is=10, ais_levels=15, hmc_step=1.0, mala_steps=5,
                 mala_step=0.01):
        d = target.dim
        self.t, self.d, self.dev = target, d, device
        self.gen = mlp([d, width, width, width, width, d]).to(device)  # 4 x (Linear + SiLU), linear out
        self.score = ConditionalMLP(d, width, 4, 30.0).to(device)
        self.gen_opt = torch.optim.Adam(self.gen.parameters(), lr=1e-3)
        self.score_opt = torch.optim.Adam(self.score.parameters(), lr=1e-4)
        alpha, sigma = schedule()
        self.alpha, self.sigma = alpha.to(device), sigma.to(device)
        self.weight = 1.0 / self.alpha
        self.levels = 30
        self.n_is, self.K, self.h, self.mala_steps, self.eta = n_is, ais_levels, hmc_step, mala_steps, mala_step
        mode = C.grad_mode(impl)
        E = target.energy

        def dsm_loss(x, t, eps):
            a, s = self.alpha[t][:, None], self.sigma[t][:, None]
            xt = a * x + s * eps
            r = eps + s * self.score(t[:, None].float(), xt)
            return (r * r).sum(-1).mean()

        def ais_level(x, e, g, xt, a, c, beta, p0, log_u):
            """One HMC leapfrog step (step h) on U_beta = beta E + c |xt - a x|^2, from the state (x, E, grad E);
            Metropolis-adjusted. Returns the new state."""
            h = self.h

            def U(z, ez, gz):
                r = xt - a * z
                return beta * ez + c[:, 0] * (r * r).sum(-1), beta * gz - 2 * c * a * r

            u0, gu0 = U(x, e, g)
            p = p0 - 0.5 * h * gu0
            y = x + h * p
            ey, gy = C.value_and_grad(E, y, mode)
            u1, gu1 = U(y, ey, gy)
            p = p - 0.5 * h * gu1
            log_acc = u0 - u1 + 0.5 * ((p0 * p0).sum(-1) - (p * p).sum(-1))
            ok = (log_u < log_acc)[:, None]
            return torch.where(ok, y, x), torch.where(ok[:, 0], ey, e), torch.where(ok, gy, g)

        def mala(x, e, g, xt, a, c, xi, log_u):
            """One MALA step (eta) on U_1 = E + c |xt - a x|^2."""
            eta = self.eta

            def U(z, ez, gz):
                r = xt - a * z
                return ez + c[:, 0] * (r * r).sum(-1), gz - 2 * c * a * r

            u0, gu0 = U(x, e, g)
            y = x - eta * gu0 + math.sqrt(2 * eta) * xi
            ey, gy = C.value_and_grad(E, y, mode)
            u1, gu1 = U(y, ey, gy)
            fwd = y - x + eta * gu0  # log q(y | x) = -|fwd|^2 / (4 eta)
            bwd = x - y + eta * gu1
            log_acc = u0 - u1 - ((bwd * bwd).sum(-1) - (fwd * fwd).sum(-1)) / (4 * eta)
            ok = (log_u < log_acc)[:, None]
            return torch.where(ok, y, x), torch.where(ok[:, 0], ey, e), torch.where(ok, gy, g)

        def eg(x):
            return C.value_and_grad(E, x, mode)

        self.dsm_loss = C.compiled(dsm_loss, impl)
        self.ais_level = C.compiled(ais_level, impl)
        self.mala = C.compiled(mala, impl)
        self.eg = C.compiled(eg, impl)
        self.gen_fwd = C.compiled(self.gen, impl)
        self.score_fwd = C.compiled(self.score, impl)

    def draw_t(self, B):
        return torch.randint(1, self.levels, (B,), device=self.dev)

    def posterior(self, xt, a, s):
        """Mixed-score estimate s_d = a (mean x0 + mean grad log p_d(x0)) - x_t (a, s [B, 1])."""
        B, n = xt.shape[0], self.n_is
        xt_r, a_r, s_r = xt.repeat_interleave(n, 0), a.repeat_interleave(n, 0), s.repeat_interleave(n, 0)
        c_r = 0.5 / (s_r * s_r)
        x = torch.clamp(xt_r / a_r + s_r / a_r * torch.randn_like(xt_r), -1000.0, 1000.0)
        e, g = self.eg(x)
        log_w = torch.zeros(B * n, device=xt.device)
        for k in range(1, self.K + 1):
            log_w = log_w - e / self.K
            beta = torch.full((1,), k / self.K, device=xt.device)
            p0 = torch.randn_like(x)
            log_u = torch.log(torch.rand(B * n, device=xt.device))
            x, e, g = self.ais_level(x, e, g, xt_r, a_r, c_r, beta, p0, log_u)
        gumbel = -torch.log(-torch.log(torch.rand(B, n, device=xt.device)))
        pick = torch.argmax(log_w.view(B, n) + gumbel, dim=1)
        rows = torch.arange(B, device=xt.device) * n + pick
        x, e, g = x[rows], e[rows], g[rows]
        c = 0.5 / (s * s)
        for _ in range(self.mala_steps):
            x, e, g = self.mala(x, e, g, xt, a, c, torch.randn_like(x), torch.log(torch.rand(B, device=xt.device)))
        return a * (x - g) - xt  # averaged over the last 1 state: x0 and grad log p_d = -grad E

    def iteration(self, B, score_iter, marks):
        d = self.d
        for _ in range(score_iter):
            with torch.no_grad():
                x = self.gen_fwd(torch.randn(B, d, device=self.dev))
            t = self.draw_t(B)
            self.score_opt.zero_grad(set_to_none=True)
            loss = self.dsm_loss(x, t, torch.randn(B, d, device=self.dev))
            loss.backward()
            self.score_opt.step()
        marks.append(self.event())
        t = self.draw_t(B)
        a, s = self.alpha[t][:, None], self.sigma[t][:, None]
        self.gen_opt.zero_grad(set_to_none=True)
        xt = a * self.gen_fwd(torch.randn(B, d, device=self.dev)) + s * torch.randn(B, d, device=self.dev)
        with torch.no_grad():
            sd = self.posterior(xt.detach(), a, s)
        marks.append(self.event())
        with torch.no_grad():
            cot = self.weight[t][:, None] * (self.score_fwd(t[:, None].float(), xt.detach()) - sd)
        loss = (cot * xt).sum(-1).mean()
        if torch.isfinite(loss):  # DiKL skips a non-finite step (this check synchronises, as nsamp's does)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.gen.parameters(), 10.0)
            self.gen_opt.step()
        marks.append(self.event())

    def event(self):
        if self.dev.type == "cuda":
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--target", default="gmm40")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--score-iter", type=int, default=50)
    p.add_argument("--width", type=int, default=400)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.score_iter, args.width = 8, 2, 16
    reps = args.reps or (2 if args.quick else 3)
    warmup = args.warmup or 2
    dev = C.setup(args)
    emit = C.Emitter(args, "dikl", dev)
    target = C.make_target(args.target, dev)
    for impl in C.split(args.impls):
        C.reset_compiler()
        torch.manual_seed(args.seed)

        def body():
            s = Dikl(target, args.width, dev, impl)
            t0 = time.perf_counter()
            for _ in range(warmup):
                s.iteration(args.batch, args.score_iter, [])
            C.sync(dev)
            first = time.perf_counter() - t0
            before = C.compile_count()
            marks = [s.event()]
            for _ in range(reps):
                s.iteration(args.batch, args.score_iter, marks)
            C.sync(dev)

            def span(m0, m1):
                return m0.elapsed_time(m1) if dev.type == "cuda" else (m1 - m0) * 1e3

            phase = [0.0, 0.0, 0.0]
            for r in range(reps):
                for k in range(3):
                    phase[k] += span(marks[3 * r + k], marks[3 * r + k + 1]) / reps
            ms = span(marks[0], marks[-1]) / reps
            return {"ms": ms, "iterations_per_s": 1e3 / ms, "score_ms": phase[0], "posterior_ms": phase[1],
                    "generator_ms": phase[2], "warmup_s": round(first, 3),
                    "recompiled": C.compile_count() != before}

        rec = {"bench": "dikl_iteration", "impl": impl, "target": args.target, "device": C.device_name(dev),
               "dtype": "float32", "batch": args.batch, "score_iter": args.score_iter, "width": args.width,
               "n_is": 10, "ais_levels": 15, "mala_steps": 5}
        C.run_case(emit, rec, body)


if __name__ == "__main__":
    main()
