"""convcore.layers: each layer against a float64 NumPy reference and (when torch is
installed) against torch.nn with the weights copied across — LeNet-5 and a MobileNet-style
depthwise-separable block; PyTorch's initialisation; shapes, MACs, parameter counts,
summary totals; weight assignment taking effect; NaN; bad arguments and inputs."""

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.testing import assert_conv_close, reference_conv2d, reference_conv2d_abs


def check_conv(y, x, layer, activation=None):
    """A Conv2d layer's output against convcore.testing's float64 reference and bound."""
    ref = reference_conv2d(x, layer.weight, layer.bias, layer.stride, layer.padding,
                           layer.dilation, layer.groups, layer.padding_mode)
    ref_abs = reference_conv2d_abs(x, layer.weight, layer.bias, layer.stride, layer.padding,
                                   layer.dilation, layer.groups, layer.padding_mode)
    n_terms = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
    assert y.dtype == np.asarray(x).dtype
    assert_conv_close(y, ref, ref_abs, n_terms + (layer.bias is not None), y.dtype, activation)


# ----------------------------------------------------------------------------- Conv2d

# (C, K, kernel, stride, padding, dilation, groups, padding_mode, input (N, H, W))
CONV_CASES = [
    (3, 6, 5, 1, 0, 1, 1, "zeros", (2, 12, 12)),
    (4, 8, 3, 2, 1, 1, 2, "zeros", (3, 9, 10)),
    (8, 8, 3, 1, 1, 1, 8, "zeros", (2, 7, 9)),
    (5, 7, (3, 2), 1, "same", (2, 1), 1, "zeros", (1, 8, 9)),
    (3, 4, 3, 1, 1, 1, 1, "reflect", (2, 6, 6)),
    (2, 3, 2, 1, (1, 2), 1, 1, "zeros", (1, 5, 4)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_layer_matches_reference(isa, dtype, case):
    c, k, kernel, stride, padding, dilation, groups, mode, (n, h, w) = case
    layer = L.Conv2d(c, k, kernel, stride, padding, dilation, groups, padding_mode=mode,
                     dtype=dtype, seed=1)
    x = np.random.default_rng(2).standard_normal((n, c, h, w)).astype(dtype)
    y = layer(x)
    assert y.shape == layer.output_shape(x.shape)
    check_conv(y, x, layer)
    y1 = layer(x[0])
    assert y1.shape == layer.output_shape(x.shape[1:])
    check_conv(y1, x[0], layer)
    n_terms = c // groups * layer.kernel_size[0] * layer.kernel_size[1]
    assert layer.macs(x.shape) == y.size * n_terms
    assert layer.num_params == k * n_terms + k


def test_conv2d_input_size_changes_and_weight_assignment():
    layer = L.Conv2d(2, 3, 3, padding=1, seed=0)
    rng = np.random.default_rng(0)
    for h, w in [(5, 5), (9, 4), (5, 5), (16, 17)]:
        x = rng.standard_normal((2, 2, h, w)).astype(np.float32)
        check_conv(layer(x), x, layer)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    before = layer(x)
    new_w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    layer.weight = new_w
    new_w[:] = 0  # the layer keeps its own copy
    after = layer(x)
    assert not np.allclose(before, after)
    check_conv(after, x, layer)
    layer.bias = np.full(3, 100.0, np.float32)
    assert np.all(layer(x) > 50)
    layer.bias = None
    assert layer.num_params == 54
    check_conv(layer(x), x, layer)


def test_parameters_are_read_only_and_assignment_is_validated():
    layer = L.Conv2d(2, 4, 3, seed=0)
    layer.eval()  # parameters are read-only in eval mode (writable in training mode)
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0, 0, 0, 0] = 1.0
    layer.train()
    with pytest.raises(ValueError, match=r"must have shape \(4, 2, 3, 3\)"):
        layer.weight = np.zeros((4, 2, 3, 2), np.float32)
    with pytest.raises(TypeError, match="float32"):
        layer.weight = np.zeros((4, 2, 3, 3), np.float64)
    with pytest.raises(TypeError, match="ndarray"):
        layer.weight = [[0.0]]
    with pytest.raises(ValueError, match=r"\(4,\)"):
        layer.bias = np.zeros(3, np.float32)
    dense = L.Dense(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        dense.weight = np.zeros((3, 2), np.float32)
    with pytest.raises(TypeError, match="float32"):
        dense.bias = np.zeros(2, np.float64)


def test_pytorch_default_initialisation():
    a = L.Conv2d(4, 6, 3, groups=2, seed=5)
    b = L.Conv2d(4, 6, 3, groups=2, seed=5)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, L.Conv2d(4, 6, 3, groups=2, seed=6).weight)
    bound = 1 / np.sqrt(2 * 3 * 3)  # fan_in = C/groups*R*S
    for p in (a.weight, a.bias):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    big = L.Dense(100, 300, dtype=np.float64, seed=0)
    assert big.weight.dtype == np.float64
    assert np.abs(big.weight).max() <= 0.1 and np.abs(big.weight).max() > 0.099
    assert abs(big.weight.mean()) < 0.002  # uniform, centred
    assert np.std(big.weight) == pytest.approx(0.1 / np.sqrt(3), rel=0.02)
    lc = L.LocallyConnected2d(2, 3, 6, 3, seed=0)
    assert np.abs(lc.weight).max() <= 1 / np.sqrt(18)


# ----------------------------------------------------------------------------- Dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_matches_reference(dtype):
    layer = L.Dense(17, 9, dtype=dtype, seed=2)
    x = np.random.default_rng(3).standard_normal((2, 5, 17)).astype(dtype)
    w64, b64 = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
    ref = x.astype(np.float64) @ w64.T + b64
    ref_abs = np.abs(x.astype(np.float64)) @ np.abs(w64).T + np.abs(b64)
    y = layer(x)
    assert y.shape == (2, 5, 9) == layer.output_shape(x.shape) and y.dtype == dtype
    assert_conv_close(y, ref, ref_abs, 17, dtype)
    assert_conv_close(layer(x[0, 0]), ref[0, 0], ref_abs[0, 0], 17, dtype)
    assert layer.num_params == 17 * 9 + 9
    assert layer.macs((5, 17)) == 5 * 17 * 9
    assert repr(layer) == "Dense(in_features=17, out_features=9, bias=True)"
    layer.weight = np.zeros((9, 17), dtype)
    np.testing.assert_array_equal(layer(x), np.broadcast_to(layer.bias, (2, 5, 9)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 17\)"):
        layer(x[..., :16])
    with pytest.raises(TypeError, match="dtype"):
        layer(x.astype(np.float32 if dtype == np.float64 else np.float64))


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize("act, fn", [
    (L.ReLU(), lambda v: np.maximum(v, 0)),
    (L.Sigmoid(0.08, 50), lambda v: 1 / (1 + np.exp(-0.08 * (v - 50)))),
    (L.Tanh(), np.tanh),
    (L.Abs(), np.abs),
    (L.Square(), np.square),
    (L.LeakyReLU(0.1), lambda v: np.where(v >= 0, v, 0.1 * v)),
], ids=repr)
def test_activation_layers(act, fn):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 60
    np.testing.assert_allclose(act(x), fn(x), rtol=1e-12, atol=1e-300)
    assert act.num_params == 0 and act.output_shape((3, 4, 5)) == (3, 4, 5)
    assert act.macs((3, 4, 5)) == 0
    # As the activation= of conv2d, linear and the layers: fused, same values.
    w = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    img = x[:, :5, :5][None] / 60
    np.testing.assert_allclose(convcore.conv2d(img, w, activation=act),
                               fn(convcore.conv2d(img, w)), rtol=1e-12, atol=1e-15)
    lin = np.random.default_rng(2).standard_normal((4, 5))
    np.testing.assert_allclose(convcore.linear(x, lin, activation=act), fn(convcore.linear(x, lin)),
                               rtol=1e-12, atol=1e-12)
    conv = L.Conv2d(3, 2, 3, activation=act, dtype=np.float64, seed=0)
    plain = L.Conv2d(3, 2, 3, dtype=np.float64, seed=0)
    np.testing.assert_allclose(conv(img), fn(plain(img)), rtol=1e-12, atol=1e-15)


def test_activation_reprs_and_nan():
    assert repr(L.ReLU()) == "ReLU()"
    assert repr(L.Sigmoid()) == "Sigmoid()"
    assert repr(L.Sigmoid(0.08, 50)) == "Sigmoid(a=0.08, b=50)"
    assert repr(L.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert L.Sigmoid(0.08, 50).activation_spec == ("sigmoid", 0.08, 50.0)
    x = np.array([np.nan, -1.0, 2.0], np.float32)
    for act in (L.ReLU(), L.Sigmoid(), L.Tanh(), L.Abs(), L.Square(), L.LeakyReLU()):
        assert np.isnan(act(x)[0]) and not np.isnan(act(x)[1:]).any()


def test_nan_through_layers():
    conv = L.Conv2d(1, 2, 3, padding=1, activation="relu", seed=0)
    x = np.zeros((1, 1, 6, 6), np.float32)
    x[0, 0, 2, 2] = np.nan
    y = conv(x)
    assert np.isnan(y[:, :, 1:4, 1:4]).all() and np.isnan(y).sum() == 18
    pooled = L.MaxPool2d(2)(y)
    assert np.isnan(pooled).sum() == 2 * 4
    dense = L.Dense(8, 3, seed=0)
    assert np.isnan(dense(L.Flatten()(pooled[:, :, :2, :2]))).all()


# ----------------------------------------------------------------------------- Sequential


def lenet5(dtype=np.float32):
    return L.Sequential(
        L.Conv2d(1, 6, 5, padding=2, dtype=dtype, seed=0), L.Tanh(), L.AvgPool2d(2),
        L.Conv2d(6, 16, 5, dtype=dtype, seed=1), L.Tanh(), L.AvgPool2d(2), L.Flatten(),
        L.Dense(400, 120, dtype=dtype, seed=2), L.Tanh(), L.Dense(120, 84, dtype=dtype, seed=3),
        L.Tanh(), L.Dense(84, 10, dtype=dtype, seed=4))


def test_sequential_summary_and_container():
    net = lenet5()
    assert len(net) == 12 and isinstance(net[0], L.Conv2d) and isinstance(net[-1], L.Dense)
    assert [type(m).__name__ for m in net][:3] == ["Conv2d", "Tanh", "AvgPool2d"]
    head = net[:3]
    assert isinstance(head, L.Sequential) and len(head) == 3
    assert head.output_shape((1, 28, 28)) == (6, 14, 14)
    assert net.output_shape((1, 28, 28)) == (10,)
    assert net.output_shape((5, 1, 28, 28)) == (5, 10)
    conv_params = [156, 2416]
    dense_params = [400 * 120 + 120, 120 * 84 + 84, 84 * 10 + 10]
    assert net.num_params == sum(conv_params + dense_params) == 61706
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert net.macs((1, 28, 28)) == macs
    summary = net.summary((1, 28, 28))
    assert [r.layer for r in summary.rows][:2] == ["Conv2d-1", "Tanh-2"]
    assert summary.rows[0].output_shape == (1, 6, 28, 28)
    assert summary.rows[0].params == 156 and summary.rows[0].macs == 6 * 28 * 28 * 25
    assert summary.totals == {"params": 61706, "macs": macs, "output_shape": (1, 10)}
    text = str(summary)
    assert "Total params: 61,706" in text and f"Total MACs: {macs:,}" in text
    assert "[1, 16, 10, 10]" in text and "Dense-12" in text
    assert net.summary((8, 1, 28, 28)).totals["macs"] == 8 * macs
    assert repr(net).startswith("Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5)")
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    y = net(x)
    assert y.shape == (4, 10)
    np.testing.assert_array_equal(net(x[1]), y[1])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_channels"):
        L.Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        L.Conv2d(1, 3, 0)
    with pytest.raises(ValueError, match="stride"):
        L.Conv2d(1, 3, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2d(1, 3, 3, padding=-1)
    with pytest.raises(ValueError, match="same"):
        L.Conv2d(1, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="groups"):
        L.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(TypeError, match="kernel_size"):
        L.Conv2d(1, 3, 2.5)
    with pytest.raises(ValueError, match="padding_mode"):
        L.Conv2d(1, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="activation"):
        L.Conv2d(1, 3, 3, activation="softmax")
    with pytest.raises(TypeError, match="activation"):
        L.Dense(3, 3, activation=3)
    with pytest.raises(TypeError, match="dtype"):
        L.Dense(3, 3, dtype=np.int32)
    with pytest.raises(TypeError, match="bias"):
        L.Dense(3, 3, bias="yes")
    with pytest.raises(ValueError, match="out_features"):
        L.Dense(3, 0)
    with pytest.raises(ValueError, match="seed"):
        L.Dense(3, 3, seed=-1)
    with pytest.raises(TypeError, match="Module"):
        L.Sequential(L.ReLU(), np.tanh)
    with pytest.raises(TypeError, match="negative_slope"):
        L.LeakyReLU("0.1")


def test_bad_inputs():
    conv = L.Conv2d(3, 4, 3, seed=0)
    with pytest.raises(ValueError, match="expected 3"):
        conv(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        conv(np.zeros((8, 8), np.float32))
    with pytest.raises(TypeError, match="float64"):
        conv(np.zeros((1, 3, 8, 8), np.float64))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv(np.zeros((1, 3, 2, 8), np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv.output_shape((3, 2, 8))
    with pytest.raises(ValueError, match="input_shape"):
        conv.output_shape((8, 8))
    assert conv(np.zeros((0, 3, 8, 8), np.float32)).shape == (0, 4, 6, 6)


# ----------------------------------------------------------------------------- against torch


def _to_torch(net, torch):
    """The same network in torch.nn, float64, with the weights copied."""
    mods = []
    for m in net:
        if isinstance(m, L.Conv2d):
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                m.dilation, m.groups, m.bias is not None, m.padding_mode)
        elif isinstance(m, L.Dense):
            t = torch.nn.Linear(m.in_features, m.out_features, m.bias is not None)
        else:
            t = {L.Tanh: torch.nn.Tanh, L.ReLU: torch.nn.ReLU, L.Flatten: torch.nn.Flatten}.get(type(m))
            t = t() if t else (torch.nn.AvgPool2d(m.kernel_size) if isinstance(m, L.AvgPool2d)
                               else torch.nn.MaxPool2d(m.kernel_size))
        if hasattr(m, "weight"):
            t = t.double()
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(m.weight.astype(np.float64)))
                if m.bias is not None:
                    t.bias.copy_(torch.from_numpy(m.bias.astype(np.float64)))
        mods.append(t)
    return mods


def _n_terms(m):
    if isinstance(m, L.Conv2d):
        return m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    if isinstance(m, L.Dense):
        return m.in_features
    if isinstance(m, L.AvgPool2d):
        return m._k[0] * m._k[1]
    return 0


def _compare_layerwise(net, x, torch):
    """Feed each layer convcore's previous output; torch (float64) on the same input is
    the reference, bounded as convcore.testing does: gamma(n) * (the same layer on
    |input|, |weights|), and an activation's bound propagated from its exact input."""
    tmods = _to_torch(net, torch)
    cur = x
    for m, t in zip(net, tmods):
        ours = m(cur)
        x64 = cur.astype(np.float64)
        with torch.no_grad():
            if hasattr(m, "activation_spec"):
                ref, ref_abs, act = x64, np.abs(x64), m
                np.testing.assert_allclose(t(torch.from_numpy(x64)).numpy(), m(x64), rtol=1e-13)
            else:
                ref, act = t(torch.from_numpy(x64)).numpy(), None
                absnet = _to_torch(L.Sequential(m), torch)[0]
                if hasattr(m, "weight"):
                    absnet.weight.abs_()
                    if m.bias is not None:
                        absnet.bias.abs_()
                ref_abs = absnet(torch.from_numpy(np.abs(x64))).numpy()
        assert ours.shape == ref.shape
        assert_conv_close(ours, ref, ref_abs, _n_terms(m), ours.dtype, act)
        cur = ours
    return cur


def test_lenet5_against_torch():
    torch = pytest.importorskip("torch")
    net = lenet5()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    out = _compare_layerwise(net, x, torch)
    end_to_end = torch.nn.Sequential(*_to_torch(net, torch))(torch.from_numpy(x.astype(np.float64)))
    np.testing.assert_allclose(out, end_to_end.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_depthwise_separable_block_against_torch():
    """MobileNet's block: 3x3 depthwise conv (groups = channels, stride 2) + ReLU, 1x1
    pointwise conv + ReLU, then max pooling."""
    torch = pytest.importorskip("torch")
    c, k = 16, 24
    block = L.Sequential(
        L.Conv2d(c, c, 3, stride=2, padding=1, groups=c, bias=False, seed=0), L.ReLU(),
        L.Conv2d(c, k, 1, seed=1), L.ReLU(), L.MaxPool2d(2))
    x = np.random.default_rng(1).standard_normal((2, c, 17, 17)).astype(np.float32)
    out = _compare_layerwise(block, x, torch)
    assert out.shape == (2, k, 4, 4)
    assert block.num_params == c * 9 + (c * k + k)


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [
        (L.Conv2d(3, 6, 5), torch.nn.Conv2d(3, 6, 5)),
        (L.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False),
         torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False)),
        (L.Conv2d(2, 2, 3, padding="same", dilation=2), torch.nn.Conv2d(2, 2, 3, padding="same", dilation=2)),
        (L.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (L.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (L.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (L.ReLU(), torch.nn.ReLU()),
        (L.Tanh(), torch.nn.Tanh()),
        (L.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert repr(L.Dense(3, 4)) == repr(torch.nn.Linear(3, 4)).replace("Linear", "Dense")
