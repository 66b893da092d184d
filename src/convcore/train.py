"""A training loop for users who don't want to write one: ``fit``.

``fit(model, X, y, epochs=..., batch_size=..., optimizer=..., loss=...)`` runs mini-batch
training with the samples shuffled every epoch from ``seed`` (NumPy's default generator),
shows a tqdm progress bar when tqdm is installed (the optional extra ``train``), and
returns the per-epoch history. With a seed, a run is deterministic: the same batches in
the same order, and convcore's forward and backward passes give the same bits for any
thread count.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .layers import Module
from .optim import Optimizer

__all__ = ["evaluate", "fit"]


def _progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` batches, or None (no tqdm, or not wanted)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=False)


def _batches(n: int, batch_size: int, order: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _check_data(X: Any, y: Any, name: str) -> Tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 1 or y.ndim < 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: X and y must have one sample per row and as many rows, "
                         f"got shapes {X.shape} and {y.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: X has no samples")
    return X, y


def _sample_sum(loss: Any, value: float, batch: int) -> float:
    """The sum over the batch's samples of their loss, from the criterion's value."""
    return value * batch if getattr(loss, "reduction", "mean") == "mean" else value


def _correct(output: np.ndarray, target: np.ndarray) -> Optional[int]:
    """Correctly classified samples, when the target holds class indices for output's
    (N, classes) scores; None otherwise."""
    if output.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu":
        return int(np.count_nonzero(np.argmax(output, axis=1) == target))
    return None


def evaluate(model: Module, X: Any, y: Any, loss: Any, *, batch_size: int = 256
             ) -> Dict[str, Optional[float]]:
    """The mean loss per sample and the accuracy (None unless the targets are class indices) of ``model`` on ``(X, y)``, in
    eval mode; the model's mode is restored afterwards."""
    X, y = _check_data(X, y, "evaluate")
    was_training = model.training
    model.eval()
    try:
        total, correct, n = 0.0, 0, X.shape[0]
        for idx in _batches(n, batch_size, np.arange(n)):
            out = model(X[idx])
            total += _sample_sum(loss, float(loss(out, y[idx])), len(idx))
            c = _correct(out, y[idx])
            correct = None if c is None or correct is None else correct + c
    finally:
        model.train(was_training)
    return {"loss": total / n, "accuracy": None if correct is None else correct / n}


def fit(model: Module, X: Any, y: Any, *, epochs: int, batch_size: int,
        optimizer: Optimizer, loss: Any, validation: Optional[Tuple[Any, Any]] = None,
        seed: Optional[int] = None, progress: bool = True) -> Dict[str, List[Any]]:
    """Train ``model`` on ``(X, y)`` for ``epochs`` passes of shuffled mini-batches.

    Each step: ``out = model(xb)``, ``loss(out, yb)``, ``optimizer.zero_grad()``,
    ``model.backward(loss.backward(), input_grad=False)``, ``optimizer.step()``. ``loss`` is a criterion
    such as ``CrossEntropyLoss()`` (default reduction "mean"); ``validation`` an ``(X, y)``
    pair evaluated (eval mode) after every epoch. The last batch of an epoch may be
    smaller. ``progress`` shows a tqdm bar when tqdm is installed.

    Returns the history: ``{"loss": [...], "accuracy": [...], "val_loss": [...],
    "val_accuracy": [...], "seconds": [...]}``, one entry per epoch (the training loss is
    the mean over the epoch's samples of the loss of their batch, before each step;
    accuracies are None unless the targets are class indices; the ``val_`` lists are
    empty without ``validation``; ``seconds`` is each epoch's wall time). The model is left in training mode.
    """
    from .functional import _int_param

    epochs = _int_param(epochs, "epochs", 1)
    batch_size = _int_param(batch_size, "batch_size", 1)
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be a convcore.layers.Module, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"fit: optimizer must be a convcore.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    if not callable(loss) or not hasattr(loss, "backward"):
        raise TypeError(f"fit: loss must be a criterion such as CrossEntropyLoss(), got "
                        f"{type(loss).__name__}")
    if getattr(loss, "reduction", "mean") == "none":
        raise ValueError("fit: the loss must reduce to a number (reduction 'mean' or 'sum')")
    X, y = _check_data(X, y, "fit")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("fit: validation must be an (X, y) pair")
        validation = _check_data(validation[0], validation[1], "fit: validation")
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    steps = -(-n // batch_size)
    history: Dict[str, List[Any]] = {"loss": [], "accuracy": [], "val_loss": [],
                                     "val_accuracy": [], "seconds": []}
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        bar = _progress(steps, f"epoch {epoch + 1}/{epochs}", progress)
        total: float = 0.0
        correct: Optional[int] = 0
        try:
            for idx in _batches(n, batch_size, rng.permutation(n)):
                xb, yb = X[idx], y[idx]
                out = model(xb)
                value = float(loss(out, yb))
                c = _correct(out, yb)
                correct = None if c is None or correct is None else correct + c
                optimizer.zero_grad()
                model.backward(loss.backward(), input_grad=False)
                optimizer.step()
                total += _sample_sum(loss, value, len(idx))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        history["loss"].append(total / n)
        history["accuracy"].append(None if correct is None else correct / n)
        if validation is not None:
            metrics = evaluate(model, validation[0], validation[1], loss,
                               batch_size=max(batch_size, 256))
            history["val_loss"].append(metrics["loss"])
            history["val_accuracy"].append(metrics["accuracy"])
        history["seconds"].append(time.perf_counter() - start)
    return history
