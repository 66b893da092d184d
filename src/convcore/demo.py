"""The lecture as a command (``python -m convcore``): why convolution layers beat fully
connected ones, shown on one image.

1. Feature maps: the lecture's Sobel kernel Mx = 1/4 [[-1,0,1],[-2,0,2],[-1,0,1]] and
   point-wise non-linearities after it (``|.|``, ``(.)^2``, sigmoid(a=0.08, b=50), ReLU) turn a
   linear filter into an edge detector: one PNG with six panels.
2. Cost: the same 3x3 layer as a convolution, a locally connected layer and a fully
   connected layer: parameters, weight bytes, multiply-accumulates and time.
3. Translation equivariance: shift the input, the maps shift with it (exactly, with
   circular padding).
4. Locality: a fixed permutation of the pixels is invisible to a fully connected layer
   (permute its columns and its output is unchanged) but wrecks the convolution's maps:
   numbers and a second PNG.
5. Classification (needs scikit-learn, ``pip install ".[learn]"``): a CNN, the same network
   locally connected and an MLP trained on 8x8 digits, on permuted pixels and on shifted
   digits; ``python -m convcore classify`` shortened to one seed and 8 epochs, printed.

``*`` is cross-correlation here, as in deep learning (no kernel flip), so ReLU(I * Mx)
keeps edges where the image gets brighter from left to right.
Pictures need matplotlib (``pip install "convcore[plot]"``); everything else is NumPy.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

import convcore
from convcore import experiments

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32) / 4
SIGMOID_A, SIGMOID_B = 0.08, 50.0  # the lecture's sigmoid, for 8-bit intensities
SHIFT = (7, 12)  # (rows, columns) of the translation
THUMB = 32  # side of the thumbnail on which the fully connected layer is built and timed
MAX_SIDE = 1024  # larger images are block-averaged down to this
DENSE_BUDGET = 256 * 10**6  # bytes: build and time a fully connected matrix up to this size
FIGSIZE, DPI = (12.0, 8.0), 80  # both PNGs are 960 x 640 pixels
SOBEL_PNG, PERMUTATION_PNG = "demo_sobel.png", "demo_permutation.png"
PLOT_HINT = 'pip install "convcore[plot]"'
CLASSIFY_EPOCHS = 8  # section 5: one seed of ``python -m convcore classify``, 8 of its 20 epochs

ImageArg = Union[None, str, Path, np.ndarray]


# ----------------------------------------------------------------------------- images


def default_image() -> np.ndarray:
    """The bundled scene (data/scene.npy, written by data/make_scene.py), 256 x 256."""
    return np.load(Path(__file__).with_name("data") / "scene.npy").astype(np.float32)


def load_image(path: Union[str, Path]) -> np.ndarray:
    """A grey-level float32 image with values 0..255: a .npy array, or any file Pillow
    reads (converted to 8-bit grey)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        img = np.load(path)
        if img.ndim == 3:  # (H, W, channels): the channels' mean
            img = img.mean(axis=2)
    else:
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(
                f"reading {path} needs Pillow (pip install pillow), or pass a .npy array"
            ) from None
        with Image.open(path) as im:
            img = np.asarray(im.convert("L"))
    if img.ndim != 2 or min(img.shape) < 3:
        raise ValueError(f"{path}: expected a 2-D image of at least 3 x 3, got shape {img.shape}")
    return img.astype(np.float32)


