"""Command line: ``python -m convcore [info]`` (also the ``convcore`` script)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import numpy as np


def _print_info() -> None:
    import convcore

    for key, value in convcore.info().items():
        print(f"{key:>15}: {value}")


def _example() -> None:
    """A small worked example: the lecture's Sobel kernel on a generated image."""
    import convcore
    from convcore.testing import reference_conv2d

    _print_info()
    print()
    yy, xx = np.mgrid[0:256, 0:256]
    image = np.where((xx - 128) ** 2 + (yy - 128) ** 2 < 70**2, 200.0, 30.0).astype(np.float32)
    mx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32) / 4
    t = time.perf_counter()
    edges = convcore.conv2d(image[None], mx[None, None], padding=1)[0]
    ms = (time.perf_counter() - t) * 1e3
    err = np.abs(edges - reference_conv2d(image[None], mx[None, None], padding=1)[0]).max()
    print(f"Sobel Mx on a 256x256 disc: {ms:.2f} ms, max |I*Mx| = {np.abs(edges).max():.1f}, "
          f"max difference from the float64 reference = {err:.2e}")
    relu = convcore.conv2d(image[None], mx[None, None], padding=1, activation="relu")[0]
    print(f"ReLU(I*Mx) keeps the dark-to-bright edges: {int((relu > 0).sum())} of "
          f"{relu.size} pixels respond")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="convcore", description="Fast 2D convolution, and why convolution layers win."
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="version, instruction sets, threads, compiler")
    sub.add_parser("example", help="a small worked example (the default)")
    from . import bench

    bench.add_arguments(sub.add_parser("bench", help="benchmarks and the report (bench --help)"))
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.main(args)
    if args.command == "info":
        _print_info()
    else:
        _example()
    return 0


if __name__ == "__main__":
    sys.exit(main())
