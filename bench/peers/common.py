"""Shared helpers of the PyTorch peers: command line, devices, timing, JSON lines, the targets in torch and
iDEM's Monte Carlo noisy score S_K.

The targets follow ../../../shared/spec/targets.md (the same definitions nsamp's targets/ implement; the
peers' energies are checked against nsamp's by check_energies.py). Energies take flat rows x [B, d]
(particle-major for particle systems: x[b, i * D + k]) and return E [B]; gradients come from autograd, as
in the public reference implementations.

Only torch, numpy and the standard library are used (the GPU machine has nothing else).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------
# command line, devices, output


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: auto)")
    p.add_argument("--impls", default="torch_eager,torch_compile",
                   help="comma-separated: torch_eager, torch_compile (default: both)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per case (default: per peer)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed calls before timing (default: per peer; torch.compile compiles in the first)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", default="", help="also append each JSON line to FILE")
    p.add_argument("--deadline", type=float, default=0.0,
                   help="unix time after which remaining cases are skipped (a line with \"skipped\"); 0: none")
    return p


def split(s: str) -> list[str]:
    return [v for v in s.split(",") if v]


def split_ints(s: str) -> list[int]:
    return [int(v) for v in split(s)]


def setup(args) -> torch.device:
    """Seeds, float32 matmul precision (no TF32, as nsamp's default), the device."""
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("highest")  # plain fp32 GEMMs: nsamp's benches run without TF32
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("--device cuda: torch sees no CUDA device")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.allow_tf32 = False
    for impl in split(args.impls):
        if impl not in ("torch_eager", "torch_compile"):
            sys.exit(f"--impls: unknown '{impl}' (valid: torch_eager, torch_compile)")
    return device


def device_name(device: torch.device) -> str:
    """nsamp's spelling: 'cpu' or 'cuda:N'."""
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return "cpu"


class Emitter:
    """One JSON line per case on stdout (flushed) and, with --out FILE, appended to FILE."""

    def __init__(self, args, peer: str, device: torch.device):
        self.peer = peer
        self.deadline = args.deadline
        self.device = device
        self.path = args.out
        self.base = {"peer": peer, "torch": torch.__version__}
        if device.type == "cuda":
            self.base["gpu"] = torch.cuda.get_device_name(device)

    def __call__(self, record: dict) -> None:
        rec = dict(record)
        rec.update({k: v for k, v in self.base.items() if k not in rec})
        line = json.dumps(rec)
        print(line, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def log(*msg) -> None:
    print(*msg, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------------------
# torch.compile helpers and timing


def compiled(fn, impl: str):
    """fn itself (eager) or torch.compile(fn) in the default mode."""
    if impl == "torch_eager":
        return fn
    return torch.compile(fn)  # mode "default"


def reset_compiler() -> None:
    """Forget compiled graphs between cases, so that each case compiles for its own static shapes."""
    try:
        torch._dynamo.reset()
    except Exception:  # pragma: no cover
        pass


def compile_count() -> int:
    """Graphs compiled so far (to detect a recompile inside the timed region)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:  # pragma: no cover
        return -1


def timed(fn, reps: int, warmup: int, device: torch.device, before=None) -> dict:
    """Mean wall time of fn() over `reps` calls after `warmup` calls (torch.compile compiles in the first
    warm-up call; its time is reported as first_call_s). CUDA: torch.cuda.Event around the reps; CPU:
    time.perf_counter. before(), when given, runs after the warm-ups. Returns {"ms", "first_call_s",
    "recompiled"}."""
    sync(device)
    first = 0.0
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        sync(device)
        if i == 0:
            first = time.perf_counter() - t0
    sync(device)
    if before is not None:
        before()
    graphs = compile_count()
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end) / reps
    else:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        ms = (time.perf_counter() - t0) * 1e3 / reps
    return {"ms": ms, "first_call_s": round(first, 3), "recompiled": compile_count() != graphs}


def run_case(emit: Emitter, record: dict, body) -> None:
    """body() -> dict of measured fields merged into record; an exception becomes an "error" line, so
    one failing case (an OOM, a compiler error) does not stop the others. Past --deadline the case is
    skipped (a line with "skipped")."""
    if emit.deadline and time.time() > emit.deadline:
        record["skipped"] = "time budget"
        emit(record)
        return
    try:
        record.update(body())
    except Exception as e:  # noqa: BLE001
        record["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        log(f"[{emit.peer}] case failed: {record}")
        if emit.device.type == "cuda":
            torch.cuda.empty_cache()
    emit(record)


# ---------------------------------------------------------------------------------------------------------
# value and gradient of per-row functions


def value_and_grad(fn, x: torch.Tensor, mode: str = "autograd"):
    """(v, dv/dx) of a per-row function v = fn(x) [B] (rows independent, so d sum(v)/dx is each row's
    gradient). mode "autograd": torch.autograd.grad on a detached leaf (what the reference codes do in
    eager PyTorch); "func": torch.func.grad_and_value, traceable by torch.compile into the caller's graph."""
    if mode == "func":

        def total(z):
            v = fn(z)
            return v.sum(), v

        g, (_, v) = torch.func.grad_and_value(total, has_aux=True)(x)
        return v, g
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        v = fn(xr)
        (g,) = torch.autograd.grad(v.sum(), xr)
    return v.detach(), g


def grad_mode(impl: str) -> str:
    return "func" if impl == "torch_compile" else "autograd"


# ---------------------------------------------------------------------------------------------------------
# targets


def data_dir() -> Path | None:
    """The reference data folder: $NSAMP_DATA_DIR, ../shared/data beside the repository (nsamp's default),
    shared/data inside it, or /work/shared/data."""
    cands = [os.environ.get("NSAMP_DATA_DIR", ""), REPO.parent / "shared" / "data", REPO / "shared" / "data",
             Path("/work/shared/data")]
    for c in cands:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def gmm40_means_array() -> tuple[np.ndarray, str]:
    """The GMM-40 means [40, 2]: data/gmm40_means.csv (its decimals, as nsamp's float64 path reads them), else regenerated from their definition
    (PyTorch CPU generator, manual_seed(0), (rand(40, 2) - 0.5) * 80), which is what the file holds."""
    d = data_dir()
    if d is not None and (d / "gmm40_means.csv").is_file():
        return np.loadtxt(d / "gmm40_means.csv", delimiter=",", comments="#", dtype=np.float64), str(
            d / "gmm40_means.csv")
    g = torch.Generator().manual_seed(0)
    return ((torch.rand(40, 2, generator=g) - 0.5) * 80).numpy(), "torch.manual_seed(0) definition"


def gmm40_means_regenerated() -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    return ((torch.rand(40, 2, generator=g) - 0.5) * 80).numpy()


class Target:
    """A Boltzmann target in torch: energy(x) [B] for x [B, dim]; n, D > 0 for particle systems."""

    name = ""
    dim = 0
    n = 0
    D = 0

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -self.energy(x)

    def has_sampler(self) -> bool:
        return False

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def bench_points(self, n: int, device, dtype=torch.float32) -> torch.Tensor:
        """nsamp's benchmark inputs: exact samples where the target has a sampler, else Gaussian points of a
        physical scale (std 1.5 for particle systems, 1 otherwise)."""
        if self.has_sampler():
            return self.sample(n).to(device=device, dtype=dtype)
        return torch.randn(n, self.dim, device=device, dtype=dtype) * (1.5 if self.n > 0 else 1.0)


class GMM(Target):
    """Equal-weight isotropic Gaussian mixture, normalised: E = -logsumexp_k log N(x; mu_k, s^2 I) + log K."""

    def __init__(self, name, means: torch.Tensor, std: float):
        self.name = name
        self.means = means
        self.std = float(std)
        self.dim = means.shape[1]

    def to(self, device, dtype):
        return GMM(self.name, self.means.to(device=device, dtype=dtype), self.std)

    def energy(self, x):
        K, d = self.means.shape
        m = self.means.to(dtype=x.dtype, device=x.device)
        sq = ((x[:, None, :] - m[None, :, :]) ** 2).sum(-1)  # [B, K]
        logp = torch.logsumexp(-0.5 / self.std**2 * sq, dim=1) - math.log(K) \
            - 0.5 * d * math.log(2 * math.pi * self.std**2)
        return -logp

    def has_sampler(self):
        return True

    def sample(self, n):
        k = torch.randint(0, self.means.shape[0], (n,), device=self.means.device)
        return self.means[k] + self.std * torch.randn(n, self.dim, device=self.means.device,
                                                      dtype=self.means.dtype)


class PairTarget(Target):
    """Particle systems: pairs i < j by a fixed index list (as the reference codes take the upper triangle)."""

    def __init__(self, name, n, D):
        self.name, self.n, self.D, self.dim = name, n, D, n * D
        self._pairs = {}

    def pairs(self, device):
        key = str(device)
        if key not in self._pairs:
            self._pairs[key] = torch.triu_indices(self.n, self.n, 1, device=device)
        return self._pairs[key]

    def diffs(self, x):
        p = x.reshape(x.shape[0], self.n, self.D)
        ij = self.pairs(x.device)
        return p, p[:, ij[0]] - p[:, ij[1]]  # [B, n, D], [B, P, D]

    def to(self, device, dtype):
        return self


class LennardJones(PairTarget):
    """iDEM's LJ cluster: E = sum over ORDERED pairs of (r~^-12 - 2 r~^-6) (twice the i < j sum), with
    r~ = sqrt(|x_i - x_j|^2 + 1e-6), plus the harmonic term 0.5 sum_i |x_i - mean|^2."""

    def energy(self, x):
        p, d = self.diffs(x)
        r = torch.sqrt((d * d).sum(-1) + 1e-6)  # [B, P]
        inv6 = (1.0 / r) ** 6
        lj = 2.0 * (inv6 * inv6 - 2.0 * inv6).sum(-1)
        c = p - p.mean(dim=1, keepdim=True)
        return lj + 0.5 * (c * c).sum((-2, -1))


class DoubleWell(PairTarget):
    """DW-4 (bgflow MultiDoubleWell): sum_{i<j} a (r - d0)^4 + b (r - d0)^2 + c, r = |x_i - x_j|."""

    a, b, c, d0 = 0.9, -4.0, 0.0, 4.0

    def energy(self, x):
        _, d = self.diffs(x)
        r = torch.sqrt((d * d).sum(-1)) - self.d0
        r2 = r * r
        return (self.a * r2 * r2 + self.b * r2 + self.c).sum(-1)


def grid9_means() -> np.ndarray:
    return np.array([[a, b] for a in (-5.0, 0.0, 5.0) for b in (-5.0, 0.0, 5.0)], dtype=np.float64)


def make_target(name: str, device=torch.device("cpu"), dtype=torch.float32) -> Target:
    if name == "gmm40":
        m, _ = gmm40_means_array()
        return GMM(name, torch.tensor(m, dtype=dtype, device=device), math.log1p(math.e))  # softplus(1)
    if name == "gmm9":
        return GMM(name, torch.tensor(grid9_means(), dtype=dtype, device=device), math.sqrt(0.3))
    if name == "lj13":
        return LennardJones(name, 13, 3)
    if name == "lj55":
        return LennardJones(name, 55, 3)
    if name == "dw4":
        return DoubleWell(name, 4, 2)
    raise SystemExit(f"unknown target '{name}' (peers know gmm40, gmm9, lj13, lj55, dw4)")


def mean_free(x: torch.Tensor, t: Target) -> torch.Tensor:
    """Removes each sample's centre of mass (particle systems); other targets unchanged."""
    if t.n == 0:
        return x
    p = x.reshape(x.shape[0], t.n, t.D)
    return (p - p.mean(dim=1, keepdim=True)).reshape(x.shape)


# ---------------------------------------------------------------------------------------------------------
# iDEM's Monte Carlo noisy score


def clip_score(s: torch.Tensor, max_norm: float, particle_dim: int) -> torch.Tensor:
    """s min(1, max / (|s| + 1e-6)): |s| per particle (particle_dim = D) or over the whole vector (0)."""
    if max_norm <= 0:
        return s
    if particle_dim > 0:
        v = s.reshape(s.shape[0], -1, particle_dim)
        n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        return (v * torch.clamp(max_norm / (n + 1e-6), max=1.0)).reshape(s.shape)
    n = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
    return s * torch.clamp(max_norm / (n + 1e-6), max=1.0)


def mc_chunk(B: int, K: int, t: Target, budget: int) -> int:
    """Points per S_K chunk: B itself while the [points * K, pairs (or components), D] intermediates stay
    under `budget` elements, else the largest power-of-two divisor of B that does (so every chunk has the
    same static shape). LJ-55 at K = 1000 needs chunks; the rest runs whole."""
    per_sample = (t.n * (t.n - 1) // 2) * t.D if t.n > 0 else (t.means.shape[0] * t.dim)
    if B * K * per_sample <= budget:
        return B
    c = B
    while c > 1 and (c % 2 == 0) and c * K * per_sample > budget:
        c //= 2
    return c


def make_mc_lse(t: Target, K: int):
    """lse(x, sigma) = logsumexp_i(-E(x + sigma eps_i)) over K fresh normals per point, [B]: DEM's
    log-expectation whose x-gradient is S_K = sum_i softmax_i(-E(y_i)) (-grad E(y_i))."""

    def lse(x, sigma):
        B, d = x.shape
        eps = torch.randn(B, K, d, device=x.device, dtype=x.dtype)
        y = x[:, None, :] + sigma[:, None, None] * eps
        l = -t.energy(y.reshape(B * K, d)).reshape(B, K)
        return torch.logsumexp(l, dim=1)

    return lse


def make_mc_score_fn(t: Target, K: int, clip: float, impl: str):
    """f(x, sigma) -> (S_K(x) clipped [B, d], log p~(x) = lse - log K [B]) for one chunk of points: the
    gradient by autograd (eager) or, under torch.compile, by torch.func inside the compiled graph."""
    lse = make_mc_lse(t, K)
    mode = grad_mode(impl)
    pdim = t.D if t.n > 0 else 0

    def chunk_fn(x, sigma):
        v, g = value_and_grad(lambda z: lse(z, sigma), x, mode)
        return clip_score(g, clip, pdim), v - math.log(K)

    return compiled(chunk_fn, impl)


def mc_score(chunk_fn, x, sigma, chunk: int):
    """S_K and log p~ of all points, `chunk` points per call of chunk_fn (make_mc_score_fn)."""
    if chunk >= x.shape[0]:
        return chunk_fn(x, sigma)
    parts = [chunk_fn(x[s:s + chunk], sigma[s:s + chunk]) for s in range(0, x.shape[0], chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


DEFAULT_CHUNK_ELEMS = 1 << 29  # 2 GiB of float32 per [samples, pairs, D] intermediate
