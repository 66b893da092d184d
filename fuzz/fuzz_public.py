"""Coverage-guided fuzzing of convcore's public functions with atheris.

    python fuzz/fuzz_public.py -max_total_time=60        (needs: pip install atheris)

Each input picks a function and derives its shapes, parameters and values from the fuzzer's
bytes. The call must raise a documented exception (ValueError, TypeError, MemoryError) or
return the reference's answer; anything else — a crash, a sanitizer report, another
exception, a wrong value — is a finding. Run it against the sanitized build of
.ci/sanitize.sh for memory errors (LD_PRELOAD as there).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    import convcore
    from convcore import testing

DOCUMENTED = (ValueError, TypeError, MemoryError)
MODES = ["zeros", "reflect", "replicate", "circular"]
ACTS = [None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]


def _overflowed(ref_abs, *inputs) -> bool:
    """Finite inputs whose products or sums overflow (sum |x*w| is inf): +inf and -inf may
    then meet (NaN) or not depending on the summation order and on fused multiply-adds (an
    FMA does not round x*w to inf before adding), so IEEE arithmetic fixes no one answer."""
    with np.errstate(all="ignore"):
        finite = all(np.isfinite(a).all() for a in inputs if a is not None)
        return finite and not np.isfinite(ref_abs).all()


def _array(fdp: atheris.FuzzedDataProvider, shape, dtype):
    n = int(np.prod(shape)) if shape else 1
    values = [fdp.ConsumeRegularFloat() for _ in range(min(n, 64))]
    flat = np.resize(np.array(values or [0.0]), n) if n else np.zeros(0)
    with np.errstate(over="ignore", invalid="ignore"):
        return flat.reshape(shape).astype(dtype)


def fuzz_conv2d(fdp: atheris.FuzzedDataProvider) -> None:
    dtype = fdp.PickValueInList([np.float32, np.float64])
    n, c, h, w = (fdp.ConsumeIntInRange(0, 2), fdp.ConsumeIntInRange(1, 5),
                  fdp.ConsumeIntInRange(1, 9), fdp.ConsumeIntInRange(1, 9))
    k, cg = fdp.ConsumeIntInRange(1, 5), fdp.ConsumeIntInRange(1, 5)
    r, s = fdp.ConsumeIntInRange(1, 4), fdp.ConsumeIntInRange(1, 4)
    x = _array(fdp, (n, c, h, w), dtype)
    wt = _array(fdp, (k, cg, r, s), dtype)
    b = _array(fdp, (k,), dtype) if fdp.ConsumeBool() else None
    params = dict(
        stride=(fdp.ConsumeIntInRange(-1, 3), fdp.ConsumeIntInRange(-1, 3)),
        padding=fdp.PickValueInList([0, 1, 2, 5, -1, (1, 0), "same", "valid", "bogus"]),
        dilation=(fdp.ConsumeIntInRange(0, 3), fdp.ConsumeIntInRange(0, 3)),
        groups=fdp.ConsumeIntInRange(0, 3),
        padding_mode=fdp.PickValueInList(MODES),
    )
    act = fdp.PickValueInList(ACTS)
    alg = fdp.PickValueInList(["auto", "direct", "im2col"])
    try:
        y = convcore.conv2d(x, wt, b, **params, activation=act, algorithm=alg)
    except DOCUMENTED:
        return
    if n and not _overflowed(testing.reference_conv2d_abs(x, wt, b, **params), x, wt, b):
        testing.check_conv2d(y, x, wt, b, **params, activation=act)


def fuzz_correlate2d(fdp: atheris.FuzzedDataProvider) -> None:
    import scipy.signal as ss

    dtype = fdp.PickValueInList([np.float32, np.float64, np.int16, np.int64])
    a = _array(fdp, (fdp.ConsumeIntInRange(0, 8), fdp.ConsumeIntInRange(0, 8)), dtype)
    k = _array(fdp, (fdp.ConsumeIntInRange(0, 4), fdp.ConsumeIntInRange(0, 4)), dtype)
    mode = fdp.PickValueInList(["full", "same", "valid", "bad"])
    boundary = fdp.PickValueInList(["fill", "wrap", "symm", "bad"])
    if min(a.size, k.size) == 0 and boundary in ("wrap", "symm"):
        # SciPy dies of SIGFPE here, so there is no answer to compare: convcore must
        # just return or refuse cleanly.
        try:
            convcore.correlate2d(a, k, mode, boundary)
        except DOCUMENTED:
            pass
        return
    try:
        expected = ss.correlate2d(a, k, mode, boundary)
    except Exception:  # noqa: BLE001 - SciPy's own refusals: ours must refuse too
        expected = None
    try:
        got = convcore.correlate2d(a, k, mode, boundary)
    except DOCUMENTED:
        return
    assert expected is not None, "convcore accepted what SciPy refuses"
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if got.dtype.kind != "f":
        assert np.array_equal(got, expected)  # integers: exact, as SciPy
        return
    # Floating point: |error| <= 2 n eps sum|a*k| (n = k.size terms, both sides rounding),
    # non-finite values at the same places.
    with np.errstate(all="ignore"):
        scale = ss.correlate2d(np.abs(a).astype(np.float64), np.abs(k).astype(np.float64),
                               mode, boundary)
        bound = 2 * max(k.size, 1) * np.finfo(got.dtype).eps * scale
        finite = np.isfinite(expected) & np.isfinite(bound)
        assert np.array_equal(np.isnan(got), np.isnan(expected)) or not np.isfinite(scale).all()
        assert (np.abs(got - expected)[finite] <= bound[finite]).all()


def fuzz_linear(fdp: atheris.FuzzedDataProvider) -> None:
    dtype = fdp.PickValueInList([np.float32, np.float64])
    batch = [fdp.ConsumeIntInRange(0, 3) for _ in range(fdp.ConsumeIntInRange(0, 2))]
    fin, fout = fdp.ConsumeIntInRange(0, 12), fdp.ConsumeIntInRange(0, 12)
    x = _array(fdp, (*batch, fin), dtype)
    w = _array(fdp, (fout, fdp.PickValueInList([fin, fin + 1])), dtype)
    b = _array(fdp, (fdp.PickValueInList([fout, fout + 1]),), dtype) if fdp.ConsumeBool() else None
    act = fdp.PickValueInList(ACTS)
    try:
        y = convcore.linear(x, w, b, activation=act)
    except DOCUMENTED:
        return
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    with np.errstate(all="ignore"):
        ref = x64 @ w64.T + (0 if b is None else b.astype(np.float64))
        ref_abs = np.abs(x64) @ np.abs(w64).T + (0 if b is None else np.abs(b.astype(np.float64)))
    if _overflowed(ref_abs, x, w, b):
        return
    testing.assert_conv_close(y, ref, ref_abs, fin + 1, dtype, act)


def fuzz_activation(fdp: atheris.FuzzedDataProvider) -> None:
    dtype = fdp.PickValueInList([np.float32, np.float64, np.int8, np.complex64])
    x = _array(fdp, tuple(fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 3))),
               dtype)
    name = fdp.PickValueInList(["relu", "abs", "square"])
    try:
        y = getattr(convcore, name)(x)
    except DOCUMENTED:
        assert x.dtype.kind == "c", f"{name} refused dtype {x.dtype}"
        return
    xf = x.astype(np.float64) if x.dtype.kind in "iu" else x
    with np.errstate(all="ignore"):
        expected = {"relu": lambda v: np.where(np.isnan(v), v, np.maximum(v, 0)),
                    "abs": np.abs, "square": np.square}[name](xf)
    assert np.array_equal(y, expected.astype(y.dtype), equal_nan=True)


TARGETS = [fuzz_conv2d, fuzz_correlate2d, fuzz_linear, fuzz_activation]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    fdp.PickValueInList(TARGETS)(fdp)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
