"""Command line: ``python -m convcore [demo|info|bench] ...`` (also the ``convcore`` script).

The demo (the lecture's argument on an image, see convcore/demo.py) is the default
command. Each command is one ``add_parser`` call whose ``func`` takes the parsed
arguments and returns the exit status: add a command by adding such a block.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional, Tuple


def _info(args: argparse.Namespace) -> int:
    import convcore
    from convcore import machine

    # The machine after the build: its peaks take about a second to measure.
    for key, value in {**convcore.info(), **machine.describe()}.items():
        print(f"{key:>15}: {value}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from convcore import demo

    image = None
    if args.image is not None:
        try:
            image = demo.load_image(args.image)
        except (ImportError, OSError, ValueError) as e:  # an unreadable --image: say why
            print(f"convcore demo: {e}", file=sys.stderr)
            return 2
    demo.run(image, args.out, plot=not args.no_plot, name=args.image)
    return 0


def build_parser() -> Tuple[argparse.ArgumentParser, Any]:
    """The parser and its sub-parsers action (whose ``choices`` are the commands)."""
    parser = argparse.ArgumentParser(
        prog="convcore",
        description="Fast 2D convolution, and why convolution layers beat fully connected "
                    "ones. Without a command: the demo.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")

    p = sub.add_parser("demo", help="the lecture's argument on an image (the default)",
                       description="Sobel feature maps, parameter and cost table, translation "
                                   "equivariance, the permutation effect; two PNGs.")
    p.add_argument("--image", metavar="PATH", default=None,
                   help="a grey-level or colour image (any format Pillow reads, or .npy); "
                        "default: the bundled scene")
    p.add_argument("--out", metavar="DIR", default="convcore_demo",
                   help="folder for demo_sobel.png and demo_permutation.png "
                        "(default: %(default)s)")
    p.add_argument("--no-plot", action="store_true", help="print only, write no pictures")
    p.set_defaults(func=_demo)

    p = sub.add_parser("info", help="version, instruction sets, threads, compiler; the CPU, "
                                    "its measured ymm and zmm FMA peaks and its kind")
    p.set_defaults(func=_info)

    from convcore import bench

    p = sub.add_parser("bench", help="benchmarks and the report (see bench --help)")
    bench.add_arguments(p)
    p.set_defaults(func=bench.main)
    return parser, sub


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, sub = build_parser()
    if not argv or (argv[0] not in sub.choices and argv[0] not in ("-h", "--help")):
        argv.insert(0, "demo")  # the default command, with any options given
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
