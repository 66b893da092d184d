"""threadpoolctl sees and limits convcore's thread pool (issue 19, item 10)."""

import pytest

import convcore
from convcore import _core

threadpoolctl = pytest.importorskip("threadpoolctl")
if not hasattr(threadpoolctl, "register"):
    pytest.skip("threadpoolctl < 3.5 has no register()", allow_module_level=True)


def _entries():
    return [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "convcore"]


def test_threadpool_info_lists_convcore_once():
    (entry,) = _entries()
    assert entry["user_api"] == "convcore" and entry["version"] == convcore.__version__
    assert entry["num_threads"] == convcore.get_num_threads()
    import os

    assert os.path.samefile(entry["filepath"], _core.__file__)


@pytest.mark.parametrize("kwargs", [{"limits": 1}, {"limits": 1, "user_api": "convcore"},
                                    {"limits": {"convcore": 1}}])
def test_threadpool_limits_limits_convcore_and_restores(kwargs):
    before = convcore.get_num_threads()
    convcore.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(**kwargs):
            assert convcore.get_num_threads() == 1
        assert convcore.get_num_threads() == 2
    finally:
        convcore.set_num_threads(before)


def test_other_user_apis_leave_convcore_alone():
    before = convcore.get_num_threads()
    convcore.set_num_threads(2)
    try:
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            assert convcore.get_num_threads() == 2
    finally:
        convcore.set_num_threads(before)


def test_controller_refuses_other_core_modules(tmp_path):
    """Another package's ``_core.*.so`` shares the file-name prefix: not convcore's."""
    from convcore._threadpoolctl import _same_file

    other = tmp_path / "_core.cpython-311-x86_64-linux-gnu.so"
    other.write_bytes(b"")
    assert not _same_file(str(other), _core.__file__)
    assert _same_file(_core.__file__, _core.__file__)
