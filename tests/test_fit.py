"""convcore.train.fit: it learns a separable problem, its history, determinism (same seed,
any thread count: the same bits), validation, the progress bar, bad arguments."""

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.optim import SGD, Adam
from convcore.train import evaluate, fit


def blobs(n, seed):
    """Two Gaussian classes in 2-D whose means are 8 standard deviations apart."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, 2)) + 4.0 * np.where(y[:, None] == 1, 1.0, -1.0)
    return X.astype(np.float32), y


def test_fit_learns_and_reports_history():
    X, y = blobs(200, 0)
    Xv, yv = blobs(50, 1)
    model = L.Sequential(L.Dense(2, 8, activation="relu", seed=0), L.Dense(8, 2, seed=1))
    hist = fit(model, X, y, epochs=4, batch_size=32, optimizer=SGD(model.parameters(), lr=0.1),
               loss=L.CrossEntropyLoss(), validation=(Xv, yv), seed=0, progress=False)
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert all(len(v) == 4 for v in hist.values())
    assert hist["loss"][-1] < hist["loss"][0]
    # the classes are 8 sigma apart: a learnt linear boundary misclassifies ~none
    assert hist["val_accuracy"][-1] >= 0.96 and hist["accuracy"][-1] >= 0.9
    assert model.training
    metrics = evaluate(model, Xv, yv, L.CrossEntropyLoss())
    assert metrics["loss"] == pytest.approx(hist["val_loss"][-1], rel=1e-6)
    assert metrics["accuracy"] == hist["val_accuracy"][-1] and model.training


def small_cnn(seed=0):
    return L.Sequential(L.Conv2d(1, 4, 3, activation="relu", seed=seed), L.MaxPool2d(2),
                        L.Flatten(), L.Dense(36, 3, seed=seed + 1))


def run(threads, seed=5):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = small_cnn()
    previous = convcore.get_num_threads()
    convcore.set_num_threads(threads)
    try:
        hist = fit(model, X, y, epochs=2, batch_size=16, seed=seed, progress=False,
                   optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
                   loss=L.CrossEntropyLoss())
    finally:
        convcore.set_num_threads(previous)
    return hist, model.state_dict()


def test_fit_is_deterministic_for_a_seed_and_any_thread_count():
    h1, s1 = run(1)
    h2, s2 = run(2)
    assert h1["loss"] == h2["loss"] and h1["accuracy"] == h2["accuracy"]
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k])
    h3, s3 = run(1, seed=6)  # another shuffle: other batches, other weights
    assert not np.array_equal(s1["3.weight"], s3["3.weight"])


def test_fit_regression_with_mse_adam_and_progress_bar(capsys):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    model = L.Dense(3, 1, dtype=np.float64, seed=0)
    model.eval()  # fit puts it in training mode
    hist = fit(model, X, y, epochs=3, batch_size=10, optimizer=Adam(model.parameters(), lr=0.1),
               loss=L.MSELoss(), seed=1, progress=True)
    assert hist["accuracy"] == [None] * 3 and hist["val_loss"] == []
    assert hist["loss"][-1] < hist["loss"][0]
    assert model.training


def test_fit_bad_arguments():
    X, y = blobs(10, 0)
    model = L.Dense(2, 2)
    opt = SGD(model.parameters(), lr=0.1)
    kw = dict(epochs=1, batch_size=4, optimizer=opt, loss=L.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"shapes \(10, 2\) and \(9,\)"):
        fit(model, X, y[:9], **kw)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit(model, X, y, **{**kw, "epochs": 0})
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        fit(model, X, y, **{**kw, "batch_size": 2.5})
    with pytest.raises(TypeError, match="optimizer"):
        fit(model, X, y, **{**kw, "optimizer": "sgd"})
    with pytest.raises(TypeError, match="loss"):
        fit(model, X, y, **{**kw, "loss": np.mean})
    with pytest.raises(ValueError, match="reduction"):
        fit(model, X, y, **{**kw, "loss": L.CrossEntropyLoss("none")})
    with pytest.raises(TypeError, match="validation must be an"):
        fit(model, X, y, **kw, validation=X)
    with pytest.raises(TypeError, match="model"):
        fit(lambda v: v, X, y, **kw)
