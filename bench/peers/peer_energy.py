"""Peer of bench_energy (bench/bench_energy.cpp): energy + gradient of a batch, by autograd as the reference
codes get their forces, per target and batch. Default: LJ-55 (iDEM convention, targets.md) at bench_energy's
batches 1000 and 65536, plus LJ-13; inputs as nsamp's (N(0, 1.5^2) coordinates for particle systems, exact
samples for GMMs).

torch.compile: the function x -> (E, dE/dx) (torch.func inside) is compiled once per case.

  python3 bench/peers/peer_energy.py [--device cuda] [--targets lj55,lj13] [--batches 1000,65536]
"""
from __future__ import annotations

import torch

import common as C


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--targets", default="lj55,lj13")
    p.add_argument("--batches", default="1000,65536")
    args = p.parse_args(argv)
    if args.quick:
        args.batches = "10"
    reps = args.reps or (2 if args.quick else 5)
    warmup = args.warmup or 2
    dev = C.setup(args)
    emit = C.Emitter(args, "energy", dev)
    for name in C.split(args.targets):
        t = C.make_target(name, dev)
        for B in C.split_ints(args.batches):
            x = t.bench_points(B, dev)
            for impl in C.split(args.impls):
                C.reset_compiler()
                mode = C.grad_mode(impl)

                def body():
                    f = C.compiled(lambda z: C.value_and_grad(t.energy, z, mode), impl)
                    r = C.timed(lambda: f(x), reps, warmup, dev)
                    r["evals_per_s"] = B / (r["ms"] * 1e-3)
                    return r

                rec = {"bench": "energy", "impl": impl, "target": name, "device": C.device_name(dev),
                       "dtype": "float32", "batch": B}
                C.run_case(emit, rec, body)
            x = None  # frees the batch before the next one
            if dev.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
