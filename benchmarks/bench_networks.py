"""Whole-network inference: ResNet-18, ResNet-50 and MobileNetV2 (``convcore.models``,
224x224 float32 images) in convcore (``model.fuse()``: eval mode, batch normalisation
folded into the convolutions, ReLUs fused) beside the same networks with the same weights
in PyTorch eager (``convcore.bench.torchvision_twin``, eval, ``no_grad``) and in ONNX
Runtime (that PyTorch model exported by ``torch.onnx.export``, all graph optimisations).
GFLOP/s count 2 x the multiply-adds of the convolutions and the classifier.

As a script, the implementations are timed interleaved (``convcore.bench.measure``),
for every network, batch size and thread count asked for, then the per-call overhead of
a tiny convolution (a 1x1x4x4 input, a 1x1x3x3 filter) against PyTorch's ``F.conv2d``::

    PYTHONPATH=src python benchmarks/bench_networks.py [--models resnet18 ...]
        [--batch 1 32] [--threads 1 2] [--rounds R]
"""

from __future__ import annotations

import argparse
import io
from typing import Any, Callable, Dict, List

import numpy as np
import pytest

import convcore
from convcore import bench, models

NETWORKS = ("resnet18", "resnet50", "mobilenet_v2")
SIZE = 224


def torch_model(name: str, seed: int = 0) -> Any:
    """The PyTorch twin, eval mode, with PyTorch's initialisation and random batch
    normalisation statistics (so folding them is not the identity)."""
    torch = bench.require("torch")
    torch.manual_seed(seed)
    model = bench.torchvision_twin(name)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1, generator=gen)
                mod.running_var.uniform_(0.5, 1.5, generator=gen)
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                mod.bias.uniform_(-0.1, 0.1, generator=gen)
    return model.eval()


def images(batch: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def flops(name: str, batch: int) -> float:
    return 2.0 * getattr(models, name)().macs((batch, 3, SIZE, SIZE))


def convcore_infer(name: str, batch: int, size: int = SIZE) -> Callable[[], np.ndarray]:
    """convcore's fused model on the twin's weights (without PyTorch: seeded weights)."""
    model = getattr(models, name)(seed=0)
    try:
        model.load_state_dict(torch_model(name).state_dict())
    except bench.Unavailable:
        pass
    fused = model.fuse()
    x = images(batch, size=size)
    return lambda: fused(x)


def torch_infer(name: str, batch: int, size: int = SIZE) -> Callable[[], np.ndarray]:
    torch = bench.require("torch")
    model = torch_model(name)
    x = torch.from_numpy(images(batch, size=size))

    def run() -> np.ndarray:
        with torch.no_grad():
            return model(x).numpy()

    return run


def onnx_bytes(name: str) -> bytes:
    """The PyTorch twin exported to ONNX (batch dimension dynamic)."""
    torch = bench.require("torch")
    bench.require("onnx")
    buf = io.BytesIO()
    torch.onnx.export(torch_model(name), (torch.zeros(1, 3, SIZE, SIZE),), buf,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}},
                      dynamo=False)
    return buf.getvalue()


def onnxruntime_infer(name: str, batch: int) -> Callable[[], np.ndarray]:
    ort = bench.require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = bench.current_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes(name), options,
                                   providers=["CPUExecutionProvider"])
    x = images(batch)
    return lambda: session.run(None, {"x": x})[0]


IMPLS: Dict[str, Callable[[str, int], Callable[[], np.ndarray]]] = {
    "convcore": convcore_infer, "pytorch": torch_infer, "onnxruntime": onnxruntime_infer}


@pytest.mark.large
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("batch", [1, 32])
def test_network_inference(run, name, batch, impl):
    from benchutil import make_or_skip

    fn = make_or_skip(lambda: IMPLS[impl](name, batch))
    y = run(fn, group=f"{name}-b{batch}", flops=flops(name, batch), impl=impl)
    assert y.shape == (batch, 1000) and np.isfinite(y).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_same_network_same_answer(name):
    """convcore and PyTorch compute the same logits on the benchmarks' weights (64x64
    images, so that CI runs it; float32 with different summation orders: within 1e-3 of
    the logits' scale, far below any structural mistake; tests/test_networks.py holds
    the derived bounds)."""
    from benchutil import make_or_skip

    theirs = make_or_skip(lambda: torch_infer(name, 2, size=64))()
    ours = convcore_infer(name, 2, size=64)()
    assert np.abs(ours - theirs).max() <= 1e-3 * np.abs(theirs).max()


# ----------------------------------------------------------------------------- per-call overhead


def tiny_calls() -> Dict[str, Callable[[], object]]:
    """conv2d on a 1x1x4x4 input: the functional call, an eval-mode layer, PyTorch."""
    x = np.ones((1, 1, 4, 4), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    layer = convcore.layers.Conv2d(1, 1, 3, bias=False).eval()
    layer.weight = w
    calls: Dict[str, Callable[[], object]] = {
        "convcore.conv2d": lambda: convcore.conv2d(x, w),
        "layers.Conv2d (eval)": lambda: layer(x)}
    try:
        torch = bench.require("torch")
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        calls["torch F.conv2d"] = lambda: torch.nn.functional.conv2d(tx, tw)
    except bench.Unavailable:
        pass
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--batch", nargs="+", type=int, default=[1])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    info = convcore.info()
    print(f"convcore {info['version']}, ISA {info['isa']}, {args.rounds} interleaved rounds, "
          f"{SIZE}x{SIZE} float32; ms = median per call; ratio = peer time / convcore time "
          f"(median of per-round ratios)")
    print("| network | batch | threads | convcore ms (GFLOP/s, % peak) | PyTorch ms (x) "
          "| ONNX Runtime ms (x) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for threads in args.threads:
        peak = bench.peak_gflops(threads)
        with bench.pinned_threads(threads):
            for name in args.models:
                for batch in args.batch:
                    fns: Dict[str, Callable[[], object]] = {}
                    notes: List[str] = []
                    for impl, make in IMPLS.items():
                        try:
                            fns[impl] = make(name, batch)
                        except bench.Unavailable as e:
                            notes.append(f"{impl}: {e}")
                    result = bench.measure(fns, rounds=args.rounds, sample_s=0.3,
                                           baseline="convcore")
                    sec = result["convcore"][0]
                    gf = flops(name, batch) / sec * 1e-9
                    cells = [f"{sec * 1e3:.1f} ({gf:.0f}, {100 * gf / peak:.0f}%)"]
                    for impl in ("pytorch", "onnxruntime"):
                        cells.append(f"{result[impl][0] * 1e3:.1f} ({result[impl][1]:.2f}x)"
                                     if impl in result else "–")
                    print(f"| {name} | {batch} | {threads} | " + " | ".join(cells) + " |"
                          + (f"  ({'; '.join(notes)})" if notes else ""), flush=True)
    for threads in args.threads:
        with bench.pinned_threads(threads):
            result = bench.measure(tiny_calls(), rounds=args.rounds * 3, sample_s=0.05)
        print(f"per-call overhead, conv2d on 1x1x4x4, {threads} thread(s): " + ", ".join(
            f"{k} {v[0] * 1e6:.1f} us" for k, v in result.items()))


if __name__ == "__main__":
    main()
