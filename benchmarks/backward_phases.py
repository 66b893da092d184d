"""conv2d_backward by phase beside PyTorch, interleaved in one process: grad_input +
grad_weight, each alone, and convcore's own forward, on anchors of convcore.testing
(``torch.ops.aten.convolution_backward`` with the same output_mask). Prints medians in ms
and the ratios PyTorch / convcore (above 1: convcore faster) and backward / forward.
1 thread: CPU time of the process; more: wall time.

    PYTHONPATH=src python benchmarks/backward_phases.py --threads 1 --rounds 9 --shapes abdefh
"""

import argparse
import time

import numpy as np

import convcore
from convcore import testing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--shapes", default="abdefh", help="anchor ids, e.g. abdefh")
    args = ap.parse_args()
    import torch

    convcore.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    for sid in args.shapes:
        s = testing.anchors()[sid]
        kw = s.conv2d_kwargs
        x = rng.standard_normal(s.input_shape).astype(np.float32)
        w = rng.standard_normal(s.weight_shape).astype(np.float32)
        g = rng.standard_normal(convcore.conv2d(x, w, **kw).shape).astype(np.float32)
        tg, tx, tw = (torch.from_numpy(a) for a in (g, x, w))

        def ours(mask):
            return lambda: convcore.conv2d_backward(g, x, w, output_mask=mask, **kw)

        def theirs(mask):
            def run():
                with torch.inference_mode():
                    return torch.ops.aten.convolution_backward(
                        tg, tx, tw, None, [s.stride] * 2, [s.padding] * 2, [s.dilation] * 2,
                        False, [0, 0], s.groups, list(mask))
            return run

        both, gi, gw = (True, True, False), (True, False, False), (False, True, False)
        cases = {"cc": ours(both), "torch": theirs(both), "cc_gi": ours(gi),
                 "torch_gi": theirs(gi), "cc_gw": ours(gw), "torch_gw": theirs(gw),
                 "forward": lambda: convcore.conv2d(x, w, **kw)}
        for f in cases.values():
            f()
        # Repeat cheap calls so that a sample lasts about 30 ms.
        reps = max(1, int(0.03 / max(1e-5, 2 * s.flops / 60e9)))
        times = {k: [] for k in cases}
        for _ in range(args.rounds):
            for name, f in cases.items():
                t0 = clock()
                for _ in range(reps):
                    f()
                times[name].append((clock() - t0) / reps)
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{sid} {args.threads}T ms: " + " ".join(f"{k} {v * 1e3:.3f}" for k, v in med.items())
              + f" | torch/cc {med['torch'] / med['cc']:.2f} (gi {med['torch_gi'] / med['cc_gi']:.2f},"
              f" gw {med['torch_gw'] / med['cc_gw']:.2f}) backward/forward"
              f" {med['cc'] / med['forward']:.2f}", flush=True)


if __name__ == "__main__":
    main()
