"""Peer of bench_mc_score (bench/bench_mc_score.cpp): iDEM's Monte Carlo noisy score S_K alone, K energy
evaluations per point, per target and K, batch 512, sigma 0.5 (target units), no clip, with log p~ as
nsamp's call computes it. Points as nsamp's: exact samples where the target has a sampler (GMM-40), else
N(0, 1.5^2) coordinates (particle systems).

The estimator is DEM's: y_i = x + sigma eps_i for K fresh normals, lse = logsumexp_i(-E(y_i)), S_K = d lse / dx
by autograd (torch.func inside the compiled graph under torch.compile). Where the [B K, pairs, D]
intermediates would pass --chunk-elems (default 2^29 floats; LJ-55 at K >= 500) the points go in equal
chunks (field "chunk"): PyTorch materialises every sample's pair terms, nsamp streams them.

  python3 bench/peers/peer_mc_score.py [--device cuda] [--targets gmm40,dw4,lj13,lj55] [--K 100,500,1000]
"""
from __future__ import annotations

import torch

import common as C


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--targets", default="gmm40,dw4,lj13,lj55")
    p.add_argument("--K", default="100,500,1000")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--chunk-elems", type=int, default=C.DEFAULT_CHUNK_ELEMS)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.K = 8, "4"
    reps = args.reps or (2 if args.quick else 3)
    warmup = args.warmup or 2
    dev = C.setup(args)
    emit = C.Emitter(args, "mc_score", dev)
    for name in C.split(args.targets):
        t = C.make_target(name, dev)
        x = t.bench_points(args.batch, dev)
        sigma = torch.full((args.batch,), 0.5, device=dev)
        for K in C.split_ints(args.K):
            chunk = C.mc_chunk(args.batch, K, t, args.chunk_elems)
            for impl in C.split(args.impls):
                C.reset_compiler()

                def body():
                    f = C.make_mc_score_fn(t, K, 0.0, impl)
                    r = C.timed(lambda: C.mc_score(f, x, sigma, chunk), reps, warmup, dev)
                    r["point_samples_per_s"] = args.batch * K / (r["ms"] * 1e-3)
                    r["chunk"] = chunk
                    return r

                rec = {"bench": "mc_score", "impl": impl, "target": name, "device": C.device_name(dev),
                       "dtype": "float32", "batch": args.batch, "K": K}
                C.run_case(emit, rec, body)
                if dev.type == "cuda":
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
