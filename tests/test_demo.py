"""The demo (convcore.demo and ``python -m convcore``): end to end into a temporary folder
with and without matplotlib, the PNGs valid and of the expected size, and its numbers
(cost formulas, the dense matrix, equivariance, permutation)."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from convcore import demo
from convcore.__main__ import main

EXPECTED_PNG_SIZE = (int(demo.FIGSIZE[0] * demo.DPI), int(demo.FIGSIZE[1] * demo.DPI))


def small_image(h: int = 40, w: int = 52) -> np.ndarray:
    """A block of the bundled scene: fast, and with edges."""
    return demo.default_image()[100:100 + h, 20:20 + w].copy()


def png_size(path: Path):
    """(width, height) from a PNG's signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make every ``import matplotlib...`` fail, as if it were not installed."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends",
                 "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)


def test_run_writes_two_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    lines = []
    out = demo.run(small_image(), tmp_path / "out", plot=True, classify=False,
                   print_fn=lines.append)
    assert out["pictures"] == [tmp_path / "out" / demo.SOBEL_PNG,
                               tmp_path / "out" / demo.PERMUTATION_PNG]
    for path in out["pictures"]:
        assert png_size(path) == EXPECTED_PNG_SIZE
    text = "\n".join(lines)
    assert str(tmp_path / "out" / demo.SOBEL_PNG) in text


def test_run_without_matplotlib_prints_everything_and_the_hint(tmp_path, no_matplotlib):
    lines = []
    out = demo.run(small_image(), tmp_path, plot=True, classify=False, print_fn=lines.append)
    text = "\n".join(lines)
    assert out["pictures"] == []
    assert not list(tmp_path.glob("*.png"))
    assert demo.PLOT_HINT in text
    for section in ("1. ", "2. ", "3. ", "4. ", "fully connected", "locally connected",
                    "circular padding", "permutation"):
        assert section in text


def test_feature_maps_are_the_lecture_panels():
    img = small_image()
    maps = demo.feature_maps(img)
    assert list(maps) == list(demo.TITLES)
    y = maps["I * Mx"]
    padded = np.pad(img.astype(np.float64), 1, mode="edge")
    ref = sum(demo.SOBEL_X[k, l] * padded[k:k + img.shape[0], l:l + img.shape[1]]
              for k in range(3) for l in range(3))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(maps["|I * Mx|"], np.abs(y), rtol=1e-6)
    np.testing.assert_allclose(maps["(I * Mx)^2"], y * y, rtol=1e-6)
    sig = 1 / (1 + np.exp(-0.08 * (y.astype(np.float64) - 50)))
    np.testing.assert_allclose(maps["sigmoid(I * Mx), a=0.08, b=50"], sig, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(maps["ReLU(I * Mx)"], np.maximum(y, 0))


@pytest.mark.parametrize("h,w", [(1, 1), (5, 7), (9, 4), (6, 6)])
def test_dense_matrix_is_the_sobel_layer(h, w):
    x = np.random.default_rng(0).standard_normal((h, w)).astype(np.float32)
    m = demo.dense_matrix(h, w)
    # m @ x sums the same 9 products as the convolution, in another order
    bound = 2 * 9 * np.finfo(np.float32).eps * (np.abs(m) @ np.abs(x.ravel()))
    assert (np.abs(m @ x.ravel() - demo.sobel(x).ravel()) <= bound).all()


def test_cost_table_counts_and_budget():
    img = small_image(12, 10)
    rows = demo.cost_table(img)
    pixels = img.size
    assert [r["layer"] for r in rows] == ["convolution", "locally connected", "fully connected"]
    assert [r["params"] for r in rows] == [10, 10 * pixels, pixels * pixels + pixels]
    assert [r["macs"] for r in rows] == [9 * pixels, 9 * pixels, pixels * pixels]
    assert [r["bytes"] for r in rows] == [4 * r["params"] for r in rows]
    assert all(r["ms"] is not None and r["max_diff"] < 1e-3 for r in rows)
    tiny_budget = demo.cost_table(img, budget=4 * 10 * pixels - 1)
    assert tiny_budget[1]["ms"] is None and tiny_budget[2]["ms"] is None
    assert "not run" in tiny_budget[2]["how"]
    assert "fully connected" in demo.format_cost_table(rows, img.shape)


def test_equivariance_exact_with_circular_padding():
    eq = demo.equivariance(small_image())
    assert eq["circular_max_diff"] == 0.0
    assert eq["zeros_max_diff_off_seams"] == 0.0
    assert eq["zeros_max_diff"] > 0.0


def test_permutation_invisible_to_dense_visible_to_conv():
    img = small_image()
    perm = demo.permutation(img, seed=3)
    assert perm["dense_max_diff"] <= 1e-3 * perm["thumb_max_response"]
    assert perm["thumb_conv_max_diff"] > 0.1 * perm["thumb_max_response"]
    assert perm["conv_max_diff"] > 0.1 * float(np.abs(perm["maps"]).max())
    assert perm["mean_abs_permuted"] > perm["mean_abs"]
    assert sorted(perm["permuted"].ravel()) == sorted(img.ravel())


def test_bundled_scene_is_what_the_generator_makes():
    path = Path(demo.__file__).with_name("data") / "make_scene.py"
    spec = importlib.util.spec_from_file_location("make_scene", path)
    make_scene = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_scene)
    scene = np.load(Path(demo.__file__).with_name("data") / "scene.npy")
    assert scene.dtype == np.uint8 and scene.shape == (256, 256)
    assert np.abs(make_scene.make_scene().astype(int) - scene).max() <= 1


