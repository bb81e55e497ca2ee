#!/usr/bin/env python3
"""Runs each doctest case of a test binary in its own process, several side by side, optionally under a
wrapper (compute-sanitizer), with a timeout per case and a deadline for the whole run, and writes one TSV
row per case (status, seconds, exit code) plus the output of every case that did not pass.

One process per case, as CTest does, so that a sticky CUDA error or a crash in one case cannot fail the
cases after it, and a hang costs one case's timeout; unlike CTest it needs no configured build tree, so a
binary built elsewhere (scripts/device-pack) runs on the GPU machine as it is.

  scripts/run_cases.py BINARY [--suite gpu] [--jobs 8] [--timeout 120] [--deadline UNIX_TIME]
                       [--wrap 'compute-sanitizer --tool memcheck --error-exitcode 86'] [--out DIR]

Statuses: pass, FAIL (non-zero exit), SKIPPED (exit 77: the binary saw no GPU), TIMEOUT, NOT RUN (the
deadline came first). Exit status 0 only when every case passed.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path


def list_cases(binary: str, suite: str) -> list[str]:
    out = subprocess.run([binary, f"-ts={suite}", "-ltc"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    # the names sit between the first two rules of '=' characters
    rules = [i for i, l in enumerate(lines) if l.startswith("=====")]
    if len(rules) < 2:
        raise SystemExit(f"run_cases: cannot read the case list of {binary}:\n{out}")
    return [l for l in lines[rules[0] + 1 : rules[1]] if l.strip()]


def doctest_filter(name: str) -> str:
    # doctest filters split on commas (escaped with a backslash) and treat * and ? as wildcards; a wildcard
    # matching itself is harmless, so only commas need escaping
    return name.replace("\\", "\\\\").replace(",", "\\,")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary")
    p.add_argument("--suite", default="gpu")
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    p.add_argument("--deadline", type=float, default=0.0, help="unix time after which no case starts")
    p.add_argument("--wrap", default="", help="command line the binary runs under")
    p.add_argument("--out", default="run-cases", help="folder for cases.tsv and the failures' output")
    p.add_argument("--tag", default="", help="label printed with the summary")
    p.add_argument("--cases-file", default="", help="run only the cases named in FILE, one per line")
    args = p.parse_args(argv)

    cases = list_cases(args.binary, args.suite)
    if args.cases_file:
        wanted = {line.strip() for line in Path(args.cases_file).read_text().splitlines() if line.strip()}
        unknown = sorted(wanted - set(cases))
        if unknown:
            print(f"run_cases: {len(unknown)} case(s) of {args.cases_file} are not in suite "
                  f"'{args.suite}': {unknown[:3]}", file=sys.stderr)
        cases = [c for c in cases if c in wanted]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wrap = shlex.split(args.wrap)
    tag = args.tag or (wrap[-1] if wrap else "plain")

    def run(name: str):
        left = args.deadline - time.time() if args.deadline else args.timeout
        if left <= 1:
            return name, "NOT RUN", 0.0, None, ""
        cmd = wrap + [args.binary, f"-tc={doctest_filter(name)}", "--no-version"]
        t0 = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=min(args.timeout, left))
            dt = time.time() - t0
            text = r.stdout + r.stderr
            if r.returncode == 77:
                status = "SKIPPED"
            elif r.returncode != 0:
                status = "FAIL"
            elif "test cases:      0 " in text or re.search(r"test cases:\s+0\s", text):
                status = "FAIL"  # the filter matched nothing: a name this script mangled
                text += "\nrun_cases: the filter matched no case"
            else:
                status = "pass"
            return name, status, dt, r.returncode, text
        except subprocess.TimeoutExpired as e:
            text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return name, "TIMEOUT", time.time() - t0, None, text

    t_start = time.time()
    rows = []
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, status, dt, rc, text in pool.map(run, cases):
            rows.append((name, status, dt, rc))
            if status not in ("pass", "NOT RUN"):
                (out / f"{slug(name)}.log").write_text(f"$ {name}\nstatus {status} rc {rc}\n\n{text}")
    with open(out / "cases.tsv", "w") as f:
        f.write("status\tseconds\trc\tcase\n")
        for name, status, dt, rc in rows:
            f.write(f"{status}\t{dt:.2f}\t{'' if rc is None else rc}\t{name}\n")
    counts: dict[str, int] = {}
    for _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(f"{tag}: {len(rows)} cases in {time.time() - t_start:.0f} s: {summary}")
    shown = 0
    for name, status, dt, _ in rows:
        if status not in ("pass", "NOT RUN"):
            shown += 1
            if shown <= 40:
                print(f"  {status:8s} {dt:6.1f} s  {name}")
    if shown > 40:
        print(f"  ... and {shown - 40} more (cases.tsv)")
    slow = sorted(rows, key=lambda r: -r[2])[:3]
    print("  slowest: " + "; ".join(f"{r[2]:.1f} s {r[0]}" for r in slow))
    return 0 if all(r[1] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
