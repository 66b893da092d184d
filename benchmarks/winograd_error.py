"""Measure Winograd's rounding error against the float64 reference and fit the constants
of its bounds (README.md "Accuracy", docs/algorithms.rst).

Standalone: ``PYTHONPATH=src python benchmarks/winograd_error.py [--trials T]``. float32,
``algorithm="winograd"``. It prints

1. per 3x3 stride-1 layer of ``convcore.testing.SHAPES`` (random normal data): the
   relative L2 error and the largest ``|y - y_exact| / (u * sum|x||w|)`` — the constant
   ``c`` of the bound in its usual form (the issue's target: relative L2 below 1e-4);
2. per input-channel count, data normal, uniform and of mixed magnitudes (10^-3 to 10^2
   within a tile): the largest ratio to ``u * reference_winograd_scale`` (the tile form,
   which does not depend on how magnitudes are spread) and to ``u * sum|x||w|`` (the window
   form, which does);
3. the fit of ``testing.WINOGRAD_CONSTANTS`` (A + B * C/groups) that the tests use, and its
   margin over the measured ratios.
"""

from __future__ import annotations

import argparse

import numpy as np

import convcore
from convcore import testing

U = float(testing.unit_roundoff(np.float32))


def draw(rng, shape, kind):
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "uniform":
        return rng.random(shape).astype(np.float32)
    return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, shape)).astype(np.float32)


def ratios(x, w, **kw):
    y = convcore.conv2d(x, w, algorithm="winograd", **kw).astype(np.float64)
    ref = testing.reference_conv2d(x, w, **kw)
    err = np.abs(y - ref)
    window = float(np.max(err / (U * testing.reference_conv2d_abs(x, w, **kw))))
    tile = float(np.max(err / (U * testing.reference_winograd_scale(x, w, **kw))))
    rel_l2 = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
    return window, tile, rel_l2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    print("| shape | C/g | tile | relative L2 error | max error / (u sum|x||w|) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for s in testing.SHAPES:
        if (s.r, s.s, s.stride, s.dilation) != (3, 3, 1, 1) or s.c // s.groups < 4:
            continue
        x = draw(rng, s.input_shape, "normal")
        w = draw(rng, s.weight_shape, "normal")
        window, _, rel = ratios(x, w, **s.conv2d_kwargs)
        m = testing.winograd_tile(*s.output_shape[2:])
        print(f"| {s.name} | {s.c // s.groups} | F({m}x{m}) | {rel:.2e} | {window:.1f} |",
              flush=True)

    a, b = testing.WINOGRAD_CONSTANTS
    print(f"\nper channel count (max over {args.trials} trials per distribution; F(2x2): 12x12 "
          f"images, F(4x4): 30x30); tests' tile-form constant A + B*C/g = {a} + {b:g}*C/g")
    print("| C/g | tile | window form, normal+uniform | tile form, all | tile form / constant |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for cg in [4, 8, 16, 32, 64, 128, 256, 512]:
        for hw in [12, 30]:
            win = tile = 0.0
            for kind in ["normal", "uniform", "mixed"]:
                for _ in range(args.trials):
                    x = draw(rng, (1, cg, hw, hw), kind)
                    w = draw(rng, (8, cg, 3, 3), kind)
                    wr, tr, _ = ratios(x, w, padding=1)
                    tile = max(tile, tr)
                    if kind != "mixed":
                        win = max(win, wr)
            m = testing.winograd_tile(hw, hw)
            print(f"| {cg} | F({m}x{m}) | {win:.1f} | {tile:.2f} | {tile / (a + b * cg):.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
