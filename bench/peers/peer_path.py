"""Peer of bench_path (bench/bench_path.cpp): one path-sampler training step, loss and gradient, no
optimiser, for PIS and DIS with the log-variance (lv) and KL losses, at the paper's size (batch 2048, 200
Euler-Maruyama steps, FourierMLP and TimeNet 64 wide) on gmm9.

Written the way juliusberner/sde_sampler runs it (path_samplers.md gives the formulas): a Python loop over
the time steps; each step evaluates the control u = clip(NN(t, x)) + score * clip(NN_t(t)) with the target
score by autograd (detached), adds the running cost and the Ito term to the log-RND R and advances
x' = decay x + sigma (dt w + dW). lv: w = stopgrad(u), so the paths carry no gradient and the graph holds
each step's network evaluation; loss = unbiased variance of R / d, one backward at the end. kl: w = u,
backpropagation through the whole path; loss = mean(R) / d. Paths with R >= 1e8 (lv) or non-finite R (kl)
are masked out of the loss (masks, not boolean indexing, so nothing synchronises).

nsamp does lv in two passes (R without a graph, then the same paths again with each step backpropagated on
its own, O(1) memory in the steps); sde_sampler keeps one graph for the whole path. Both give the same
gradient; the memory differs (peak_mib).

torch.compile: the step function (networks, score, cost, update) is compiled once (the time enters as a
tensor, so all steps share one graph); the loop, the terminal term and backward run as in eager.

  python3 bench/peers/peer_path.py [--device cuda] [--methods pis,dis] [--losses lv,kl] [--quick]
"""
from __future__ import annotations

import math

import torch

import common as C
from nets import FourierMLP, TimeNet

LOG2PI = math.log(2 * math.pi)


class PathStep(torch.nn.Module):
    """One Euler-Maruyama step of PIS or DIS with its contribution to R."""

    def __init__(self, target, method: str, loss: str, steps: int, impl: str, clip: float = 10.0):
        super().__init__()
        d = target.dim
        self.target, self.method, self.loss, self.clip = target, method, loss, clip
        self.T = 5.0 if method == "pis" else 1.0
        self.dt = self.T / steps
        self.nn = FourierMLP(d, 64, 2, zero_init=True)
        self.nt = TimeNet(64, 1, 3)
        self.mode = C.grad_mode(impl)
        self.beta_min, self.beta_max, self.pis_sigma = 0.1, 10.0, math.sqrt(0.2)

    def forward(self, x, R, t):
        """x [B, d], R [B], t a [1, 1] tensor (the left point of the step)."""
        dt, clip = self.dt, self.clip
        _, g = C.value_and_grad(self.target.log_prob, x.detach(), self.mode)  # grad log rho, detached
        g = g.detach()
        if self.method == "pis":
            sigma = torch.full_like(t, self.pis_sigma)
            score = torch.clamp(g, -clip, clip)
            decay = 1.0
        else:  # DIS: VP SDE, beta(t) = beta_max + (beta_min - beta_max) t / T
            beta = self.beta_max + (self.beta_min - self.beta_max) * t / self.T
            sigma = torch.sqrt(beta)
            s = t / self.T
            score = sigma * torch.clamp(-(1 - s) * x.detach() + s * g, -clip, clip)
            decay = 1.0 + 0.5 * beta * dt
        u = torch.clamp(self.nn(t, x), -clip, clip) + score * torch.clamp(self.nt(t), -clip, clip)
        dW = math.sqrt(dt) * torch.randn_like(x)
        if self.loss == "lv":
            w = u.detach()
            cost = (u * (w - 0.5 * u)).sum(-1)
            dR = cost * dt + (u * dW).sum(-1)
        else:
            w = u
            dR = 0.5 * (u * u).sum(-1) * dt
            if self.method != "dis":  # DIS's KL training drops the zero-mean Ito term
                dR = dR + (u * dW).sum(-1)
        x_next = decay * x + sigma * (dt * w + dW)
        return x_next, R + dR


def prior(method: str, B: int, d: int, device) -> torch.Tensor:
    if method == "pis":
        return torch.zeros(B, d, device=device)
    a = 3.8905918864131976  # the 1 - 5e-5 quantile of N(0, 1)
    return torch.nn.init.trunc_normal_(torch.empty(B, d, device=device), 0.0, 1.0, -a, a)


def loss_and_grad(step, step_fn, B: int, steps: int, device):
    target, d = step.target, step.target.dim
    x = prior(step.method, B, d, device)
    if step.method == "dis" and step.loss == "lv":
        R = -0.5 * (x * x).sum(-1) - 0.5 * d * LOG2PI  # log N(X_0; 0, I)
    else:
        R = torch.zeros(B, device=device)
    for k in range(steps):
        t = torch.full((1, 1), k * step.dt, device=device)
        x, R = step_fn(x, R, t)
    R = R - target.log_prob(x)  # - log rho(X_N)
    if step.method == "pis":  # + log p_ref(X_N), N(0, sigma^2 T I)
        s2 = step.pis_sigma ** 2 * step.T
        R = R - 0.5 * (x * x).sum(-1) / s2 - 0.5 * d * (LOG2PI + math.log(s2))
    if step.loss == "lv":
        keep = torch.isfinite(R) & (R < 1e8)
        Rm = torch.where(keep, R, torch.zeros_like(R))
        n = keep.sum()
        mean = Rm.sum() / n
        loss = (torch.where(keep, (Rm - mean) ** 2, torch.zeros_like(R))).sum() / (n - 1) / d
    else:
        keep = torch.isfinite(R)
        loss = torch.where(keep, R, torch.zeros_like(R)).sum() / keep.sum() / d
    loss.backward()
    return loss


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--target", default="gmm9")
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--methods", default="pis,dis")
    p.add_argument("--losses", default="lv,kl")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.steps = 8, 2
    reps = args.reps or (2 if args.quick else 3)
    warmup = args.warmup or 2
    dev = C.setup(args)
    emit = C.Emitter(args, "path", dev)
    target = C.make_target(args.target, dev)
    for method in C.split(args.methods):
        for loss in C.split(args.losses):
            for impl in C.split(args.impls):
                C.reset_compiler()
                torch.manual_seed(args.seed)
                step = PathStep(target, method, loss, args.steps, impl).to(dev)
                step_fn = C.compiled(step, impl)

                def one():
                    for q in step.parameters():
                        q.grad = None
                    loss_and_grad(step, step_fn, args.batch, args.steps, dev)

                def body():
                    mem = {}

                    def before():  # nsamp's peak_mib: the high-water mark above what the warm state holds
                        if dev.type == "cuda":
                            mem["base"] = torch.cuda.memory_allocated(dev)
                            torch.cuda.reset_peak_memory_stats(dev)

                    r = C.timed(one, reps, warmup, dev, before)
                    r["path_steps_per_s"] = args.batch * args.steps / (r["ms"] * 1e-3)
                    if dev.type == "cuda":
                        r["peak_mib"] = round((torch.cuda.max_memory_allocated(dev) - mem["base"]) / 2**20, 1)
                    return r

                rec = {"bench": "path_step", "impl": impl, "method": method, "loss": loss,
                       "target": args.target, "device": C.device_name(dev), "dtype": "float32",
                       "batch": args.batch, "steps": args.steps}
                C.run_case(emit, rec, body)


if __name__ == "__main__":
    main()