def test_load_image_npy_and_pillow(tmp_path):
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[:, 4:] = 200
    np.save(tmp_path / "x.npy", rgb)
    np.testing.assert_array_equal(demo.load_image(tmp_path / "x.npy"), rgb.mean(axis=2))
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(rgb).save(tmp_path / "x.png")
    grey = demo.load_image(tmp_path / "x.png")
    assert grey.shape == (6, 8) and grey.dtype == np.float32
    assert grey[0, 0] == 0 and grey[0, 7] == 200
    with pytest.raises(ValueError, match="2-D image"):
        np.save(tmp_path / "bad.npy", np.zeros((2, 9)))
        demo.load_image(tmp_path / "bad.npy")


def test_large_images_are_averaged_down(monkeypatch):
    monkeypatch.setattr(demo, "MAX_SIDE", 30)
    lines = []
    out = demo.run(small_image(40, 64), plot=False, classify=False, print_fn=lines.append)
    assert out["shape"] == (13, 21)
    assert "averaged down 3x" in lines[1]


def test_cli_default_is_the_demo(tmp_path, capsys):
    np.save(tmp_path / "img.npy", small_image())
    assert main(["--image", str(tmp_path / "img.npy"), "--no-plot", "--no-classify", "--out",
                 str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "4. Locality" in text and "40 x 52" in text
    assert not (tmp_path / "o").exists()


def test_cli_demo_subcommand_writes_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    np.save(tmp_path / "img.npy", small_image())
    assert main(["demo", "--image", str(tmp_path / "img.npy"), "--no-classify",
                 "--out", str(tmp_path)]) == 0
    for name in (demo.SOBEL_PNG, demo.PERMUTATION_PNG):
        assert png_size(tmp_path / name) == EXPECTED_PNG_SIZE


def test_cli_bundled_scene_without_matplotlib(tmp_path, capsys, no_matplotlib):
    assert main(["--no-classify", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "bundled scene" in text and "256 x 256" in text and demo.PLOT_HINT in text


def test_cli_reports_an_unreadable_image(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros(5))
    assert main(["--image", str(tmp_path / "flat.npy"), "--no-plot"]) == 2
    assert main(["--image", str(tmp_path / "missing.png"), "--no-plot"]) == 2
    assert "flat.npy" in capsys.readouterr().err


def test_cli_info(capsys):
    assert main(["info"]) == 0
    assert "isa" in capsys.readouterr().out
