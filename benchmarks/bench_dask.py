"""Scale-out benchmark: ``convcore.dask`` beside dask-image and beside convcore on the whole
array (README, "Scale out").

    python benchmarks/bench_dask.py                 # every case, the README's sizes
    python benchmarks/bench_dask.py --quick         # small sizes, a smoke run

Cases (float32; a 3x3 Sobel kernel then ReLU):

* threaded: a 4096x4096 image in 1024x1024 chunks on Dask's threaded scheduler with 2
  workers (convcore capped at 1 thread per task), against dask-image's
  ``ndfilters.correlate`` + ReLU on the same scheduler, the naive ``map_overlap`` around
  ``convcore.correlate2d``, and convcore on the whole array in memory (2 threads) in two
  forms: the issue's ``correlate2d`` then ``relu`` (two calls, two outputs) and the fused
  ``conv2d(..., activation="relu")`` (one call, one output). Each convcore.dask case is
  also set against its whole-array twin, ReLU applied the same way: the fused
  ``convcore.dask.conv2d`` against the fused call, ``correlate2d`` then a ReLU pass
  against the two calls. The input chunks are in memory (persisted); each case is timed
  to a NumPy result (``compute()``) and the fused one also written into a preallocated
  array (``dask.array.store``);
* cluster: 8192x8192 in 2048x2048 chunks on a ``distributed.LocalCluster`` of 2 worker
  processes x 1 thread, the input persisted on the workers and the result kept there
  (``persist`` + ``wait``), against dask-image on the same cluster; ``--cache-mb M`` adds
  the fused case run with the workers' output cache set to M MiB
  (``convcore.set_output_cache_bytes``; the default is 256), to see what recycled output
  memory is worth;
* predict: a batch of 4096 28x28 images through a LeNet-5-like ``Sequential``, chunks of
  512, threaded (2 workers) and on the cluster, against the model on the whole batch;
* out-of-core: a memory-mapped .npy image larger than the cluster's memory limit,
  filtered to another .npy on disk by 2 workers of ``--ooc-limit`` each, with a progress
  bar; the peak memory of each worker (from the scheduler's heartbeats) is reported and
  random tiles of the result are checked against convcore on the same pixels.

Times are medians of interleaved repetitions (every case once per round), so a machine
shared with other work slows all cases alike; read the ratios. The threaded table also
gives each case's median count of minor page faults per run: 0 when every output lands in
memory recycled from earlier outputs, one per fresh 4 KiB page otherwise. A pytest run
(``pytest benchmarks/``) runs the threaded and predict cases once at a small size and
checks their results.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

import convcore
from convcore import layers as L

SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 4


def lenet5() -> L.Sequential:
    """LeNet-5 as in the lecture's time (ReLU, max pooling): 61,706 parameters."""
    return L.Sequential(
        L.Conv2d(1, 6, 5, padding=2, activation="relu", seed=1), L.MaxPool2d(2),
        L.Conv2d(6, 16, 5, activation="relu", seed=2), L.MaxPool2d(2), L.Flatten(),
        L.Dense(400, 120, activation="relu", seed=3), L.Dense(120, 84, activation="relu", seed=4),
        L.Dense(84, 10, seed=5))


def interleaved(cases: Dict[str, Callable[[], Any]], reps: int,
                faults: Any = None) -> Dict[str, float]:
    """Median seconds of each case, the cases run in turn ``reps`` times (after one
    warm-up round). ``faults``, a dict, receives each case's median count of minor page
    faults of this process per run (first touches of fresh memory)."""
    times: Dict[str, List[float]] = {k: [] for k in cases}
    touched: Dict[str, List[int]] = {k: [] for k in cases}
    for rep in range(reps + 1):
        for name, f in cases.items():
            m0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            f()
            if rep:
                times[name].append(time.perf_counter() - t0)
                touched[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - m0)
    if faults is not None:
        faults.update({k: int(np.median(v)) for k, v in touched.items()})
    return {k: float(np.median(v)) for k, v in times.items()}


