"""Peer of bench_mlp (bench/bench_mlp.cpp): time of an MLP's forward pass and of forward + backward.

  mlp          bench_mlp's network: d -> W -> W -> W -> d with SiLU, d = 32, per width and batch; the
               forward pass records the autograd graph (as nsamp's taped forward does), forward + backward
               is y.backward(cotangent) into the parameters and the input. Pairs with bench_mlp's lines
               (bench "mlp", pass, width, batch).
  fourier_mlp  the path samplers' control network (path_samplers.md's FourierMLP, 64 channels, d = 2, a
               shared time), forward and forward + backward; pairs with `bench_mlp --cases fourier_mlp`
               (bench "fourier_mlp", pass, width, batch); its cost inside a path step is bench_path's.

  python3 bench/peers/peer_mlp.py [--device cuda] [--widths 64,...] [--batches 1024,...] [--quick]
"""
from __future__ import annotations

import torch

import common as C
from nets import FourierMLP, mlp


def main(argv=None):
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--cases", default="mlp,fourier_mlp")
    p.add_argument("--widths", default="64,128,144,192,256,400", help="bench_mlp's default widths")
    p.add_argument("--batches", default="1024,4096,16384,65536", help="bench_mlp's default batches")
    p.add_argument("--fourier-width", type=int, default=64)
    p.add_argument("--fourier-batches", default="1024,4096,16384,65536")
    args = p.parse_args(argv)
    if args.quick:
        args.widths, args.batches, args.fourier_batches, args.fourier_width = "16", "64", "64", 16
    reps = args.reps or (2 if args.quick else 10)
    warmup = args.warmup or 3
    dev = C.setup(args)
    emit = C.Emitter(args, "mlp", dev)
    dname = C.device_name(dev)
    d = 32
    for case in C.split(args.cases):
        widths = C.split_ints(args.widths) if case == "mlp" else [args.fourier_width]
        batches = C.split_ints(args.batches if case == "mlp" else args.fourier_batches)
        for W in widths:
            if case == "mlp":
                net = mlp([d, W, W, W, d]).to(dev)
                dim = d
            else:
                net = FourierMLP(2, W, 2, zero_init=False).to(dev)
                dim = 2
            params = sum(q.numel() for q in net.parameters())
            for B in batches:
                x = torch.randn(B, dim, device=dev, requires_grad=True)
                cot = torch.randn(B, dim, device=dev)
                tt = torch.full((1, 1), 0.3, device=dev)
                fwd_flops = 2.0 * B * params
                for impl in C.split(args.impls):
                    C.reset_compiler()
                    f = C.compiled(net if case == "mlp" else (lambda t, z: net(t, z)), impl)
                    call = (lambda: f(x)) if case == "mlp" else (lambda: f(tt, x))
                    for backward in (False, True):
                        def run():
                            y = call()
                            if backward:
                                y.backward(cot)

                        def body():
                            r = C.timed(run, reps, warmup, dev)
                            s = r["ms"] * 1e-3
                            flops = 3 * fwd_flops if backward else fwd_flops
                            r.update({"ns_per_sample": s * 1e9 / B, "gflops": flops / s * 1e-9})
                            return r

                        rec = {"bench": "mlp" if case == "mlp" else "fourier_mlp", "impl": impl,
                               "device": dname, "pass": "forward_backward" if backward else "forward",
                               "width": W, "batch": B, "tf32": False, "dtype": "float32"}
                        if case != "mlp":
                            rec["dim"] = dim
                        C.run_case(emit, rec, body)
                        for q in net.parameters():
                            q.grad = None
                        x.grad = None


if __name__ == "__main__":
    main()
