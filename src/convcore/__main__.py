"""Command line: ``python -m convcore [demo|info|bench|classify] ...`` (also the ``convcore`` script).

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
    fields = {**convcore.info(), **machine.describe()}
    width = max(map(len, fields))
    for key, value in fields.items():
        print(f"{key:>{width}}: {value}")
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
    demo.run(image, args.out, plot=not args.no_plot, name=args.image,
             classify=not args.no_classify)
    return 0


def _classify(args: argparse.Namespace) -> int:
    from convcore import classify

    try:
        classify.run(seeds=args.seeds, epochs=args.epochs, out_dir=args.out,
                     json_path=args.json, plot_figure=not args.no_plot)
    except (ImportError, ValueError, TypeError) as e:  # no scikit-learn, or bad --seeds/--epochs
        print(f"convcore classify: {e}", file=sys.stderr)
        return 2
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
    p.add_argument("--no-classify", action="store_true",
                   help="skip section 5, the digits classification (a few seconds of training)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("info", help="version, instruction sets, threads, compiler; the CPU, "
                                    "its measured ymm and zmm FMA peaks and its kind",
                       description="What this build and this machine are: the version, the "
                                   "instruction set in use, those compiled and supported, "
                                   "threads, the Winograd switch, the output cache, the "
                                   "compiler and its flags; then the CPU (generation, family, "
                                   "model), its measured ymm and zmm FMA peaks of one core "
                                   "and its kind (full- or half-width AVX-512).")
    p.set_defaults(func=_info)

    from convcore import classify

    p = sub.add_parser("classify", help="train CNN, locally connected and MLP on digits: "
                                        "permuted pixels, shifted digits",
                       description="The lecture's classification claims on scikit-learn's "
                                   "digits: test accuracy of a CNN, a locally connected "
                                   "network and an MLP on permuted pixels and on shifted "
                                   "digits, mean and std over seeds; a table and a figure. "
                                   f"Needs scikit-learn ({classify.LEARN_HINT}).")
    p.add_argument("--out", metavar="DIR", default="convcore_classify",
                   help=f"folder for {classify.MD} and {classify.PNG} (default: %(default)s)")
    p.add_argument("--seeds", metavar="N", type=int, default=classify.Settings.seeds,
                   help="seeds 0..N-1, each trains every model anew (default: %(default)s)")
    p.add_argument("--epochs", metavar="N", type=int, default=classify.Settings.epochs,
                   help="training epochs per model (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the parameter counts and per-seed accuracies as JSON")
    p.add_argument("--no-plot", action="store_true", help="write the table only, no figure")
    p.set_defaults(func=_classify)

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
