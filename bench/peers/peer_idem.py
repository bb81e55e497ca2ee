"""Peer of bench_idem (bench/bench_idem.cpp): one iDEM (and one IW-SM) inner step, and one reverse-SDE
sampling pass, per target (idem_iwsm.md).

Inner step, as jarridrb/DEM runs it: x0 from a full replay buffer (10000 rows, uniform with replacement),
t ~ U(0, 1), x_t = x0 + sqrt(h(t)) z (mean-free z for particles), the Monte Carlo noisy score S_K(x_t) with K
energy evaluations per point (y_i = x_t + sigma_t eps_i; logsumexp of -E(y_i), gradient by autograd:
DEM's log-expectation and its x-gradient), clipped; loss = mean_b lambda(t_b) mean_dim (s_theta(x_t, t) -
S_K)^2; backward, gradient-norm clip 0.5, Adam step. IW-SM (no public code; the reconstruction of the spec)
re-weights the batch by softmax(log p~ - log p^B) with p^B the buffer convolved with N(0, sigma_t^2 I).
Networks: the residual MLP (3 blocks x 128) for GMM-40, the EGNN (SiLU, 128 wide) for LJ-13.

The settings mirror bench_idem as it runs: K from --cases (gmm40:500, lj13:1000), batch 512, and for every
target the GMM-40 config it hard-codes (sigma 1e-5 .. 1 in units x / 50, clip 70, lambda = h + 1e-3,
lr 5e-4; IdemConfig's EGNN 3 layers). --config paper uses configs/idem/<target>.json instead
(LJ-13: sigma 0.01 .. 2, clip 20 per particle, lambda = 1, EGNN 5 layers, no coordinate scaling); then the
lines no longer pair with bench_idem's.

Reverse SDE (bench_idem's second line): n samples from N(0, sigma(1)^2 I) through `steps` Euler-Maruyama
steps x += g^2 s_theta dt + eta g sqrt(dt) z, no gradients.

torch.compile: the S_K chunk (energy, logsumexp and its gradient by torch.func), the loss (network forward;
its backward is the compiled backward) and the reverse-SDE step are compiled; Adam and the clip run eagerly.

  python3 bench/peers/peer_idem.py [--device cuda] [--cases gmm40:500,lj13:1000] [--quick]
"""
from __future__ import annotations

import math

import torch

import common as C
from nets import EGNN, ResidualMLP

# bench_idem's settings (IdemConfig defaults + its coordinate scale), and configs/idem/*.json ("paper").
BENCH = {"sigma_min": 1e-5, "sigma_max": 1.0, "clip": 70.0, "eta": 1.0, "lambda_h": True, "lr": 5e-4,
         "coord_scale": 50.000005, "coord_shift": 0.000005, "egnn_layers": 3}
PAPER = {
    "gmm40": dict(BENCH),
    "lj13": {"sigma_min": 0.01, "sigma_max": 2.0, "clip": 20.0, "eta": 0.9, "lambda_h": False, "lr": 1e-3,
             "coord_scale": 1.0, "coord_shift": 0.0, "egnn_layers": 5},
}


