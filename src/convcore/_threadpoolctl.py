"""A threadpoolctl controller for convcore's thread pool, so that
``threadpoolctl.threadpool_limits(n)`` limits convcore as it limits BLAS and OpenMP,
and ``threadpool_info()`` lists it (user_api and internal_api ``"convcore"``).

threadpoolctl finds libraries by the file names of the loaded shared objects; the
prefix ``_core.`` is common to many pybind11 packages, so the controller accepts only
the file that is ``convcore._core`` (any other raises OSError, which threadpoolctl
takes as "not this library"). The thread count is read and set through the module's
Python functions: nothing else needs to be exported from the shared object.
"""

from __future__ import annotations

import os

from . import _core


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def register() -> bool:
    """Register the controller with threadpoolctl (>= 3.5, which has ``register``) when it
    is installed. Returns whether it was registered. Called once, on import of convcore."""
    try:
        import threadpoolctl
    except ImportError:
        return False
    base = getattr(threadpoolctl, "LibController", None)
    if base is None or not hasattr(threadpoolctl, "register"):
        return False

    class ConvcoreController(base):
        """convcore's persistent std::thread pool (``convcore.set_num_threads``)."""

        user_api = "convcore"
        internal_api = "convcore"
        filename_prefixes = ("_core.",)

        def get_num_threads(self) -> int:
            return _core.get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            _core.set_num_threads(max(1, int(num_threads)))

        def get_version(self) -> str:
            return _core.version()

        def set_additional_attributes(self) -> None:
            if not _same_file(self.filepath, _core.__file__):
                raise OSError(f"{self.filepath} is not convcore._core")

    threadpoolctl.register(ConvcoreController)
    return True
