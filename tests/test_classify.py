"""The classification experiment (issue 17): ``python -m convcore classify`` end to end on a
reduced setting, the JSON's documented shape, the MLP permutation identity, the data
helpers, reproducibility, the message without scikit-learn, and the demo's section 5."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from convcore import classify, demo
from convcore.__main__ import main

pytest.importorskip("sklearn", reason="the digits come from scikit-learn (the test extra)")

U64 = np.finfo(np.float64).eps / 2  # unit roundoff of float64


@pytest.fixture(scope="module")
def digits():
    return classify.load_digits()


@pytest.fixture
def small(monkeypatch):
    """A reduced setting for the end-to-end runs: narrow networks, large batches (the
    command's code paths unchanged, a fraction of the arithmetic). Two channels keep every
    array the core returns here (padded copies included) under 784 KiB:
    test_output_cache expects no recycled block of its 784 KiB arrays' size class
    (784-980 KiB) to be cached already."""
    for name, value in (("channels", (2, 2)), ("lc_channels", (1, 1)), ("hidden", 8),
                        ("batch_size", 128)):
        monkeypatch.setattr(classify.Settings, name, value)


@pytest.fixture
def no_sklearn(monkeypatch):
    """Make every ``import sklearn...`` fail, as if scikit-learn were not installed."""
    for name in list(sys.modules):
        if name == "sklearn" or name.startswith("sklearn."):
            monkeypatch.delitem(sys.modules, name)
    for name in ("sklearn", "sklearn.datasets"):
        monkeypatch.setitem(sys.modules, name, None)


def check_shape(doc, seeds):
    """The issue's JSON: params (ints), and per experiment, model and condition a list of
    one accuracy in [0, 1] per seed; nothing else."""
    assert set(doc) == {"params", "permutation", "translation"}
    assert set(doc["params"]) == set(classify.MODELS)
    assert all(isinstance(v, int) and v > 0 for v in doc["params"].values())
    for exp, conditions in (("permutation", {"original", "permuted"}),
                            ("translation", {"centered", "shifted"})):
        assert set(doc[exp]) == set(classify.MODELS)
        for model in classify.MODELS:
            assert set(doc[exp][model]) == conditions
            for values in doc[exp][model].values():
                assert len(values) == seeds
                assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)


def test_command_end_to_end(tmp_path, capsys, small):
    """The reduced setting: two seeds, one epoch, narrow networks. Files written, table printed, JSON in the
    documented shape with the models' own parameter counts."""
    out, path = tmp_path / "out", tmp_path / "r.json"
    assert main(["classify", "--seeds", "2", "--epochs", "1", "--out", str(out),
                 "--json", str(path)]) == 0
    text = capsys.readouterr().out
    doc = json.loads(path.read_text())
    check_shape(doc, seeds=2)
    assert doc["params"] == {
        "cnn": classify.cnn(seed=0, channels=classify.Settings.channels).num_params,
        "lc": classify.cnn(seed=0, locally_connected=True,
                           channels=classify.Settings.lc_channels).num_params,
        "mlp": classify.mlp(seed=0, hidden=classify.Settings.hidden).num_params}
    table = (out / classify.MD).read_text()
    assert table.startswith("| model | parameters | original | permuted |")
    assert table.strip() in text
    for model in classify.MODELS:
        assert f"{doc['params'][model]:,}" in table
    assert "predicts the same class on" in text
    if (out / classify.PNG).exists():  # matplotlib installed
        assert (out / classify.PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_is_seeded(digits):
    X, y = digits.X_train[:200], digits.y_train[:200]
    w = [classify.train(classify.cnn(seed=3), X, y, seed=3, epochs=2).state_dict()
         for _ in range(2)]
    for key in w[0]:
        np.testing.assert_array_equal(w[0][key], w[1][key], err_msg=key)


def test_mlp_forward_cannot_tell_a_permutation(digits):
    """Before any training: the MLP with its first layer's columns permuted, on permuted
    pixels, computes the same logits; the only difference is the order of the 64-term
    sums of the first layer, bounded by 64 u sum|x||w| there (and carried through ReLU and
    a 48-term second layer, bounded the same way)."""
    pixels = np.random.default_rng(5).permutation(64)
    a = classify.mlp(seed=0, dtype=np.float64)
    b = classify.mlp(seed=0, dtype=np.float64)
    b[1].weight = a[1].weight[:, pixels]
    x = digits.X_test.astype(np.float64)
    la, lb = a(x), b(classify.permute_pixels(x, pixels))
    flat = x.reshape(len(x), -1)
    h_abs = np.abs(flat) @ np.abs(a[1].weight).T + np.abs(a[1].bias)
    bound_h = 64 * U64 * h_abs  # first layer, per hidden unit
    w2 = np.abs(a[2].weight)
    bound = bound_h @ w2.T + 48 * U64 * (h_abs @ w2.T + np.abs(a[2].bias))
    assert np.all(np.abs(la - lb) <= bound)


def test_mlp_permutation_identity(digits):
    """The exact statement after training: the same predictions on every test image, and
    the same function to float64 rounding. Both runs do the same operations on the same
    numbers but for the order of the first layer's sums (a relative difference of order
    u = 1.1e-16 per step); a float32 run (u = 6e-8) or a wrongly permuted weight
    (differences of order 1) would exceed 1e-9 relative by far."""
    pixels = np.random.default_rng(classify.PERMUTATION_SEED).permutation(64)
    ident = classify.mlp_permutation_identity(digits, pixels, seed=0, epochs=3)
    np.testing.assert_array_equal(ident["predictions"], ident["permuted_predictions"])
    assert ident["max_logit_diff"] <= 1e-9 * ident["max_logit"]
    assert ident["max_weight_diff"] <= 1e-9
    # and the statement is not trivial: the predictions are mostly right
    assert np.mean(ident["predictions"] == digits.y_test) > 0.8


def test_split_is_fixed_and_standardised(digits):
    again = classify.load_digits()
    np.testing.assert_array_equal(digits.X_test, again.X_test)
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert len(digits.y_test) == round(classify.TEST_FRACTION * 1797)
    assert digits.X_train.dtype == np.float32 and digits.X_train.shape[1:] == (1, 8, 8)
    assert abs(float(digits.X_train.mean())) < 1e-6
    assert abs(float(digits.X_train.std()) - 1) < 1e-6


def test_permute_pixels_and_place():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    pixels = np.random.default_rng(0).permutation(20)
    xp = classify.permute_pixels(x, pixels)
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(xp[n, c].ravel(), x[n, c].ravel()[pixels])
    raw = np.arange(1, 2 * 8 * 8 + 1, dtype=np.float64).reshape(2, 8, 8)
    canvas = classify.place(raw, np.array([[0, 8], [4, 3]]))
    assert canvas.shape == (2, 16, 16)
    np.testing.assert_array_equal(canvas[0, 0:8, 8:16], raw[0])
    np.testing.assert_array_equal(canvas[1, 4:12, 3:11], raw[1])
    assert canvas.sum() == raw.sum()  # nothing else written
    with pytest.raises(ValueError, match="outside the 16x16 canvas"):
        classify.place(raw, np.array([[0, 9], [0, 0]]))


def test_models_take_their_image_sizes():
    for side in (8, 16):
        for model in (classify.cnn(side, seed=0),
                      classify.cnn(side, seed=0, locally_connected=True,
                                   channels=classify.Settings.lc_channels),
                      classify.cnn(side, seed=0, channels=(3,)),
                      classify.mlp(side, seed=0)):
            assert model.output_shape((5, 1, side, side)) == (5, 10)
    # weight sharing: the CNN's parameter count does not depend on the image size
    assert classify.cnn(16, seed=0).num_params == classify.cnn(8, seed=0).num_params
    with pytest.raises(ValueError, match="channels"):
        classify.cnn(channels=())


def test_bad_arguments(tmp_path, capsys):
    assert main(["classify", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "seeds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="epochs"):
        classify.run(epochs=0, out_dir=None)


def test_missing_scikit_learn_names_the_extra(tmp_path, capsys, no_sklearn):
    with pytest.raises(ImportError, match=r'pip install "\.\[learn\]"'):
        classify.load_digits()
    assert main(["classify", "--out", str(tmp_path / "o")]) == 2
    assert 'pip install ".[learn]"' in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    lines = []
    assert demo.classification(print_fn=lines.append) is None
    assert any('pip install ".[learn]"' in line for line in lines)


def test_demo_section_five(monkeypatch, small):
    monkeypatch.setattr(demo, "CLASSIFY_EPOCHS", 1)
    lines = []
    out = demo.run(demo.default_image()[100:140, 20:72].copy(), plot=False,
                   print_fn=lines.append)
    text = "\n".join(lines)
    assert "5. Classification" in text and "| model | parameters |" in text
    check_shape({k: out["classify"][k] for k in ("params", "permutation", "translation")},
                seeds=1)
