"""Checks that the peers' torch targets compute nsamp's energies: for GMM-40, GMM-9, DW-4, LJ-13 and LJ-55
it writes inputs, runs `nsamp energy --grad` on them (float32 and float64 .npy, --device cpu unless told),
evaluates the same rows with the peers' torch energies and autograd gradients, and prints the max relative
errors. Also checks the GMM-40 means file against their definition (torch.manual_seed(0)) and the peers'
Monte Carlo noisy score S_K against GMM-40's exact noisy score (a GMM with variance s^2 + sigma^2).

Relative error per row: |E_torch - E_nsamp| / max(|E_nsamp|, 1), and max_j |G_torch - G_nsamp| over the
row / max(max_j |G_nsamp|, 1); the check takes the max over rows. Tolerances: 1e-9 in float64, 2e-4 in
float32 (both sides round differently: ordered-pair sums, fused kernels vs torch ops).

Inputs: exact samples (`nsamp sample-target`) for the GMMs; the first 100 rows of the DW-4 and LJ-13
reference files plus the same rows perturbed (std 0.05) and N(0, 1.5^2) points (the benchmarks' inputs);
for LJ-55, 100 perturbed copies (std 0.05) of a 55-site cubic lattice of spacing 1.12 (near the pair
minimum) and N(0, 1.5^2) points.

  python3 bench/peers/check_energies.py [--nsamp build/bin/nsamp] [--device cpu]   (exit 1 on a mismatch)
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import common as C

TOL = {"float64": 1e-9, "float32": 2e-4}


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max over rows of |a - b| / max(|b|, 1) (rows of [N] or [N, d] by the row's max-norm)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 1:
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))
    return float(np.max(np.max(np.abs(a - b), axis=1) / np.maximum(np.max(np.abs(b), axis=1), 1.0)))


def nsamp_energy(nsamp: str, target: str, x: np.ndarray, device: str, tmp: Path):
    xin = tmp / f"{target}_{x.dtype}.npy"
    np.save(xin, x)
    e, g = tmp / f"{target}_{x.dtype}_E.npy", tmp / f"{target}_{x.dtype}_G.npy"
    subprocess.run([nsamp, "energy", "--target", target, "--in", str(xin), "--out", str(e), "--grad", str(g),
                    "--device", device], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return np.load(e), np.load(g)


def inputs(name: str, nsamp: str, tmp: Path, rng: np.random.Generator) -> np.ndarray:
    if name in ("gmm40", "gmm9"):
        out = tmp / f"{name}_x.npy"
        subprocess.run([nsamp, "sample-target", "--target", name, "-n", "100", "--out", str(out), "--seed", "3"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return np.load(out).astype(np.float64)
    t = C.make_target(name)
    rows = []
    d = C.data_dir()
    ref = {"dw4": "val_split_DW4.npy", "lj13": "val_split_LJ13-1000.npy"}.get(name)
    if ref and d is not None and (d / ref).is_file():
        r = np.load(d / ref)[:100].astype(np.float64)
        r = r.reshape(len(r), t.n, t.D)
        r = (r - r.mean(axis=1, keepdims=True)).reshape(len(r), -1)
        rows += [r, r + 0.05 * rng.standard_normal(r.shape)]
    if name == "lj55":
        g = np.array([[i, j, k] for i in range(5) for j in range(4) for k in range(3)], np.float64)[:55] * 1.12
        g = g - g.mean(axis=0)
        rows.append((g[None] + 0.05 * rng.standard_normal((100, 55, 3))).reshape(100, -1))
    rows.append(1.5 * rng.standard_normal((100, t.dim)))
    return np.concatenate(rows)


def check_sk(failures: list) -> None:
    """The peers' S_K at K = 20000 against GMM-40's exact noisy score."""
    torch.manual_seed(1)
    t = C.make_target("gmm40", dtype=torch.float64)
    x = t.sample(200)
    for sigma in (0.5, 2.0):
        s = torch.full((200,), sigma, dtype=torch.float64)
        f = C.make_mc_score_fn(t, 20000, 0.0, "torch_eager")
        sk, _ = C.mc_score(f, x, s, 50)
        noisy = C.GMM("noisy", t.means, math.sqrt(t.std ** 2 + sigma ** 2))
        _, exact = C.value_and_grad(noisy.log_prob, x)
        err = float(((sk - exact) ** 2).sum(-1).mean().sqrt() / (exact ** 2).sum(-1).mean().sqrt())
        ok = err < 0.05
        print(f"S_K gmm40 sigma {sigma}: K 20000 vs exact noisy score, rms relative error {err:.2e} "
              f"(tolerance 5e-2) {'ok' if ok else 'MISMATCH'}")
        if not ok:
            failures.append(f"S_K sigma {sigma}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nsamp", default=os.environ.get("NSAMP_BIN", str(C.REPO / "build" / "bin" / "nsamp")))
    p.add_argument("--device", default="cpu", help="nsamp's device for the energies (cpu | cuda)")
    p.add_argument("--targets", default="gmm40,gmm9,dw4,lj13,lj55")
    p.add_argument("--no-sk", action="store_true", help="skip the S_K check")
    args = p.parse_args(argv)
    if not Path(args.nsamp).is_file():
        print(f"check_energies: no nsamp binary at {args.nsamp} (--nsamp PATH)", file=sys.stderr)
        return 2
    failures: list[str] = []
    m_file, src = C.gmm40_means_array()
    m_def = C.gmm40_means_regenerated()
    e = float(np.max(np.abs(m_file - m_def)))
    print(f"gmm40 means: {src} vs torch.manual_seed(0) definition: max abs difference {e:.2e}"
          f" {'ok' if e < 1e-5 else 'MISMATCH'}")
    if e >= 1e-5:
        failures.append("gmm40 means")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in C.split(args.targets):
            x64 = inputs(name, args.nsamp, tmp, rng)
            for dtype, npdt, tdt in (("float64", np.float64, torch.float64), ("float32", np.float32, torch.float32)):
                x = x64.astype(npdt)
                en, gn = nsamp_energy(args.nsamp, name, x, args.device, tmp)
                t = C.make_target(name, dtype=tdt)
                et, gt = C.value_and_grad(t.energy, torch.from_numpy(x), "autograd")
                re, rg = rel_err(et.numpy(), en), rel_err(gt.numpy(), gn)
                ok = re <= TOL[dtype] and rg <= TOL[dtype]
                print(f"{name:6s} {dtype}: {len(x)} rows, E range [{en.min():.4g}, {en.max():.4g}], max rel err "
                      f"energy {re:.2e}, gradient {rg:.2e} (tolerance {TOL[dtype]:.0e}) {'ok' if ok else 'MISMATCH'}")
                if not ok:
                    failures.append(f"{name} {dtype}")
    if not args.no_sk:
        check_sk(failures)
    if failures:
        print("check_energies: MISMATCH in " + ", ".join(failures))
        return 1
    print("check_energies: all energies and gradients match" + ("" if args.no_sk else ", and S_K"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