def table(title: str, results: Dict[str, float], *references: str,
          twins: Any = None, faults: Any = None) -> str:
    """A Markdown table: case, ms, and its speed relative to each of ``references`` (their
    time / its time); ``twins`` (case -> reference) adds a column against each case's own
    reference, ``faults`` (case -> count) the page faults per run."""
    twins = twins or {}
    head = [f"speed vs {r}" for r in references] + (["speed vs whole array, same form"]
                                                    if twins else [])
    head += ["page faults per run"] if faults else []
    lines = [f"**{title}**", "", "| case | ms | " + " | ".join(head) + " |",
             "| --- | ---: |" + " ---: |" * len(head)]
    for name, t in results.items():
        cells = [f"{results[r] / t:.2f}x" for r in references]
        if twins:
            cells.append(f"{results[twins[name]] / t:.2f}x" if name in twins else "")
        if faults:
            cells.append(str(faults[name]))
        lines.append(f"| {name} | {t * 1e3:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


WHOLE_TWO = "convcore, whole array: relu(correlate2d(img, sobel, 'same'))"
WHOLE_FUSED = "convcore, whole array: conv2d(img4, sobel4, padding=1, activation='relu')"
DASK_IMAGE = "dask-image ndfilters.correlate + maximum(0)"


def sobel_relu_cases(x: Any, img: np.ndarray) -> Tuple[Dict[str, Callable], Dict[str, str]]:
    """The threaded cases, and each convcore.dask case's whole-array twin: the same calls
    on the image in memory, ReLU applied the same way (fused into the convolution, or a
    second pass making a second array), float32 out, what a user would write either way."""
    import dask.array as da
    import dask_image.ndfilters as ndf

    import convcore.dask as cd

    out = np.empty((1, 1) + img.shape, np.float32)
    k4 = SOBEL[None, None]

    def naive(block):
        return convcore.relu(convcore.correlate2d(block, SOBEL, mode="same"))

    def fused():
        return cd.conv2d(x[None, None], k4, padding=1, activation="relu")

    cases = {
        WHOLE_TWO: lambda: convcore.relu(convcore.correlate2d(img, SOBEL, mode="same")),
        WHOLE_FUSED: lambda: convcore.conv2d(img[None, None], k4, padding=1, activation="relu"),
        "convcore.dask.conv2d(activation='relu').compute()": lambda: fused().compute(),
        "convcore.dask.conv2d(activation='relu'), dask.array.store into an array":
            lambda: da.store(fused(), out, lock=False),
        "convcore.dask.correlate2d(x, sobel, 'same').map_blocks(relu).compute()":
            lambda: cd.correlate2d(x, SOBEL, "same").map_blocks(convcore.relu).compute(),
        "naive map_overlap(convcore.correlate2d + relu)":
            lambda: x.map_overlap(naive, depth=1, boundary=0).compute(),
        DASK_IMAGE: lambda: da.maximum(ndf.correlate(x, SOBEL, mode="constant"), 0).compute(),
    }
    twins = {k: WHOLE_FUSED for k in cases if "conv2d(activation" in k}
    twins.update({k: WHOLE_TWO for k in cases if "map_blocks(relu)" in k or "naive" in k})
    return cases, twins


def check_sobel(x: Any, img: np.ndarray) -> None:
    import convcore.dask as cd

    want = convcore.conv2d(img[None, None], SOBEL[None, None], padding=1, activation="relu")
    got = cd.conv2d(x[None, None], SOBEL[None, None], padding=1, activation="relu").compute()
    assert np.array_equal(got, want), "convcore.dask.conv2d differs from the whole-array call"
    want2 = convcore.relu(convcore.correlate2d(img, SOBEL, mode="same"))
    got2 = cd.correlate2d(x, SOBEL, "same").map_blocks(convcore.relu).compute()
    assert np.array_equal(got2, want2), "convcore.dask.correlate2d differs"


def run_threaded(size: int, chunk: int, reps: int) -> str:
    import dask
    import dask.array as da

    img = np.random.default_rng(0).random((size, size), dtype=np.float32)
    with dask.config.set(scheduler="threads", num_workers=2):
        x = da.from_array(img, chunks=chunk).map_blocks(np.ascontiguousarray).persist()
        check_sobel(x, img)
        cases, twins = sobel_relu_cases(x, img)
        faults: Dict[str, int] = {}
        res = interleaved(cases, reps, faults)
    return table(f"Sobel + ReLU, {size}x{size} float32 in {chunk}x{chunk} chunks, threaded "
                 "scheduler, 2 workers (convcore.dask: 1 convcore thread per task; whole "
                 f"array: {convcore.get_num_threads()} threads); median of {reps}",
                 res, DASK_IMAGE, WHOLE_TWO, WHOLE_FUSED, twins=twins, faults=faults)


def run_predict(client: Any, batch: int, reps: int) -> str:
    import dask
    import dask.array as da

    import convcore.dask as cd

    model = lenet5()
    xs = np.random.default_rng(1).random((batch, 1, 28, 28), dtype=np.float32)
    chunk = max(1, batch // 8)
    x = da.from_array(xs, chunks=(chunk, 1, 28, 28))
    want = model(xs)
    with dask.config.set(scheduler="threads", num_workers=2):
        assert np.array_equal(cd.predict(model, x).compute(), want)
    whole = f"model(x), whole batch, {convcore.get_num_threads()} threads"
    cases = {whole: lambda: model(xs)}
    cases["convcore.dask.predict, threaded, 2 workers"] = \
        lambda: cd.predict(model, x).compute(scheduler="threads", num_workers=2)
    if client is not None:
        xc = client.persist(x)
        assert np.array_equal(client.compute(cd.predict(model, xc)).result(), want)
        cases["convcore.dask.predict, LocalCluster 2 x 1"] = \
            lambda: client.compute(cd.predict(model, xc)).result()
    res = interleaved(cases, reps)
    return table(f"LeNet-5 ({model.num_params:,} parameters), batch of {batch} 28x28 images "
                 f"in chunks of {chunk}; median of {reps}", res, whole)


def run_cluster(client: Any, size: int, chunk: int, reps: int, cache_mb: Any = None) -> str:
    import dask.array as da
    import dask_image.ndfilters as ndf
    from distributed import wait

    import convcore.dask as cd

    x = da.random.default_rng(2).random((size, size), chunks=chunk, dtype=np.float32)
    x = client.persist(x)
    wait(x)

    def run(make):
        y = client.persist(make())
        wait(y)
        # Forgotten before the next round: the keys are deterministic, so a round made while
        # the scheduler still held the last one's results would find them computed.
        client.cancel(y)

    sample = client.compute(x[:chunk + 8, :chunk + 8]).result()
    got = client.compute(cd.conv2d(x[None, None], SOBEL[None, None], padding=1,
                                   activation="relu")[0, 0, :chunk, :chunk]).result()
    want = convcore.conv2d(sample[None, None], SOBEL[None, None], padding=1,
                           activation="relu")[0, 0, :chunk, :chunk]
    assert np.array_equal(got, want)
    def fused():
        return cd.conv2d(x[None, None], SOBEL[None, None], padding=1, activation="relu")

    def with_cache(nbytes):
        default = client.run(convcore.get_output_cache_bytes)
        client.run(convcore.set_output_cache_bytes, nbytes)
        try:
            run(fused)
        finally:
            for addr, old in default.items():
                client.run(convcore.set_output_cache_bytes, old, workers=[addr])

    cases = {"convcore.dask.conv2d(activation='relu')": lambda: run(fused)}
    if cache_mb is not None:
        cases[f"convcore.dask.conv2d(activation='relu'), workers' output cache {cache_mb} MiB"] = \
            lambda: with_cache(int(cache_mb) << 20)
    cases.update({
        "convcore.dask.correlate2d + map_blocks(relu)": lambda: run(
            lambda: cd.correlate2d(x, SOBEL, "same").map_blocks(convcore.relu)),
        DASK_IMAGE: lambda: run(
            lambda: da.maximum(ndf.correlate(x, SOBEL, mode="constant"), 0)),
    })
    res = interleaved(cases, reps)
    key = DASK_IMAGE
    return table(f"Sobel + ReLU, {size}x{size} float32 in {chunk}x{chunk} chunks, "
                 f"LocalCluster of 2 worker processes x 1 thread (input and result on the "
                 f"workers: persist + wait); median of {reps}", res, key)


class NpyChunks:
    """A .npy file read lazily, chunk by chunk, on whichever worker asks (pickles as its
    path): ``dask.array.from_array(NpyChunks(path), chunks=...)``."""

    def __init__(self, path: str) -> None:
        self.path = path
        mm = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = mm.shape, mm.dtype, mm.ndim

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[index])


class NpyTarget:
    """A .npy file that ``dask.array.store`` writes block by block from the workers."""

    def __init__(self, path: str, shape: Any, dtype: Any) -> None:
        self.path = path
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()

    def __setitem__(self, index: Any, value: np.ndarray) -> None:
        # A shared mapping: the page cache holds the write for every process, no flush.
        np.load(self.path, mmap_mode="r+")[index] = value


def run_out_of_core(size: int, chunk: int, limit: str, directory: str) -> str:
    import dask.array as da
    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster, progress

    import convcore.dask as cd

    src, dst = os.path.join(directory, "ooc_in.npy"), os.path.join(directory, "ooc_out.npy")
    rng = np.random.default_rng(3)
    mm = np.lib.format.open_memmap(src, mode="w+", dtype=np.float32, shape=(size, size))
    for r in range(0, size, chunk):
        mm[r:r + chunk] = rng.random((min(chunk, size - r), size), dtype=np.float32)
    mm.flush()
    del mm
    nbytes = size * size * 4
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=limit) as cluster, \
            Client(cluster) as client:
        x = da.from_array(NpyChunks(src), chunks=chunk)
        y = cd.conv2d(x[None, None], SOBEL[None, None], padding=1, activation="relu")[0, 0]
        stored = da.store(y, NpyTarget(dst, y.shape, y.dtype), lock=False, compute=False)
        peaks: Dict[str, int] = {}
        done = threading.Event()

        def watch():
            while not done.is_set():
                for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
                    peaks[addr] = max(peaks.get(addr, 0), w["metrics"]["memory"])
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        future = client.compute(stored)
        progress(future)
        future.result()
        elapsed = time.perf_counter() - t0
        done.set()
        watcher.join()
    # Random tiles of the result against convcore on the same pixels (with their halo).
    inp, out = np.load(src, mmap_mode="r"), np.load(dst, mmap_mode="r")
    for r, c in rng.integers(0, size - 256, size=(3, 2)):
        r0, c0 = max(r - 1, 0), max(c - 1, 0)
        tile = np.array(inp[r0:r + 257, c0:c + 257])
        pads = (r - r0, r + 257 - min(r + 257, size), c - c0, c + 257 - min(c + 257, size))
        padded = np.pad(tile, ((1 - pads[0], 1 - pads[1]), (1 - pads[2], 1 - pads[3])))
        want = convcore.conv2d(padded[None, None], SOBEL[None, None], activation="relu")[0, 0]
        assert np.array_equal(np.array(out[r:r + 256, c:c + 256]), want[:256, :256])
    limit_b = parse_bytes(limit)
    peak = max(peaks.values()) if peaks else 0
    lines = [
        f"**Out of core**: a {size}x{size} float32 .npy ({nbytes / 2**30:.2f} GiB, memory-mapped) "
        f"filtered (Sobel + ReLU, {chunk}x{chunk} chunks) to another .npy on disk by a "
        f"LocalCluster of 2 worker processes with memory_limit={limit} each "
        f"({2 * limit_b / 2**30:.2f} GiB in all, less than the input): {elapsed:.1f} s, "
        f"{nbytes / 2**20 / elapsed:.0f} MiB/s of input; peak worker memory "
        + ", ".join(f"{v / 2**20:.0f} MiB" for v in sorted(peaks.values()))
        + f" (limit {limit_b / 2**20:.0f} MiB: {'under' if peak < limit_b else 'OVER'}); "
          "3 random 256x256 tiles equal to convcore on the same pixels.",
    ]
    os.remove(src)
    os.remove(dst)
    return "\n".join(lines)


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default="threaded,cluster,predict,ooc",
                        help="comma-separated cases (default: all)")
    parser.add_argument("--ooc-size", type=int, default=16384)
    parser.add_argument("--ooc-limit", default="300MiB")
    parser.add_argument("--cache-mb", type=int, default=None,
                        help="cluster: also run the fused case with the workers' output cache "
                             "at this many MiB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="for the out-of-core files")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    convcore.set_num_threads(2)
    q = args.quick
    print(f"convcore {convcore.__version__}, ISA {convcore.info()['isa']}, "
          f"{os.cpu_count()} CPUs, output cache {convcore.get_output_cache_bytes() >> 20} MiB, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if "threaded" in only:
        print(run_threaded(1024 if q else 4096, 256 if q else 1024, args.reps),
              f"\n(load average {os.getloadavg()[0]:.1f})\n", flush=True)
    client = cluster = None
    if only & {"cluster", "predict"}:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    try:
        if "cluster" in only:
            print(run_cluster(client, 2048 if q else 8192, 512 if q else 2048, args.reps,
                              args.cache_mb),
                  f"\n(load average {os.getloadavg()[0]:.1f})\n", flush=True)
        if "predict" in only:
            print(run_predict(client, 512 if q else 4096, args.reps), "\n", flush=True)
    finally:
        if client is not None:
            client.close()
            cluster.close()
    if "ooc" in only:
        print(run_out_of_core(2048 if q else args.ooc_size, 512 if q else 1024,
                              "200MiB" if q else args.ooc_limit, args.dir), flush=True)
    return 0


def test_smoke():
    """pytest benchmarks/: the threaded and predict cases once, small, results checked
    (with the session's thread count for the whole-array calls)."""
    import pytest

    pytest.importorskip("dask")
    pytest.importorskip("dask_image")
    pytest.importorskip("distributed")
    print(run_threaded(512, 128, 1))
    print(run_predict(None, 64, 1))


if __name__ == "__main__":
    sys.exit(main())
