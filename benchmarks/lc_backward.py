"""locally_connected2d_backward (grad_input + grad_weight) beside convcore's own
locally_connected2d forward and PyTorch autograd through the unfold + einsum recipe of
bench_locally_connected.py, on the classify command's locally connected layers (batch 32,
8x8 digits and the 16x16 canvas) and a wider layer.

Standalone: ``PYTHONPATH=src python benchmarks/lc_backward.py [--rounds R]``. float32,
one thread (``convcore.bench.pinned_threads``); each round calls every implementation 5
times in a rotating order; medians of the rounds' CPU times. FLOPs: the forward's
2*N*Ho*Wo*K*C*R*S, twice that for the backward (grad_input and grad_weight each cost one
forward). Prints ms, GFLOP/s, the fraction of the FMA peak, and backward / forward time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import convcore
from convcore import bench

# (name, N, C, H=W, K): 3x3 filters, padding 1, stride 1.
LAYERS = [("digits-1>2", 32, 1, 8, 2), ("digits-2>4", 32, 2, 8, 4), ("pooled-4>4", 32, 4, 7, 4),
          ("canvas-2>4", 32, 2, 16, 4), ("canvas-4>4", 32, 4, 15, 4), ("wide-16>16", 32, 16, 16, 16)]


def makers(n, c, hw, k):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((hw, hw, k, c, 3, 3), dtype=np.float32)
    g = rng.standard_normal((n, k, hw, hw), dtype=np.float32)
    fns = {"convcore-forward": lambda: convcore.locally_connected2d(x, w, padding=1),
           "convcore-backward": lambda: convcore.locally_connected2d_backward(
               g, x, w, padding=1, output_mask=(True, True, False))}
    try:
        torch = bench.require("torch")
    except bench.Unavailable:
        return fns
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w.reshape(hw * hw, k, -1)).requires_grad_()
    gt = torch.from_numpy(g)

    def torch_backward():
        cols = torch.nn.functional.unfold(xt, (3, 3), padding=1)
        y = torch.einsum("ncl,lkc->nkl", cols, wt).reshape(n, k, hw, hw)
        return torch.autograd.grad(y, (xt, wt), gt)

    fns["torch-unfold-einsum-backward"] = torch_backward
    return fns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    peak = bench.peak_gflops(1)
    print(f"{bench.machine()}  1 thread, FMA peak {peak:.0f} GFLOP/s")
    with bench.pinned_threads(1):
        for name, n, c, hw, k in LAYERS:
            fns = makers(n, c, hw, k)
            for f in fns.values():
                f()
            names, times = list(fns), {m: [] for m in fns}
            for r in range(args.rounds):
                for m in names[r % len(names):] + names[:r % len(names)]:
                    t0 = time.process_time()
                    for _ in range(5):
                        fns[m]()
                    times[m].append((time.process_time() - t0) / 5)
            med = {m: float(np.median(t)) for m, t in times.items()}
            fwd = 2.0 * n * hw * hw * k * c * 9
            for m, t in med.items():
                flops = fwd if m == "convcore-forward" else 2 * fwd
                print(f"{name:12s} {m:30s} {t * 1e3:8.3f} ms {flops / t / 1e9:6.2f} GFLOP/s "
                      f"{flops / t / 1e9 / peak:6.1%} of peak")
            print(f"{name:12s} backward / forward {med['convcore-backward'] / med['convcore-forward']:.2f}")


if __name__ == "__main__":
    main()