def block_mean(img: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks (the ragged edge is cropped)."""
    if factor <= 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return img[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def _thumbnail(img: np.ndarray, side: int) -> np.ndarray:
    factor = max(1, min(img.shape) // side)
    small = block_mean(img, factor)
    return np.ascontiguousarray(small[:side, :side], dtype=np.float32)


# ----------------------------------------------------------------------------- layers


def sobel(img: np.ndarray, padding_mode: str = "zeros") -> np.ndarray:
    """I * Mx, same size as I (padding 1, ``padding_mode`` as conv2d's)."""
    return convcore.conv2d(img[None], SOBEL_X[None, None], padding=1,
                           padding_mode=padding_mode)[0]


# The six panels: plain label (printed) -> title (the lecture's notation, matplotlib mathtext).
TITLES = {
    "I": "$I$",
    "I * Mx": "$I * M_x$",
    "|I * Mx|": "$|I * M_x|$",
    "(I * Mx)^2": "$(I * M_x)^2$",
    "sigmoid(I * Mx), a=0.08, b=50": r"$\mathrm{sigmoid}_{a=0.08,\,b=50}(I * M_x)$",
    "ReLU(I * Mx)": r"$\mathrm{ReLU}(I * M_x)$",
}


def feature_maps(img: np.ndarray) -> Dict[str, np.ndarray]:
    """The six panels of the lecture's figure, by plain label (keys of TITLES). Replicate
    padding, so that the image's border is not taken for an edge."""
    y = sobel(img, "replicate")
    return {
        "I": img,
        "I * Mx": y,
        "|I * Mx|": convcore.abs(y),
        "(I * Mx)^2": convcore.square(y),
        "sigmoid(I * Mx), a=0.08, b=50": convcore.sigmoid(y, a=SIGMOID_A, b=SIGMOID_B),
        "ReLU(I * Mx)": convcore.relu(y),
    }


def dense_matrix(h: int, w: int) -> np.ndarray:
    """The fully connected matrix (H*W, H*W) of the Sobel layer on an h x w image
    (padding 1): ``sobel(x).ravel() == M @ x.ravel()``."""
    return convcore.conv2d_dense_matrix(SOBEL_X[None, None], (1, h, w), padding=1)


def _best_ms(fn: Callable[[], Any], budget_s: float = 0.3, max_runs: int = 7) -> float:
    """Best wall time of ``fn`` in ms over a few runs after a warm-up call. The best, not
    the median: on a shared machine a threaded BLAS call now and then waits ~20 ms for a
    descheduled thread, which says nothing about the layer."""
    fn()
    best = math.inf
    start = time.perf_counter()
    for _ in range(max_runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return 1e3 * best


# ----------------------------------------------------------------------------- the argument

#: The cost table's names for convcore.experiments' layers, and how each is computed.
_COST_ROWS = {
    "conv": ("convolution", "convcore.layers.Conv2d"),
    "locally connected": ("locally connected", "convcore.layers.LocallyConnected2d"),
    "dense": ("fully connected", "NumPy matmul"),
}


def cost_table(img: np.ndarray, budget: int = DENSE_BUDGET) -> List[Dict[str, Any]]:
    """One row per layer type for a 3x3, one-channel, padding-1 layer on ``img``
    (``convcore.experiments.connectivity``): params (weights + biases), weight bytes
    (float32), MACs, best time in ms (None when its weights exceed ``budget`` bytes: not
    run) and how it was timed. The locally connected and fully connected layers get the
    Sobel filter at every position, so all three compute the same map (``max_diff``)."""
    run = experiments.connectivity(img[None], SOBEL_X[None, None], budget=budget)
    ref = run.runs["conv"]()
    rows = []
    for kind in experiments.KINDS:
        cost, (label, how) = run.costs[kind], _COST_ROWS[kind]
        row = {"layer": label, "params": cost.params, "macs": cost.macs,
               "bytes": cost.weight_bytes, "ms": None, "max_diff": None,
               "how": f"not run: {_bytes(cost.weight_bytes)} > {_bytes(budget)}"}
        fn = run.runs.get(kind)
        if fn is not None:
            row.update(ms=_best_ms(fn), how=how, max_diff=float(np.abs(fn() - ref).max()))
        rows.append(row)
    return rows


def equivariance(img: np.ndarray, shift: Tuple[int, int] = SHIFT) -> Dict[str, float]:
    """Shift the input circularly by ``shift``; compare the maps of the shifted input with
    the shifted maps. Circular padding: exact. Zero padding: differences only within one
    pixel of the image border or of the wrap-around seam."""
    shifted = np.roll(img, shift, axis=(0, 1))
    circ = np.abs(sobel(shifted, "circular") - np.roll(sobel(img, "circular"), shift, (0, 1)))
    zero = np.abs(sobel(shifted) - np.roll(sobel(img), shift, (0, 1)))
    # Where zero padding may differ: the image border and the seam where the roll wrapped.
    h, w = img.shape
    band = np.zeros((h, w), dtype=bool)
    band[np.array([0, h - 1, shift[0] - 1, shift[0]]) % h, :] = True
    band[:, np.array([0, w - 1, shift[1] - 1, shift[1]]) % w] = True
    return {
        "circular_max_diff": float(circ.max()),
        "zeros_max_diff": float(zero.max()),
        "zeros_max_diff_off_seams": float(zero[~band].max()) if (~band).any() else 0.0,
        "max_response": float(np.abs(sobel(img)).max()),
    }


def permutation(img: np.ndarray, seed: int = 0) -> Dict[str, Any]:
    """A fixed random permutation P of the pixels (``convcore.experiments.permutation``).
    Fully connected (on a THUMB x THUMB thumbnail): M x == (M P^T)(P x), the layer just
    relearns its columns. Convolution: the maps of P x are not P of the maps of x, and
    unscrambled they are noise."""
    whole = experiments.permutation(img[None], SOBEL_X[None, None], padding_mode="replicate",
                                    seed=seed, dense_budget=0)
    thumb = _thumbnail(img, THUMB)
    small = experiments.permutation(thumb[None], SOBEL_X[None, None], seed=seed,
                                    dense_budget=DENSE_BUDGET)
    return {
        "permuted": whole.permuted[0],
        "maps": whole.maps[0],
        "permuted_maps": whole.permuted_maps[0],
        "unscrambled": whole.unscrambled[0],
        "conv_max_diff": whole.conv_not_permuted,
        "mean_abs": float(np.abs(whole.maps).mean()),
        "mean_abs_permuted": float(np.abs(whole.permuted_maps).mean()),
        "thumb_shape": thumb.shape,
        "dense_max_diff": small.dense_permuted,
        "thumb_conv_max_diff": small.conv_changed,
        "thumb_max_response": small.dense_scale,
    }


# ----------------------------------------------------------------------------- output


def _bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (powers of 1000)."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            break
    return f"{n:.1f} {unit}"


def format_cost_table(rows: List[Dict[str, Any]], shape: Tuple[int, int]) -> str:
    head = (f"3x3 layer, 1 channel in and out, {shape[0]}x{shape[1]} image (float32 weights)",
            f"  {'layer':<18} {'params':>17} {'weight bytes':>13} {'MACs':>17} {'best time':>10}  how")
    lines = list(head)
    for r in rows:
        ms = "-" if r["ms"] is None else f"{r['ms']:.3f} ms"
        params, macs = f"{r['params']:,}", f"{r['macs']:,}"
        lines.append(f"  {r['layer']:<18} {params:>17} {_bytes(r['bytes']):>13} "
                     f"{macs:>17} {ms:>10}  {r['how']}")
    return "\n".join(lines)


def _figure():
    """A matplotlib Figure drawn by the Agg canvas (no pyplot, no global backend), or
    None when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _panels(fig, panels: List[Tuple[str, np.ndarray, Tuple[float, float], str]],
            title: str) -> None:
    axes = fig.subplots(2, 3)
    for ax, (name, img, (lo, hi), cmap) in zip(axes.ravel(), panels):
        im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name, fontsize=13)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(title, fontsize=14)
    fig.subplots_adjust(left=0.02, right=0.96, bottom=0.03, top=0.88, wspace=0.25, hspace=0.22)


def _save(fig, path: Path) -> None:
    """Write the figure as a 256-colour PNG (Pillow comes with matplotlib): about a third
    of the bytes of an RGBA one, the noise panels especially, at no visible cost."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
    img.quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)


def _signed(a: np.ndarray) -> Tuple[float, float]:
    m = float(np.abs(a).max()) or 1.0
    return (-m, m)


def _positive(a: np.ndarray) -> Tuple[float, float]:
    return (0.0, float(a.max()) or 1.0)


def plot_feature_maps(maps: Dict[str, np.ndarray], path: Path) -> bool:
    fig = _figure()
    if fig is None:
        return False
    ranges = [(0.0, 255.0), None, None, None, (0.0, 1.0), None]
    panels = []
    for (name, img), rng in zip(maps.items(), ranges):
        signed = img.min() < 0
        panels.append((TITLES[name], img, rng or (_signed(img) if signed else _positive(img)),
                       "RdBu_r" if signed else "gray"))
    _panels(fig, panels, r"Sobel $M_x = \frac{1}{4}\,[[-1,0,1],[-2,0,2],[-1,0,1]]$ "
            "and point-wise non-linearities: a linear filter becomes a feature detector")
    _save(fig, path)
    return True


def plot_permutation(img: np.ndarray, perm: Dict[str, Any], path: Path) -> bool:
    fig = _figure()
    if fig is None:
        return False
    lim = _signed(perm["maps"])
    panels = [
        ("$I$", img, (0.0, 255.0), "gray"),
        ("$I * M_x$", perm["maps"], lim, "RdBu_r"),
        ("$|I * M_x|$", np.abs(perm["maps"]), (0.0, lim[1]), "gray"),
        ("$P(I)$: pixels permuted", perm["permuted"], (0.0, 255.0), "gray"),
        ("$P(I) * M_x$", perm["permuted_maps"], lim, "RdBu_r"),
        ("$P^{-1}(P(I) * M_x)$: unscrambled", perm["unscrambled"], lim, "RdBu_r"),
    ]
    _panels(fig, panels, "Convolution sees spatial structure: permute the pixels and the "
            "maps are noise, even put back in place")
    _save(fig, path)
    return True


def classification(print_fn: Callable[[str], None] = print) -> Optional[Dict[str, Any]]:
    """Section 5: :func:`convcore.classify.run` with one seed, printed (no files), or a
    hint and None when scikit-learn is missing."""
    from convcore import classify

    p = print_fn
    p("\n5. Classification: what locality and weight sharing are worth on real digits "
      "(one seed)")
    try:
        classify.load_digits()
    except ImportError as e:
        p(f"   Skipped: {e}")
        return None
    lines: List[str] = []
    result = classify.run(seeds=1, epochs=CLASSIFY_EPOCHS, out_dir=None, identity=False,
                          print_fn=lines.append)
    p("   " + "\n".join(lines).replace("\n", "\n   "))
    p(f"   (one seed, {CLASSIFY_EPOCHS} epochs: `python -m convcore classify` trains "
      f"{classify.Settings.epochs} epochs over {classify.Settings.seeds} seeds and draws the "
      "figure)")
    return result


# ----------------------------------------------------------------------------- run


def run(image: ImageArg = None, out_dir: Union[str, Path] = "convcore_demo",
        plot: bool = True, *, seed: int = 0, name: Optional[str] = None,
        classify: bool = True, print_fn: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the demo on ``image`` (None: the bundled scene; a path: .npy or anything Pillow
    reads; or a 2-D array of 0..255 intensities, called ``name`` in the output), print
    the results, and (``plot`` and matplotlib installed) write demo_sobel.png and
    demo_permutation.png into ``out_dir``. ``classify``: also section 5, the digits
    classification with one seed (skipped with a hint when scikit-learn is missing).
    Returns the numbers (``"classify"``: :func:`convcore.classify.run`'s result, or None)
    and the paths of the pictures written."""
    if image is None:
        img, source = default_image(), "the bundled scene (convcore/data/scene.npy)"
    elif isinstance(image, np.ndarray):
        img, source = np.asarray(image, dtype=np.float32), name or "the given array"
        if img.ndim != 2 or min(img.shape) < 3:
            raise ValueError(f"image must be 2-D, at least 3 x 3, got shape {img.shape}")
    else:
        img, source = load_image(image), str(image)
    factor = math.ceil(max(img.shape) / MAX_SIDE)
    if factor > 1:
        source += f", averaged down {factor}x"
        img = block_mean(img, factor)
    img = np.ascontiguousarray(img, dtype=np.float32)
    h, w = img.shape
    out: Dict[str, Any] = {"shape": (h, w), "pictures": []}
    p = print_fn

    p(f"convcore {convcore.__version__} ({convcore.info()['isa']}, "
      f"{convcore.get_num_threads()} threads): convolution layers vs fully connected ones")
    p(f"Image: {source}, {h} x {w}, intensities {img.min():.0f}..{img.max():.0f}")
    p("(* is cross-correlation, as in deep learning: the kernel is not flipped)")

    p("\n1. A linear filter and a point-wise non-linearity make a feature detector")
    maps = feature_maps(img)
    p("   Mx = 1/4 [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] responds to vertical edges: positive")
    p("   where I gets brighter to the right (replicate padding, so that the image border is")
    p("   not taken for an edge). Share of pixels above half of each map's max:")
    for label, m in list(maps.items())[1:]:
        share = 100 * float((m > 0.5 * m.max()).mean()) if m.max() > 0 else 0.0
        p(f"   {label:<30} min {m.min():9.2f}  max {m.max():9.2f}  {share:5.1f}%")
    out["maps"] = {k: (float(v.min()), float(v.max())) for k, v in maps.items()}

    p("\n2. Parameters and cost of the same layer: convolution, locally connected, "
      "fully connected")
    for shape_img in (img, _thumbnail(img, THUMB)):
        rows = cost_table(shape_img)
        p("   " + format_cost_table(rows, shape_img.shape).replace("\n", "\n   "))
        out.setdefault("costs", []).append(rows)
    diffs = [r["max_diff"] for rows in out["costs"] for r in rows if r["max_diff"] is not None]
    p("   The convolution's parameters do not depend on the image size; the fully connected")
    p("   layer's grow with the square of the pixel count. With the Sobel filter at every")
    p(f"   position all three compute the same map (largest difference {max(diffs):.1e}).")

    p(f"\n3. Translation equivariance: shift the input by {SHIFT} (rows, columns), circularly")
    eq = equivariance(img)
    out["equivariance"] = eq
    replicate_max = float(np.abs(maps["I * Mx"]).max())
    p(f"   circular padding: max |(shifted I) * Mx - shifted (I * Mx)| = "
      f"{eq['circular_max_diff']:.3g} (exact)")
    p(f"   zero padding: the same difference is {eq['zeros_max_diff']:.3g} along the image "
      f"border and the wrap-around")
    p(f"   seam, {eq['zeros_max_diff_off_seams']:.3g} elsewhere (for scale: max |I * Mx| = "
      f"{eq['max_response']:.3g} with zero padding, where")
    p(f"   the border is an edge; {replicate_max:.3g} with the replicate padding of sections 1 "
      "and 4).")
    p("   Point-wise non-linearities keep this: the maps after |.|, (.)^2, sigmoid and ReLU")
    p("   shift with the input too.")

    p(f"\n4. Locality: a fixed random permutation P of the {h * w} pixels (seed {seed})")
    perm = permutation(img, seed)
    out["permutation"] = {k: v for k, v in perm.items() if not isinstance(v, np.ndarray)}
    th, tw = perm["thumb_shape"]
    p(f"   fully connected layer M on a {th}x{tw} thumbnail x, its columns permuted the same "
      "way:")
    p(f"     max |(M P^T)(P x) - M x| = {perm['dense_max_diff']:.3g}: unchanged, it cannot "
      "tell")
    p(f"     the convolution's output on P x changes by up to {perm['thumb_conv_max_diff']:.3g} "
      f"(max |M x| = {perm['thumb_max_response']:.3g}, zero padding)")
    p(f"   convolution on the whole image: max |P(I) * Mx - P(I * Mx)| = "
      f"{perm['conv_max_diff']:.3g}")
    p(f"     (max |I * Mx| = {float(np.abs(perm['maps']).max()):.3g}, replicate padding as in "
      "section 1)")
    p(f"     mean |response| {perm['mean_abs']:.2f} -> {perm['mean_abs_permuted']:.2f}: "
      "neighbours are no longer neighbours, the filter measures noise.")
    p("   A convolution relies on where the pixels are; a fully connected layer ignores it.")

    out["classify"] = None
    if classify:
        out["classify"] = classification(print_fn=p)

    if plot:
        out_path = Path(out_dir)
        out_path.mkdir(parents=True, exist_ok=True)
        sobel_png, perm_png = out_path / SOBEL_PNG, out_path / PERMUTATION_PNG
        if plot_feature_maps(maps, sobel_png) and plot_permutation(img, perm, perm_png):
            out["pictures"] = [sobel_png, perm_png]
            p(f"\nPictures: {sobel_png} (feature maps), {perm_png} (permutation)")
        else:
            p(f"\nNo pictures: matplotlib is not installed. To get them: {PLOT_HINT}")
    return out
