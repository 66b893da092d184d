"""Single-channel 2-D filtering, ``correlate2d(image, kernel, mode="same")``: convcore
beside SciPy (signal.correlate2d, ndimage.correlate) and OpenCV (filter2D), on one plane
of every stride-1 SHAPES layer with a kernel larger than 1x1 (deduplicated), with a
random kernel and, for 3x3, the Sobel kernel too: OpenCV and ndimage skip zero taps, so
the Sobel kernel flatters them. float32; FLOPs = 2*H*W*R*S. One ``group`` per plane and
kernel.
"""

import dataclasses

import numpy as np
import pytest
from benchutil import check_conv, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import SHAPES, ConvShape

SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Plane:
    name: str
    h: int
    w: int
    r: int
    kernel: str  # "random" or "sobel"

    @property
    def flops(self):
        return 2 * self.h * self.w * self.r * self.r

    @property
    def conv(self):
        """The same filtering as a one-channel conv2d (odd kernel: 'same' = padding r//2)."""
        return ConvShape(self.name, 1, 1, self.h, self.w, 1, self.r, self.r, 1, self.r // 2)


_planes = {(s.h, s.w, s.r): s for s in SHAPES
           if s.stride == 1 and s.dilation == 1 and s.r == s.s and s.r % 2 == 1 and s.r > 1}
CASES = [Plane(f"{s.name}-plane-{kind}", h, w, r, kind)
         for (h, w, r), s in _planes.items()
         for kind in (("random", "sobel") if r == 3 else ("random",))]


def _inputs(p):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((p.h, p.w), dtype=np.float32)
    kernel = SOBEL if p.kernel == "sobel" else rng.standard_normal((p.r, p.r), dtype=np.float32)
    return image, kernel


def _convcore(image, kernel):
    return lambda: convcore.correlate2d(image, kernel, mode="same")


def _scipy_signal(image, kernel):
    signal = bench.require("scipy.signal")
    return lambda: signal.correlate2d(image, kernel, mode="same")


def _scipy_ndimage(image, kernel):
    ndimage = bench.require("scipy.ndimage")
    return lambda: ndimage.correlate(image, kernel, mode="constant", cval=0.0)


def _opencv(image, kernel):
    cv2 = bench.require("cv2")
    return lambda: cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)


IMPLS = {"convcore": _convcore, "scipy-correlate2d": _scipy_signal,
         "scipy-ndimage": _scipy_ndimage, "opencv-filter2d": _opencv}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("plane", params(CASES, cost=lambda p: p.flops))
def test_correlate2d(run, plane, impl):
    image, kernel = _inputs(plane)
    fn = make_or_skip(IMPLS[impl], image, kernel)
    y = run(fn, group=plane.name, flops=plane.flops, impl=impl)
    if is_small(plane.flops):
        check_conv(np.asarray(y)[None, None], plane.conv, image[None, None],
                   kernel[None, None], f"{impl} on {plane.name}")