class Idem:
    def __init__(self, target, K, cfg, impl, device, hidden=128, buffer_rows=10000):
        self.t, self.K, self.cfg, self.dev = target, K, cfg, device
        self.d = target.dim
        self.smin, self.smax = cfg["sigma_min"], cfg["sigma_max"]
        self.ld = math.log(self.smax / self.smin)
        self.a, self.b = cfg["coord_scale"], cfg["coord_shift"]
        if target.n > 0:
            self.net = EGNN(target.n, target.D, hidden, cfg["egnn_layers"], torch.nn.SiLU).to(device)
        else:
            self.net = ResidualMLP(self.d, hidden, 3, 128).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"])
        # A full buffer (its contents do not change the work): prior-like samples in normalised units.
        self.buffer = self.mf(torch.randn(buffer_rows, self.d, device=device) * self.sigma_f(1.0))
        self.d_eff = (target.n - 1) * target.D if target.n > 0 else self.d
        self.sk = C.make_mc_score_fn(target, K, cfg["clip"] / self.a, impl)

        def loss_fn(t, yt, target_score, coef):
            r = self.net(t[:, None], yt) - target_score
            return (coef * (r * r).sum(-1)).sum()

        def log_p_buffer(yt, sigma):
            sq = torch.cdist(yt, self.buffer) ** 2  # [B, M]
            return torch.logsumexp(-sq / (2 * sigma[:, None] ** 2), dim=1) - math.log(self.buffer.shape[0]) \
                - 0.5 * self.d_eff * torch.log(2 * math.pi * sigma ** 2)

        def sde_step(y, t, z, dt):
            g = self.smin * torch.exp(t * self.ld) * math.sqrt(2 * self.ld)
            s = self.net(t.expand(y.shape[0], 1), y)
            return self.mf(y + g * g * s * dt + cfg["eta"] * g * torch.sqrt(dt) * z)

        self.loss_fn = C.compiled(loss_fn, impl)
        self.log_p_buffer = C.compiled(log_p_buffer, impl)
        self.sde_step = C.compiled(sde_step, impl)

    def mf(self, x):
        return C.mean_free(x, self.t)

    def sigma_f(self, t: float) -> float:
        return math.sqrt(self.smin ** 2 * math.expm1(2 * t * self.ld))

    def inner_step(self, B, iwsm: bool):
        y0 = self.buffer[torch.randint(0, self.buffer.shape[0], (B,), device=self.dev)]
        t = torch.rand(B, device=self.dev)
        h = self.smin ** 2 * torch.expm1(2 * t * self.ld)
        sigma = torch.sqrt(h)
        yt = y0 + sigma[:, None] * self.mf(torch.randn(B, self.d, device=self.dev))
        with torch.no_grad():
            s, log_p = C.mc_score(self.sk, self.a * yt + self.b, self.a * sigma, B)
            s = self.mf(self.a * s)  # the score in normalised units
            lam = (h + 1e-3) if self.cfg["lambda_h"] else torch.ones_like(h)
            if iwsm:
                w = torch.softmax(log_p - self.log_p_buffer(yt, sigma), dim=0)
            else:
                w = torch.full_like(h, 1.0 / B)
            coef = lam * w / self.d
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(t, yt, s, coef)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 0.5)
        self.opt.step()
        return loss

    @torch.no_grad()
    def reverse_sde(self, n, steps):
        y = self.mf(torch.randn(n, self.d, device=self.dev) * self.sigma_f(1.0))
        dt = 1.0 / steps
        dtt = torch.full((1, 1), dt, device=self.dev)
        for k in range(steps):
            t = torch.full((1, 1), 1.0 - k * dt, device=self.dev)
            y = self.sde_step(y, t, self.mf(torch.randn_like(y)), dtt)
        return y


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--cases", default="gmm40:500,lj13:1000", help="TARGET:K,... (bench_idem runs one each)")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--methods", default="idem,iwsm")
    p.add_argument("--sde-samples", type=int, default=1000)
    p.add_argument("--sde-steps", default="1000", help="one value, or TARGET:STEPS,... (0: no reverse SDE)")
    p.add_argument("--config", default="bench", choices=["bench", "paper"])
    args = p.parse_args(argv)
    if args.quick:
        args.cases = ",".join(f"{c.split(':')[0]}:4" for c in C.split(args.cases))
        args.batch, args.sde_samples, args.sde_steps = 8, 4, "2"
    reps = args.reps or (2 if args.quick else 5)  # bench_idem times an epoch of 5 inner steps
    warmup = args.warmup or 2
    dev = C.setup(args)
    emit = C.Emitter(args, "idem", dev)
    sde_steps = {}
    for item in C.split(args.sde_steps):
        if ":" in item:
            k, v = item.split(":")
            sde_steps[k] = int(v)
        else:
            sde_steps["*"] = int(item)
    for case in C.split(args.cases):
        name, K = case.split(":")
        K = int(K)
        target = C.make_target(name, dev)
        cfg = BENCH if args.config == "bench" else PAPER[name]
        for impl in C.split(args.impls):
            C.reset_compiler()
            torch.manual_seed(args.seed)
            state = {}

            def sampler():
                if "s" not in state:
                    state["s"] = Idem(target, K, cfg, impl, dev)
                return state["s"]

            extra = {"config": args.config}
            if target.n > 0:
                extra["egnn_layers"] = cfg["egnn_layers"]
            for method in C.split(args.methods):
                def body():
                    s = sampler()
                    r = C.timed(lambda: s.inner_step(args.batch, method == "iwsm"), reps, warmup, dev)
                    r["steps_per_s"] = 1e3 / r["ms"]
                    return r

                rec = {"bench": "idem_inner_step", "impl": impl, "method": method, "target": name,
                       "device": C.device_name(dev), "batch": args.batch, "K": K, "buffer": 10000, **extra}
                C.run_case(emit, rec, body)
            steps = sde_steps.get(name, sde_steps.get("*", 0))
            if steps > 0:
                def body_sde():
                    s = sampler()
                    s.reverse_sde(args.sde_samples, 3)  # warm-up: compiles the step
                    return C.timed(lambda: s.reverse_sde(args.sde_samples, steps), 1, 0, dev)

                rec = {"bench": "idem_reverse_sde", "impl": impl, "target": name, "device": C.device_name(dev),
                       "samples": args.sde_samples, "steps": steps, **extra}
                C.run_case(emit, rec, body_sde)
            state.clear()
            if dev.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
