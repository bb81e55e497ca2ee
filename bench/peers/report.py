"""Pairs nsamp's benchmark lines with the PyTorch peers' lines for the same workload and prints a markdown
table: per workload nsamp's time, each peer's time (torch eager, torch.compile) and the ratios peer / nsamp
(above 1: nsamp is faster).

Inputs: JSON-lines files (nsamp's bench_* --out files, run_all.py --out) or a combined .json written by
--json-out. A line is a peer's when it has "impl"; nsamp's otherwise. Lines pair on "bench" and that
bench's workload fields (KEYS below) plus the device kind (cpu / cuda) and dtype; the last line of a key
wins. nsamp's bench_mlp times two paths: whole_network is the nsamp column, per_layer goes in the notes.
Lines of one side only are listed after the table.

  python3 bench/peers/report.py FILE... [--gpu NAME] [--json-out ALL.json] > table.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys

KEYS = {
    "mlp": ["pass", "width", "batch"],
    "fourier_mlp": ["pass", "width", "batch"],
    "path_step": ["method", "loss", "target", "batch", "steps"],
    "dikl_iteration": ["target", "batch", "score_iter", "width"],
    "idem_inner_step": ["method", "target", "batch", "K"],
    "idem_reverse_sde": ["target", "samples", "steps"],
    "mc_score": ["target", "batch", "K"],
    "energy": ["target", "batch"],
}
# extra timed fields shown as their own rows (bench_dikl's phases)
PHASES = {"dikl_iteration": ["score_ms", "posterior_ms", "generator_ms"]}
IMPLS = ["torch_eager", "torch_compile"]
NSAMP_VARIANT = {"mlp": ("path", "whole_network"), "path_step": ("graph", "on"), "idem_inner_step": ("graph", "on"),
                 "dikl_iteration": ("graph", "on"), "idem_reverse_sde": ("graph", "on")}


def read(paths):
    lines = []
    for path in paths:
        with open(path) as f:
            text = f.read()
        try:
            obj = json.loads(text)
            if isinstance(obj, dict) and isinstance(obj.get("lines"), list):  # a --json-out file
                lines += obj["lines"]
                continue
        except json.JSONDecodeError:
            pass
        for raw in text.splitlines():
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                print(f"report: skipping a malformed line in {path}: {raw[:80]}", file=sys.stderr)
    return lines


def key_of(rec):
    b = rec.get("bench")
    if b not in KEYS:
        return None
    dev = str(rec.get("device", "?")).split(":")[0]
    return (b, dev, rec.get("dtype", "float32")) + tuple(rec.get(k) for k in KEYS[b])


def label(key):
    b, dev, dtype = key[:3]
    parts = [f"{k} {v}" for k, v in zip(KEYS[b], key[3:])]
    return f"{b} ({dev}{'' if dtype == 'float32' else ', ' + dtype}): " + ", ".join(parts)


def fmt_ms(v):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return f"{v:.4g}"


def cell(rec, field="ms"):
    if rec is None:
        return None
    if "skipped" in rec:
        return "skipped"
    if "error" in rec:
        return "error"
    return rec.get(field)


def ratio(p, n):
    if isinstance(p, (int, float)) and isinstance(n, (int, float)) and n > 0:
        return f"{p / n:.2f}"
    return "—"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--gpu", default="", help="device name for the heading (nvidia-smi's)")
    ap.add_argument("--title", default="nsamp against PyTorch peers")
    ap.add_argument("--json-out", default="", help="also write every line, with the heading facts, to FILE")
    args = ap.parse_args(argv)
    lines = read(args.files)
    nsamp, peers, other = {}, {}, {}
    order = []
    torch_version = ""
    for rec in lines:
        k = key_of(rec)
        if k is None:
            continue
        if k not in order:
            order.append(k)
        if "impl" in rec:
            peers.setdefault(k, {})[rec["impl"]] = rec
            torch_version = rec.get("torch", torch_version)
        else:
            var = NSAMP_VARIANT.get(rec["bench"])
            if var and rec.get(var[0]) != var[1]:
                other.setdefault(k, {})[rec.get(var[0])] = rec
            else:
                nsamp[k] = rec
    for k, alts in other.items():  # a case with no preferred variant (run with one mode only) shows what it has
        if k not in nsamp and len(alts) == 1:
            nsamp[k] = alts.pop(next(iter(alts)))
    gpu = args.gpu or next((r.get("gpu") for r in lines if r.get("gpu")), "")
    date = datetime.date.today().isoformat()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"date": date, "gpu": gpu, "torch": torch_version, "lines": lines}, f, indent=1)
            f.write("\n")
    out = [f"# {args.title}", ""]
    facts = [f"date {date}"]
    if gpu:
        facts.append(f"device {gpu}")
    if torch_version:
        facts.append(f"torch {torch_version}")
    out += ["; ".join(facts) + ". Times in ms per call (mean over the timed repetitions); ratio = peer / "
            "nsamp (above 1: nsamp is faster). torch.compile in mode default, compilation excluded.", ""]
    out.append("| workload | nsamp | torch eager | torch.compile | eager / nsamp | compile / nsamp | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    only_nsamp, only_peer = [], []
    for k in order:
        n = cell(nsamp.get(k))
        pe = peers.get(k, {})
        if k not in nsamp and not pe:
            continue
        if k not in nsamp:
            only_peer.append(k)
        if not pe:
            only_nsamp.append(k)
        notes = []
        for var, rec in other.get(k, {}).items():
            notes.append(f"nsamp {var}: {fmt_ms(cell(rec))}")
        for impl in IMPLS:
            rec = pe.get(impl)
            if rec and "error" in rec:
                notes.append(f"{impl}: {rec['error'][:80]}")
            if rec and rec.get("recompiled"):
                notes.append(f"{impl}: recompiled while timed")
            if rec and rec.get("peak_mib") is not None:
                notes.append(f"{impl} peak {rec['peak_mib']} MiB")
        if nsamp.get(k, {}).get("peak_mib") is not None:
            notes.append(f"nsamp peak {nsamp[k]['peak_mib']} MiB")
        for impl in IMPLS:
            if pe.get(impl, {}).get("chunk") and pe[impl]["chunk"] != pe[impl].get("batch"):
                notes.append(f"peer chunks of {pe[impl]['chunk']} points")
                break
        e, c = cell(pe.get("torch_eager")), cell(pe.get("torch_compile"))
        out.append(f"| {label(k)} | {fmt_ms(n)} | {fmt_ms(e)} | {fmt_ms(c)} | {ratio(e, n)} | {ratio(c, n)} | "
                   f"{'; '.join(notes)} |")
        # a graphed iteration has no phase times: they come from the eager variant
        phase_rec = nsamp.get(k)
        if phase_rec is not None and phase_rec.get("graph") == "on":
            phase_rec = other.get(k, {}).get("off")
        for ph in PHASES.get(k[0], []):
            n2 = cell(phase_rec, ph)
            e2, c2 = cell(pe.get("torch_eager"), ph), cell(pe.get("torch_compile"), ph)
            out.append(f"| &nbsp;&nbsp;{ph[:-3]} phase | {fmt_ms(n2)} | {fmt_ms(e2)} | {fmt_ms(c2)} | "
                       f"{ratio(e2, n2)} | {ratio(c2, n2)} | |")
    out.append("")
    if only_nsamp:
        out.append("nsamp lines without a peer: " + "; ".join(label(k) for k in only_nsamp) + ".")
        out.append("")
    if only_peer:
        out.append("Peer lines without an nsamp line: " + "; ".join(label(k) for k in only_peer) + ".")
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
