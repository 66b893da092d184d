"""Shared fixtures of the benchmark suites (``pytest benchmarks/``).

* Threads: every implementation — convcore, BLAS/OpenMP via threadpoolctl, PyTorch,
  OpenCV, ONNX Runtime — is pinned to ``--convcore-threads`` (default 1) for the session.
* The peak: the C++ FMA probe (``convcore._core.measure_peak_gflops``) measured once per
  session; each result's ``extra_info`` carries ``gflops`` and ``fraction_of_peak``.
* ``--benchmark-disable`` (CI): cases marked ``large`` are deselected, the rest run once
  and check their results.

Peers that are not installed skip with the reason (``convcore.bench.Unavailable``).
"""

from __future__ import annotations

import pytest

from convcore import bench


def pytest_addoption(parser):
    parser.addoption("--convcore-threads", type=int, default=1,
                     help="threads for convcore and every peer (default 1)")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("benchmark_disable", default=False):
        return
    large = [item for item in items if item.get_closest_marker("large")]
    if large:
        config.hook.pytest_deselected(items=large)
        items[:] = [item for item in items if not item.get_closest_marker("large")]


@pytest.fixture(scope="session", autouse=True)
def threads(request):
    """The thread count of every implementation, pinned for the whole session."""
    n = request.config.getoption("--convcore-threads")
    with bench.pinned_threads(n):
        yield n


@pytest.fixture(scope="session")
def peak(threads):
    """The measured float32 FMA peak (GFLOP/s) of ``threads`` threads."""
    return bench.peak_gflops(threads)


@pytest.fixture
def run(benchmark, peak, threads):
    """``run(fn, group=..., flops=... | elements=..., **info)``: benchmark ``fn`` in
    ``group``, record GFLOP/s and the fraction of peak (or Gelements/s) and ``info`` in
    ``extra_info``, return fn's result."""

    def go(fn, *, group: str, flops: float = 0, elements: float = 0, **info):
        benchmark.group = group
        benchmark.extra_info.update(info, threads=threads, peak_gflops=round(peak, 1))
        result = benchmark(fn)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            median = stats.stats.median
            if flops:
                benchmark.extra_info["gflops"] = round(flops / median * 1e-9, 3)
                benchmark.extra_info["fraction_of_peak"] = round(flops / median * 1e-9 / peak, 4)
            if elements:
                benchmark.extra_info["gelements_per_s"] = round(elements / median * 1e-9, 3)
        return result

    return go

