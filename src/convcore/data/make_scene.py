"""Writes scene.npy beside this file: the demo's default image, a generated 256x256 8-bit
grey-level scene with edges in every direction (a house with a roof, windows and a door, a
fence, a tree, a sun, hills under a sky gradient).

Shapes are drawn at 4x resolution and block-averaged, so edges are anti-aliased like a
photograph's; a little seeded noise keeps flat areas from being perfectly flat.
Run ``python src/convcore/data/make_scene.py`` to regenerate it (deterministic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 256
SUPER = 4


def make_scene(size: int = SIZE) -> np.ndarray:
    """The scene as a (size, size) uint8 array (0 = black, 255 = white)."""
    n = size * SUPER
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n  # pixel centres in [0, 1)
    img = 215.0 - 60.0 * y  # sky: brighter at the top

    img = np.where((x - 0.82) ** 2 + (y - 0.16) ** 2 < 0.075**2, 250.0, img)  # sun
    horizon = 0.62 + 0.05 * np.sin(2 * np.pi * (1.3 * x + 0.1))
    img = np.where(y > horizon, 95.0 + 25.0 * (y - horizon), img)  # hills, darker near

    def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)

    # House: walls, a triangular roof, two windows with cross bars, a door.
    img = np.where(rect(0.14, 0.45, 0.52, 0.80), 165.0, img)
    roof = (y >= 0.25) & (y < 0.45) & (np.abs(x - 0.33) < (y - 0.25) * 1.15)
    img = np.where(roof, 70.0, img)
    for wx in (0.18, 0.40):
        img = np.where(rect(wx, 0.52, wx + 0.09, 0.62), 235.0, img)
        img = np.where(rect(wx + 0.04, 0.52, wx + 0.05, 0.62) | rect(wx, 0.565, wx + 0.09, 0.575),
                       55.0, img)
    img = np.where(rect(0.29, 0.64, 0.36, 0.80), 45.0, img)

    # Fence: vertical pickets on a rail, right of the house.
    pickets = rect(0.56, 0.70, 0.98, 0.84) & (((x - 0.56) * 40) % 1.0 < 0.45)
    img = np.where(pickets | rect(0.56, 0.74, 0.98, 0.76), 215.0, img)

    # Tree: trunk and a round canopy.
    img = np.where(rect(0.715, 0.50, 0.745, 0.70), 60.0, img)
    img = np.where((x - 0.73) ** 2 + (y - 0.44) ** 2 < 0.085**2, 110.0, img)

    img = img.reshape(size, SUPER, size, SUPER).mean(axis=(1, 3))
    img += np.random.default_rng(0).normal(0.0, 1.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


if __name__ == "__main__":
    path = Path(__file__).with_name("scene.npy")
    np.save(path, make_scene())
    print(f"wrote {path}")
