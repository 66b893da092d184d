"""The package around the kernels: info, the stub, the kernel registry, environment
variables, the command line, threads, fork, Ctrl-C and the floating-point environment."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import convcore
from convcore import _core

STUB = Path(convcore.__file__).with_name("_core.pyi")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )


def test_info_keys_and_values():
    info = convcore.info()
    assert info["version"] == convcore.__version__
    assert info["isas_compiled"][-1] == "scalar"
    assert set(info["isas_supported"]) <= set(info["isas_compiled"])
    assert info["isa"] in info["isas_supported"]
    assert info["threads"] == convcore.get_num_threads() >= 1
    assert info["compiler"] and "baseline" in info["flags"]
    assert "-march=native" not in info["flags"] and "fast-math" not in info["flags"]


def test_stub_names_exactly_the_module():
    tree = ast.parse(STUB.read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert stubbed == public


def test_stub_parameters_match_the_module():
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            doc = getattr(_core, node.name).__doc__ or ""
            for arg in node.args.args:
                assert f"{arg.arg}:" in doc, f"{node.name}: stub argument {arg.arg!r} unknown"


def test_py_typed_ships():
    assert Path(convcore.__file__).with_name("py.typed").exists()


def test_kernel_registry_lists_every_slot_of_every_table():
    rows = _core.kernels()
    tables = {r["table"] for r in rows}
    assert tables == set(_core.isas_compiled())
    slots = {t: {r["op"] for r in rows if r["table"] == t} for t in tables}
    assert len({frozenset(s) for s in slots.values()}) == 1, "tables must fill the same slots"
    # A table holds its own kernels or those of a narrower ISA its CPUs also run
    # (the AVX-512 table keeps AVX2 kernels where 32 registers do not pay).
    narrower = {"scalar": {"scalar"}, "avx2": {"scalar", "avx2"},
                "avx512": {"scalar", "avx2", "avx512"}}
    for r in rows:
        assert r["name"].endswith("_" + r["isa"]), r
        assert r["isa"] in narrower[r["table"]], r
    assert all(r["isa"] == "scalar" for r in rows if r["table"] == "scalar")


@pytest.mark.parametrize("value", ["bogus", "avx1024", "AVX2"])
def test_bad_convcore_isa_is_a_clear_error_at_import(value):
    r = _run("import convcore", CONVCORE_ISA=value)
    assert r.returncode != 0
    assert "CONVCORE_ISA" in r.stderr and "ValueError" in r.stderr


def test_convcore_isa_forces_scalar():
    r = _run("import convcore; print(convcore.info()['isa'])", CONVCORE_ISA="scalar")
    assert r.returncode == 0 and r.stdout.strip() == "scalar"


def test_set_isa_rejects_unknown():
    with pytest.raises(ValueError, match="unknown ISA"):
        _core.set_isa("sse9")


def test_num_threads_from_environment():
    r = _run("import convcore; print(convcore.get_num_threads())", CONVCORE_NUM_THREADS="3")
    assert r.stdout.strip() == "3"
    r = _run("import convcore", CONVCORE_NUM_THREADS="many")
    assert r.returncode != 0 and "CONVCORE_NUM_THREADS" in r.stderr


def test_set_num_threads_validates():
    old = convcore.get_num_threads()
    try:
        convcore.set_num_threads(3)
        assert convcore.get_num_threads() == 3
        with pytest.raises(ValueError, match="n must be >= 1"):
            convcore.set_num_threads(0)
        with pytest.raises(TypeError, match="n must be an integer"):
            convcore.set_num_threads(2.0)
    finally:
        convcore.set_num_threads(old)


def test_command_line_info_and_default():
    r = subprocess.run([sys.executable, "-m", "convcore", "info"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "isas_supported" in r.stdout


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((12, 16, 3, 3)).astype(np.float32)
    return x, w


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_after_fork_computes_correctly():
    x, w = _problem()
    expected = convcore.conv2d(x, w, padding=1)  # the pool exists before the fork
    pid = os.fork()
    if pid == 0:  # child: must not hang on the parent's pool, must give the same answer
        ok = np.array_equal(convcore.conv2d(x, w, padding=1), expected)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("child hung after fork")


def test_set_num_threads_while_other_threads_compute():
    x, w = _problem(1)
    expected = convcore.conv2d(x, w, padding=1)
    old = convcore.get_num_threads()
    errors = []

    def worker():
        for _ in range(20):
            if not np.array_equal(convcore.conv2d(x, w, padding=1), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for n in [1, 2, 3, 1, 2] * 4:
        convcore.set_num_threads(n)
    for t in threads:
        t.join()
    convcore.set_num_threads(old)
    assert not errors


def test_ctrl_c_interrupts_a_long_call_quickly():
    code = r"""
import os, signal, threading, time
import numpy as np, convcore
# 77 GFLOP: about 0.2 s even at 400 GFLOP/s (two full-width AVX-512 cores), so the call is
# still running when the signal comes at 0.05 s on any machine; 3x3 keeps each task short
# (the pool polls for the signal between tasks), also with the scalar kernels.
x = np.ones((64, 64, 128, 128), np.float32); w = np.ones((64, 64, 3, 3), np.float32)
# The signal state is inherited from whoever started this process (a test runner that spawned
# multiprocessing helpers may have SIGINT ignored or blocked): state the precondition here.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
fired = []
def fire():
    time.sleep(0.05); fired.append(time.perf_counter()); os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=fire).start()
try:
    convcore.conv2d(x, w, padding=1, algorithm="direct")
    status = open("/proc/self/status").read().splitlines()
    print("not interrupted", fired, [l for l in status if l.startswith(("SigBlk", "SigIgn"))])
except KeyboardInterrupt:
    print("latency", time.perf_counter() - fired[0])
y = convcore.conv2d(x[:1, :, :8, :8], w, padding=1)
print("usable", bool(np.all(y[0, :, 1:-1, 1:-1] == 576)))
"""
    r = _run(code, CONVCORE_NUM_THREADS="2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("latency"), r.stdout
    assert float(lines[0].split()[1]) < 0.5
    assert lines[1] == "usable True"


def test_no_flush_to_zero_after_calls():
    x, w = _problem(2)
    convcore.conv2d(x, w, padding=1)
    convcore.sigmoid(x)
    tiny = np.float32(1e-38)
    assert tiny * np.float32(1e-3) != 0  # subnormal results survive
    assert np.float64(1e-308) * 1e-5 != 0


def test_subnormal_inputs_give_correct_results():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((1, 4, 9, 9)) * 1e-39).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    from convcore.testing import reference_conv2d

    for algorithm in ("direct", "im2col"):
        y = convcore.conv2d(x, w, padding=1, algorithm=algorithm)
        r = reference_conv2d(x, w, padding=1)
        # 36 terms; each product and each addition rounds to a grid no coarser than
        # ulp(1e-37) = 2**-146 here (|y| < 2**-122), so |error| <= 72 * 2**-147.
        assert np.abs(y - r).max() <= 72 * 2.0**-147


def test_convcore_dask_without_dask_says_what_to_install():
    r = _run("import sys; sys.modules['dask'] = None\n"
             "try:\n    import convcore.dask\nexcept ImportError as e:\n    print(e)\n")
    assert r.returncode == 0 and "pip install 'convcore[dask]'" in r.stdout, r.stderr
