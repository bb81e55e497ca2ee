"""Checks that peer_path computes nsamp's path-sampler losses: at initialisation the control is the same
function in both (the FourierMLP's output layer and NN_t's last weight start at zero, NN_t's bias at 0.01,
so u = 0.01 clip(score) whatever the random phases), so the loss of the first training step is a random
variable with the same law in both. For PIS and DIS with lv and kl on gmm9, this runs `nsamp train ...
--set iterations=1` (the first log line's loss) and peer_path's loss for several seeds each, and compares
the means: |mean_nsamp - mean_peer| <= 4 standard errors of the difference.

  python3 bench/peers/check_path_loss.py [--nsamp build/bin/nsamp] [--seeds 4] [--batch 2048] [--steps 200]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import common as C
from peer_path import PathStep, loss_and_grad


def nsamp_loss(nsamp, method, loss, seed, batch, steps, tmp: Path) -> float:
    out = tmp / f"{method}-{loss}-{seed}"
    subprocess.run([nsamp, "train", "--method", method, "--target", "gmm9", "--loss", loss, "--preset", "quick",
                    "--seed", str(seed), "--set", "iterations=1", "--set", f"batch={batch}", "--set",
                    f"path_steps={steps}", "--set", "log_every=1", "--set", "eval_every=1", "--set",
                    "eval_paths=16", "--set", "final_samples=16", "--device", "cpu", "--progress", "off",
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out / "log.jsonl") as f:
        return float(json.loads(f.readline())["loss"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nsamp", default=os.environ.get("NSAMP_BIN", str(C.REPO / "build" / "bin" / "nsamp")))
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args(argv)
    target = C.make_target("gmm9")
    bad = []
    with tempfile.TemporaryDirectory() as td:
        for method in ("pis", "dis"):
            for loss in ("lv", "kl"):
                n = [nsamp_loss(args.nsamp, method, loss, s + 1, args.batch, args.steps, Path(td))
                     for s in range(args.seeds)]
                pe = []
                for s in range(args.seeds):
                    torch.manual_seed(100 + s)
                    step = PathStep(target, method, loss, args.steps, "torch_eager")
                    pe.append(float(loss_and_grad(step, step, args.batch, args.steps, torch.device("cpu")).detach()))
                mn, mp = statistics.mean(n), statistics.mean(pe)
                se = math.sqrt(statistics.variance(n) / len(n) + statistics.variance(pe) / len(pe))
                ok = abs(mn - mp) <= 4 * se
                print(f"{method} {loss}: initial loss nsamp {mn:.5g} +- {statistics.stdev(n):.2g}, peer {mp:.5g} +- "
                      f"{statistics.stdev(pe):.2g} ({args.seeds} seeds each; difference {abs(mn - mp) / se:.1f} "
                      f"standard errors) {'ok' if ok else 'MISMATCH'}")
                if not ok:
                    bad.append(f"{method} {loss}")
    if bad:
        print("check_path_loss: MISMATCH in " + ", ".join(bad))
        return 1
    print("check_path_loss: the initial losses agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
