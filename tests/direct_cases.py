"""What the direct-kernel tests share (test_direct_kernels.py, test_direct_nchwc.py): a case
run through ``conv2d(..., algorithm="direct")`` on every ISA the machine has, on 1 and 2
threads, checked against the float64 reference within the a-priori bound, bitwise across
thread counts, and bitwise against the scalar twin when the epilogue is exact."""

import numpy as np

import convcore
from convcore import _core
from convcore.testing import check_conv2d

DTYPES = [np.float32, np.float64]
# Activations the SIMD epilogues compute exactly as the scalar twin does; sigmoid and tanh
# differ by the vector exp's few ulps (libm in the twin) and are checked by the bound.
EXACT = (None, "relu", "abs", "square", "leaky_relu")


def edges(t):
    """The sizes around a tile of ``t``: 1, t - 1, t, t + 1, 2t + 1."""
    return {e for e in (1, t - 1, t, t + 1, 2 * t + 1) if e >= 1}


def isas():
    info = convcore.info()
    return [i for i in info["isas_supported"] if i in info["isas_compiled"]]


def run_everywhere(x, w, b, **kw):
    """{(isa, threads): result} for every ISA and 1, 2 threads."""
    out = {}
    prev_isa, prev_threads = _core.get_isa(), convcore.get_num_threads()
    try:
        for isa in isas():
            _core.set_isa(isa)
            for threads in (1, 2):
                convcore.set_num_threads(threads)
                out[isa, threads] = convcore.conv2d(x, w, b, algorithm="direct", **kw)
    finally:
        _core.set_isa(prev_isa)
        convcore.set_num_threads(prev_threads)
    return out


def check(rng, dtype, n, c, h, wd, k, r, s, groups=1, bias=True, **kw):
    """One case, random data: the bound, thread counts and the scalar twin (see above)."""
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    results = run_everywhere(x, w, b, groups=groups, **kw)
    exact = kw.get("activation") in EXACT
    for (isa, threads), y in results.items():
        where = f"isa={isa} threads={threads}"
        check_conv2d(y, x, w, b, groups=groups, **kw)
        assert np.array_equal(y, results[isa, 1], equal_nan=True), f"{where}: differs from 1 thread"
        if exact:
            assert np.array_equal(y, results["scalar", 1], equal_nan=True), (
                f"{where}: differs from the scalar twin")
