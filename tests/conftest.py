"""Shared fixtures: a seeded random generator, every runnable ISA, 1 and 2 threads.

``convcore`` is imported lazily so that tests which only need
``convcore.testing`` (``test_reference.py``) do not depend on the compiled core
being importable at collection time.
"""

import numpy as np
import pytest


def available_isas():
    """ISAs this build has compiled *and* this CPU can run, scalar first."""
    import convcore

    info = convcore.info()
    supported = list(info["isas_supported"])
    compiled = info.get("isas_compiled", supported)
    return [isa for isa in supported if isa in compiled]


def pytest_generate_tests(metafunc):
    # Parametrise here rather than with fixture(params=...) so the list is
    # computed only for tests that ask for an ISA.
    if "isa" in metafunc.fixturenames:
        isas = available_isas()
        metafunc.parametrize("isa", isas, ids=isas, indirect=True)


@pytest.fixture
def rng():
    """A NumPy Generator with a fixed seed (each test gets a fresh one)."""
    return np.random.default_rng(20240607)


@pytest.fixture
def isa(request):
    """Force one ISA's kernels for the test (``_core.set_isa``), restore after."""
    from convcore import _core

    previous = _core.get_isa()
    _core.set_isa(request.param)
    try:
        yield request.param
    finally:
        _core.set_isa(previous)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Run the test with 1 and with 2 threads, restore the previous count after."""
    import convcore

    previous = convcore.get_num_threads()
    convcore.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        convcore.set_num_threads(previous)
