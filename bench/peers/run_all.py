"""Runs every PyTorch peer (one process each, so compiled graphs and GPU memory do not carry over) and
collects their JSON lines on stdout (and --out FILE).

Default sizes are the ones scripts/gpu-bench gives nsamp's benchmarks (keep the two in step: report.py
lists lines without a partner); --quick gives every peer its tiny sizes (a CPU smoke run), matching
`scripts/gpu-bench --quick`. --budget-s bounds the whole run: each peer gets a deadline (unix time) after
which its remaining cases print a "skipped" line instead of running; the peers run in order of priority
(the training steps first).

  python3 bench/peers/run_all.py [--device cuda] [--quick] [--out FILE] [--budget-s 330] [--only path,dikl]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, module, arguments at the gpu-bench sizes). The same sizes as scripts/gpu-bench's nsamp commands.
PEERS = [
    ("path", "peer_path.py", ["--methods", "pis,dis", "--losses", "lv,kl", "--batch", "2048", "--steps", "200"]),
    ("dikl", "peer_dikl.py", ["--batch", "1024", "--score-iter", "50", "--width", "400"]),
    ("idem", "peer_idem.py", ["--cases", "gmm40:500,lj13:1000", "--batch", "512", "--sde-samples", "1000",
                              "--sde-steps", "gmm40:1000,lj13:100"]),
    ("mc_score", "peer_mc_score.py", ["--targets", "gmm40,dw4,lj13,lj55", "--K", "100,1000", "--batch", "512"]),
    ("energy", "peer_energy.py", ["--targets", "lj55,lj13", "--batches", "1000,65536"]),
    ("mlp", "peer_mlp.py", ["--widths", "64,256,400", "--batches", "1024,65536", "--fourier-batches", "1024,65536"]),
]
QUICK = {"idem": ["--sde-steps", "2"]}  # --quick sets the rest inside each peer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="", help="append every JSON line to FILE")
    p.add_argument("--only", default="", help="comma-separated peers (path, dikl, idem, mc_score, energy, mlp)")
    p.add_argument("--impls", default="torch_eager,torch_compile")
    p.add_argument("--budget-s", type=float, default=0.0, help="time budget for all peers (0: none)")
    p.add_argument("--grace-s", type=float, default=120.0,
                   help="seconds a case running at the deadline may go on before its peer is stopped")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    only = set(v for v in args.only.split(",") if v)
    deadline = time.time() + args.budget_s if args.budget_s > 0 else 0.0
    rc = 0
    for name, module, sizes in PEERS:
        if only and name not in only:
            continue
        cmd = [args.python, str(HERE / module), "--device", args.device, "--impls", args.impls]
        cmd += (["--quick"] + QUICK.get(name, [])) if args.quick else sizes
        if args.out:
            cmd += ["--out", args.out]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        timeout = None
        if deadline:
            cmd += ["--deadline", f"{deadline:.0f}"]
            # a case already running at the deadline may finish within the grace; past that the peer is stopped
            timeout = max(10.0, deadline - time.time() + args.grace_s)
        t0 = time.time()
        print(f"[run_all] {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        try:
            r = subprocess.run(cmd, timeout=timeout)
            code = r.returncode
        except subprocess.TimeoutExpired:
            code = 124
        print(f"[run_all] {name}: exit {code} after {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
        rc = rc or code
    return rc


if __name__ == "__main__":
    sys.exit(main())
