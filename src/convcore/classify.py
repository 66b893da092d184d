"""The lecture's classification claims, measured (``python -m convcore classify``).

Three networks of similar depth, built from :mod:`convcore.layers` and trained with
:mod:`convcore.optim` on scikit-learn's bundled handwritten digits (``load_digits``:
1,797 images of 8 x 8 pixels, offline):

* ``cnn``: convolutions (3x3, "same" padding, ReLU), a 2x2 max pooling of stride 1
  (local invariance that keeps the maps equivariant to every shift), global average
  pooling and one Dense head. Global pooling forgets where a feature was, so the head
  cannot undo a permutation of the pixels.
* ``lc``: the same network with :class:`~convcore.layers.LocallyConnected2d` in place of
  each convolution: local connections, no weight sharing, and an eighth of the channels
  (one filter bank per position: with the CNN's widths it would hold 760,682 parameters
  on 8x8 images, 53 times the CNN's 14,378).
* ``mlp``: one hidden Dense layer, about as many parameters as the CNN.

Experiment 1 (permutation): every model is trained and tested on the original pixels
and on one fixed permutation of them (the same for training and test). The CNN relies
on neighbours being neighbours and loses accuracy; the MLP cannot tell. The exact form
of the MLP's statement, :func:`mlp_permutation_identity`: trained on permuted pixels
from the correspondingly permuted initial weights, it computes what the original MLP
computes on the original pixels (equal up to float rounding, the same predictions).

Experiment 2 (translation): digits placed in the centre of a 16 x 16 canvas for
training, tested centred and at random positions within the canvas. The CNN's filters
are the same everywhere, so a shifted digit gives shifted maps and the same pooled
features; the locally connected network and the MLP learnt the centre only.

Every run is seeded: the split, the permutation and the test shifts are fixed, and
seed ``s`` fixes the initial weights and the order of the batches of every model;
convcore's passes give the same bits on any number of threads, so a run is repeatable.
Needs scikit-learn for the data (``pip install ".[learn]"``) and matplotlib for the
figure (``pip install ".[plot]"``).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import convcore
from . import _core
from . import layers as L
from .optim import Adam
from .train import evaluate, fit

__all__ = ["MODELS", "Digits", "Settings", "accuracy", "cnn", "load_digits", "mlp",
           "mlp_permutation_identity", "place", "permute_pixels", "run", "train"]

#: The three models, in the order they are reported.
MODELS = ("cnn", "lc", "mlp")
NAMES = {"cnn": "CNN (conv, global average pooling)", "lc": "locally connected (same layers)",
         "mlp": "MLP (fully connected)"}
SIDE = 8  # load_digits' images are 8 x 8
CANVAS = 16  # the translation experiment's canvas
TEST_FRACTION = 0.25
SPLIT_SEED, PERMUTATION_SEED, SHIFT_SEED = 0, 1, 2
LEARN_HINT = 'pip install ".[learn]"'
MD, PNG = "classify.md", "classify.png"


class Settings:
    """The defaults (``epochs`` and ``seeds`` may be given to :func:`run`): Adam with a
    cosine learning-rate decay from ``lr`` to zero, mini-batches of ``batch_size``,
    cross-entropy, for all three models. ``channels``: the CNN's three convolutions;
    ``lc_channels``: the locally connected network's, an eighth of them, so that its
    parameter count (one filter bank per position) is about the others';
    ``hidden``: the MLP's hidden units, for about the CNN's parameter count."""

    channels = (16, 32, 32)
    lc_channels = (2, 4, 4)
    hidden = 192
    batch_size = 32
    lr = 0.003
    epochs = 20
    seeds = 5


# ----------------------------------------------------------------------------- data


class Digits:
    """The data set, split once: ``X_train``/``X_test`` float32 ``(N, 1, 8, 8)`` standardised
    with the training pixels' mean and standard deviation (``mean``, ``std``, in the 0..16
    units of ``load_digits``), ``y_train``/``y_test`` int64 labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> None:
        images = np.asarray(images, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        order = np.random.default_rng(seed).permutation(len(labels))
        n_test = int(round(test_fraction * len(labels)))
        test, train = order[:n_test], order[n_test:]
        self.mean = float(images[train].mean())
        self.std = float(images[train].std())
        self.raw_train, self.raw_test = images[train], images[test]
        self.X_train, self.X_test = self.standardise(images[train]), self.standardise(images[test])
        self.y_train, self.y_test = labels[train], labels[test]

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """``(raw - mean) / std`` as float32 ``(N, 1, H, W)`` from ``(N, H, W)`` images."""
        return ((np.asarray(raw) - self.mean) / self.std).astype(np.float32)[:, None]


def load_digits(test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> Digits:
    """scikit-learn's bundled digits (no download), split into training and test sets by a
    fixed permutation (``seed``). ImportError naming the extra to install when
    scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the classification experiment needs scikit-learn's bundled digits: "
                          f"{LEARN_HINT} (or pip install scikit-learn)") from None
    data = sklearn_digits()
    return Digits(data.images, data.target, test_fraction, seed)


def permute_pixels(X: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``X`` ``(N, C, H, W)`` with flat pixel ``p`` of every image and channel taken from
    ``pixels[p]`` (the same permutation everywhere, as ``experiments.permutation``)."""
    n, c, h, w = X.shape
    return np.ascontiguousarray(X.reshape(n, c, h * w)[:, :, pixels].reshape(n, c, h, w))


def place(raw: np.ndarray, offsets: np.ndarray, canvas: int = CANVAS) -> np.ndarray:
    """Images ``(N, h, w)`` pasted into zero canvases ``(N, canvas, canvas)`` with their top
    left corner at ``offsets`` ``(N, 2)`` (rows, columns)."""
    n, h, w = raw.shape
    out = np.zeros((n, canvas, canvas), dtype=raw.dtype)
    for i, (r, c) in enumerate(np.asarray(offsets)):
        if not (0 <= r <= canvas - h and 0 <= c <= canvas - w):
            raise ValueError(f"offset {(int(r), int(c))} puts a {h}x{w} image outside the "
                             f"{canvas}x{canvas} canvas")
        out[i, r:r + h, c:c + w] = raw[i]
    return out


# ----------------------------------------------------------------------------- models


def _seeds(seed: int, n: int) -> List[int]:
    return [int(v) for v in np.random.SeedSequence(seed).generate_state(n)]


def cnn(side: int = SIDE, *, seed: int = 0, locally_connected: bool = False,
        channels: Sequence[int] = Settings.channels, padding_mode: str = "replicate",
        dtype: Any = np.float32) -> L.Sequential:
    """3x3 "same" convolutions with ReLU (``channels`` gives their output channels), a 2x2
    max pooling of stride 1 before the last one, global average pooling and one Dense to
    10 classes, for one-channel ``side x side`` images. ``padding_mode`` "replicate"
    (default) continues a canvas's background past its border, so that a digit shifted
    against the border sees what it sees in the centre. ``locally_connected``: each
    convolution replaced by a LocallyConnected2d of the same geometry (one filter bank
    per position; zero padding, the only mode it has)."""
    channels = [int(c) for c in channels]
    if not channels:
        raise ValueError("channels must list at least one convolution's output channels")
    s = _seeds(seed, len(channels) + 1)

    def conv(cin: int, cout: int, size: int, layer_seed: int) -> L.Module:
        if locally_connected:
            return L.LocallyConnected2d(cin, cout, size, 3, padding=1, activation="relu",
                                        dtype=dtype, seed=layer_seed)
        return L.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode, activation="relu",
                        dtype=dtype, seed=layer_seed)

    ins = [1] + channels[:-1]
    pooled = side - 1
    layers: List[L.Module] = [conv(c, k, side, sd) for c, k, sd in zip(ins[:-1], channels[:-1], s)]
    layers += [L.MaxPool2d(2, stride=1), conv(ins[-1], channels[-1], pooled, s[-2]),
               L.AvgPool2d(pooled), L.Flatten(), L.Dense(channels[-1], 10, dtype=dtype, seed=s[-1])]
    return L.Sequential(*layers)


def mlp(side: int = SIDE, *, seed: int = 0, hidden: int = Settings.hidden,
        dtype: Any = np.float32) -> L.Sequential:
    """Flatten, Dense(side*side -> hidden) with ReLU, Dense(hidden -> 10)."""
    s = _seeds(seed, 2)
    return L.Sequential(L.Flatten(),
                        L.Dense(side * side, hidden, activation="relu", dtype=dtype, seed=s[0]),
                        L.Dense(hidden, 10, dtype=dtype, seed=s[1]))


def _model(kind: str, side: int, seed: int, settings: Settings) -> L.Sequential:
    if kind == "mlp":
        return mlp(side, seed=seed, hidden=settings.hidden)
    if kind == "lc":
        return cnn(side, seed=seed, locally_connected=True, channels=settings.lc_channels)
    return cnn(side, seed=seed, channels=settings.channels)


# ----------------------------------------------------------------------------- training


def train(model: L.Module, X: np.ndarray, y: np.ndarray, *, seed: int, epochs: int,
          batch_size: int = Settings.batch_size, lr: float = Settings.lr) -> L.Module:
    """Adam with the learning rate decayed from ``lr`` to zero along a half cosine, one
    :func:`convcore.train.fit` epoch per rate; epoch ``e``'s batch order drawn from
    ``(seed, e)``. Returns the model, in eval mode."""
    opt = Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        opt.lr = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        fit(model, X, y, epochs=1, batch_size=batch_size, optimizer=opt,
            loss=L.CrossEntropyLoss(), seed=_seeds(seed * 1_000_003 + epoch, 1)[0],
            progress=False)
    return model.eval()


def accuracy(model: L.Module, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of ``X`` that ``model`` classifies as ``y`` (eval mode)."""
    result = evaluate(model, X, y, L.CrossEntropyLoss())["accuracy"]
    assert result is not None  # integer labels
    return float(result)


def mlp_permutation_identity(data: Digits, pixels: np.ndarray, *, seed: int = 0,
                             epochs: int = Settings.epochs,
                             hidden: int = Settings.hidden) -> Dict[str, Any]:
    """The MLP's exact statement, in float64: an MLP trained on the original pixels, and
    one trained on the permuted pixels whose first layer starts from the original's
    initial weights with its columns permuted the same way (everything else equal). In
    exact arithmetic the second keeps ``W[:, pixels]`` at every step and computes the
    same function; in floating point the sums run in another order, so the two agree to
    rounding. Returns the test predictions of both, the largest logit difference and its
    scale (the largest logit)."""
    a = mlp(seed=seed, hidden=hidden, dtype=np.float64)
    b = mlp(seed=seed, hidden=hidden, dtype=np.float64)
    b[1].weight = a[1].weight[:, pixels]
    X, Xt = data.X_train.astype(np.float64), data.X_test.astype(np.float64)
    train(a, X, data.y_train, seed=seed, epochs=epochs)
    train(b, permute_pixels(X, pixels), data.y_train, seed=seed, epochs=epochs)
    la, lb = a(Xt), b(permute_pixels(Xt, pixels))
    return {"predictions": la.argmax(axis=1), "permuted_predictions": lb.argmax(axis=1),
            "max_logit_diff": float(np.abs(la - lb).max()),
            "max_logit": float(np.abs(la).max()),
            "max_weight_diff": float(np.abs(b[1].weight - a[1].weight[:, pixels]).max())}


# ----------------------------------------------------------------------------- run


def _mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and (population) standard deviation; 0 for one value."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())


def _cell(values: Sequence[float]) -> str:
    m, s = _mean_std(values)
    return f"{100 * m:.1f} ± {100 * s:.1f}"


def format_table(results: Dict[str, Any]) -> str:
    """The Markdown table: test accuracy in %, mean ± standard deviation over the seeds."""
    n = len(results["permutation"]["cnn"]["original"])
    rows = [f"| model | parameters | original | permuted | centred (16x16) | shifted (16x16) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind in MODELS:
        p, t = results["permutation"][kind], results["translation"][kind]
        rows.append(f"| {NAMES[kind]} | {results['params'][kind]:,} | {_cell(p['original'])} | "
                    f"{_cell(p['permuted'])} | {_cell(t['centered'])} | {_cell(t['shifted'])} |")
    rows.append("")
    rows.append(f"Test accuracy in %, mean ± standard deviation over {n} seed"
                f"{'s' if n != 1 else ''}; parameters on the 8x8 images (the translation "
                "experiment's networks take 16x16 inputs).")
    return "\n".join(rows)


def plot(results: Dict[str, Any], examples: Dict[str, np.ndarray], path: Path) -> bool:
    """Grouped bars (mean test accuracy, standard deviation as error bars) of both
    experiments, and a row of example digits; False when matplotlib is missing."""
    from .demo import _figure, _save

    fig = _figure()
    if fig is None:
        return False
    grid = fig.add_gridspec(2, len(examples), height_ratios=(2.4, 1), hspace=0.3,
                            wspace=0.3, left=0.07, right=0.98, top=0.9, bottom=0.03)
    half = len(examples) // 2
    colours = ("#4878d0", "#ee854a")
    for i, (exp, conditions) in enumerate((("permutation", ("original", "permuted")),
                                           ("translation", ("centered", "shifted")))):
        ax = fig.add_subplot(grid[0, i * half:(i + 1) * half])
        x = np.arange(len(MODELS))
        for j, cond in enumerate(conditions):
            stats = [_mean_std(results[exp][k][cond]) for k in MODELS]
            means = [100 * m for m, _ in stats]
            at = x + (j - 0.5) * 0.38
            ax.bar(at, means, 0.38, yerr=[100 * sd for _, sd in stats], capsize=4,
                   color=colours[j], label=cond)
            for xi, (m, sd) in zip(at, stats):
                ax.text(xi, 100 * (m + sd) + 1.5, f"{100 * m:.1f}", ha="center", fontsize=9)
        ax.set_xticks(x, ["CNN", "locally connected", "MLP"])
        ax.set_ylim(0, 119)
        ax.set_yticks(range(0, 101, 20))
        if i == 0:
            ax.set_ylabel("test accuracy (%)")
        ax.set_title({"permutation": "1. pixels permuted (the same for train and test)",
                      "translation": "2. trained centred, tested shifted (16x16)"}[exp])
        ax.legend(loc="upper center", ncol=2, fontsize=9, frameon=False)
    for j, (title, img) in enumerate(examples.items()):
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(img, cmap="gray_r", interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    n = len(results["permutation"]["cnn"]["original"])
    fig.suptitle(f"Digits (load_digits): CNN vs locally connected vs MLP, {n} seed"
                 f"{'s' if n != 1 else ''}", fontsize=14)
    _save(fig, path)
    return True


def run(*, seeds: int = Settings.seeds, epochs: int = Settings.epochs,
        out_dir: Union[str, Path, None] = "convcore_classify", json_path: Union[str, Path, None] = None,
        plot_figure: bool = True, identity: bool = True,
        print_fn: Callable[[str], None] = print) -> Dict[str, Any]:
    """Both experiments over seeds ``0 .. seeds-1`` with ``epochs`` epochs of training per
    model, printed as they go. Writes the table into ``out_dir/classify.md`` and the
    figure into ``out_dir/classify.png`` (matplotlib; ``out_dir=None``: neither),
    the numbers into ``json_path`` when given, and checks :func:`mlp_permutation_identity`
    (``identity``). Returns ``{"params", "permutation", "translation"}`` (the JSON's
    content: accuracies per seed as fractions) plus ``"identity"``, ``"table"``,
    ``"seconds"`` (training time per experiment and model, summed over the seeds),
    ``"elapsed"`` (wall time of the whole run) and ``"files"``. The models train two
    (as many as convcore has threads) at a time, each on one thread."""
    from .functional import _int_param

    seeds = _int_param(seeds, "seeds", 1)
    epochs = _int_param(epochs, "epochs", 1)
    settings = Settings()
    p = print_fn
    start = time.perf_counter()
    data = load_digits()
    pixels = np.random.default_rng(PERMUTATION_SEED).permutation(SIDE * SIDE)
    n_train, n_test = len(data.y_train), len(data.y_test)
    centre = (CANVAS - SIDE) // 2
    shifts = np.random.default_rng(SHIFT_SEED).integers(0, CANVAS - SIDE + 1, (n_test, 2))
    canvas_train = data.standardise(place(data.raw_train, np.full((n_train, 2), centre)))
    canvas_test = data.standardise(place(data.raw_test, np.full((n_test, 2), centre)))
    canvas_shifted = data.standardise(place(data.raw_test, shifts))
    sets = {
        "permutation": (SIDE, {"original": (data.X_train, data.X_test),
                               "permuted": (permute_pixels(data.X_train, pixels),
                                            permute_pixels(data.X_test, pixels))}),
        "translation": (CANVAS, {"centered": (canvas_train, canvas_test),
                                 "shifted": (None, canvas_shifted)}),
    }

    params = {k: _model(k, SIDE, 0, settings).num_params for k in MODELS}
    results: Dict[str, Any] = {"params": params,
                               "permutation": {k: {"original": [], "permuted": []} for k in MODELS},
                               "translation": {k: {"centered": [], "shifted": []} for k in MODELS}}
    seconds: Dict[str, float] = {}
    p(f"convcore {convcore.__version__} ({convcore.info()['isa']}, "
      f"{convcore.get_num_threads()} threads): digits (scikit-learn load_digits, 8x8), "
      f"{n_train} training and {n_test} test images")
    p(f"{seeds} seed{'s' if seeds != 1 else ''}, {epochs} epochs of Adam (lr "
      f"{settings.lr}, cosine decay), batch {settings.batch_size}")
    for kind in MODELS:
        p(f"  {NAMES[kind]:<36} {params[kind]:>8,} parameters")

    # One job per trained model: (experiment, model, seed, training condition) -> the
    # accuracies on that condition's test sets. Jobs are independent and convcore's
    # results do not depend on the thread count, so they run on a pool of as many
    # workers as convcore has threads, one convcore thread each (small layers gain more
    # from two models training at once than from splitting each call), in any order,
    # and give the same numbers as a serial run.
    def job(exp: str, kind: str, seed: int, cond: str) -> Tuple[Dict[str, float], float]:
        side, conditions = sets[exp]
        X_tr, _ = conditions[cond]
        tested = [cond] + [c for c, (x, _) in conditions.items() if x is None]
        previous = _core.get_thread_limit()
        _core.set_thread_limit(1 if workers > 1 else previous)
        t0 = time.perf_counter()
        try:
            model = train(_model(kind, side, seed, settings), X_tr, data.y_train, seed=seed,
                          epochs=epochs, batch_size=settings.batch_size, lr=settings.lr)
            accs = {c: accuracy(model, conditions[c][1], data.y_test) for c in tested}
        finally:
            _core.set_thread_limit(previous)
        return accs, time.perf_counter() - t0

    workers = max(1, min(convcore.get_num_threads(), 8))
    jobs = {(exp, kind, seed, cond): None for exp, (_, conditions) in sets.items()
            for kind in MODELS for seed in range(seeds)
            for cond, (X_tr, _) in conditions.items() if X_tr is not None}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {key: pool.submit(job, *key) for key in jobs}
        for exp, (side, conditions) in sets.items():
            p("\n" + {"permutation": "1. Permutation: one fixed permutation of the 64 pixels, "
                                     "for training and test",
                      "translation": f"2. Translation: trained in the centre of a "
                                     f"{CANVAS}x{CANVAS} canvas, tested centred and shifted "
                                     "at random"}[exp])
            for kind in MODELS:
                spent = 0.0
                for seed in range(seeds):
                    for cond in conditions:
                        if (exp, kind, seed, cond) in futures:
                            accs, dt = futures[exp, kind, seed, cond].result()
                            spent += dt
                            for c, acc in accs.items():
                                results[exp][kind][c].append(acc)
                seconds[f"{exp}/{kind}"] = spent
                cells = "   ".join(f"{cond} {_cell(results[exp][kind][cond])}%"
                                   for cond in conditions)
                p(f"  {kind:<4} {cells}   ({spent:.1f} s of training)")

    if identity:
        ident = mlp_permutation_identity(data, pixels, seed=0, epochs=epochs,
                                         hidden=settings.hidden)
        same = int(np.count_nonzero(ident["predictions"] == ident["permuted_predictions"]))
        results["identity"] = ident
        p("\nThe MLP cannot tell: trained on the permuted pixels from the correspondingly "
          "permuted first-layer weights (float64),")
        p(f"  it predicts the same class on {same} of {n_test} test images; largest logit "
          f"difference {ident['max_logit_diff']:.2g} (logits up to {ident['max_logit']:.3g}),")
        p(f"  its first layer stays the original's with permuted columns to "
          f"{ident['max_weight_diff']:.2g}: the same network, up to float rounding.")

    table = format_table(results)
    results["table"] = table
    results["seconds"] = seconds
    results["files"] = []
    p("\n" + table)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / MD).write_text(table + "\n")
        results["files"].append(out / MD)
        if plot_figure:
            examples = {
                "a test digit": data.X_test[0, 0],
                "its pixels permuted": permute_pixels(data.X_test[:1], pixels)[0, 0],
                "centred on the canvas": canvas_test[0, 0],
                f"shifted by {tuple(int(v) - centre for v in shifts[0])}": canvas_shifted[0, 0],
            }
            if plot(results, examples, out / PNG):
                results["files"].append(out / PNG)
            else:
                p(f"No figure: matplotlib is not installed. To get it: pip install \".[plot]\"")
    if json_path is not None:
        Path(json_path).write_text(json.dumps({k: results[k] for k in
                                               ("params", "permutation", "translation")},
                                              indent=1) + "\n")
        results["files"].append(Path(json_path))
    if results["files"]:
        p("Written: " + ", ".join(str(f) for f in results["files"]))
    results["elapsed"] = time.perf_counter() - start
    p(f"Total {results['elapsed']:.0f} s")
    return results
