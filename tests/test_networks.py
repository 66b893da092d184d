"""Layers for whole networks (BatchNorm2d, Dropout, AdaptiveAvgPool2d, ReLU6, Softmax,
Residual, Concat) and the torchvision models (resnet18, resnet50, mobilenet_v2): forward
and backward against PyTorch in float64 and against finite differences, state_dict
buffers, fuse(), bad inputs.

Bounds (float64, u = 2**-53), each from the arithmetic of the sums involved:
- a sum of n products is within gamma_n = n u of the exact one, relative to the sum of
  the absolute terms; both convcore and PyTorch round, hence the factor 2;
- BatchNorm2d normalises by batch statistics over m = N*H*W values; the mean's error
  (m u mean|x|) and the variance's (relative m u (1 + mean|x|/sigma), the centred values
  carrying the mean's error) scale by weight/sigma;
- a whole network in eval mode: every layer is a non-negative sum of products
  followed by monotone, 1-Lipschitz maps (ReLU, ReLU6, max/avg pooling), so the
  errors add up along the layers: |y - y_exact| <= gamma_M * |net|(|x|), with |net| the
  "magnitude network" (|weights|, batch normalisation as |scale| x + |shift|, running
  mean 0) and M the summed reduction lengths of all layers (plus a few roundings each for
  the normalisation, the bias, the residual add and the folding of fuse()).
- finite differences: central differences at h and 2h; the truncation error of the h
  estimate is (D(2h) - D(h)) / 3 to leading order (Richardson), the rounding error
  2 eps_phi / (2h) with eps_phi the evaluation error of phi.
"""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from convcore import bench, models
from convcore import layers as L

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
U = np.finfo(np.float64).eps / 2


@pytest.fixture(autouse=True)
def torch_one_thread():
    """PyTorch on one thread: its spinning workers make float64 depthwise layers 50x
    slower on a shared 2-core machine."""
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tt(a, grad=False):
    return torch.tensor(np.array(a), dtype=torch.float64, requires_grad=grad)


def assert_within(actual, ref, tol):
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(ref, np.float64))
    bad = err > tol
    assert not bad.any(), (f"{bad.sum()} of {bad.size} beyond the bound; worst err "
                           f"{err[bad].max():.3g} vs tol {np.broadcast_to(tol, err.shape)[bad].min():.3g}")


def fd_check(layer, x, n_terms, rng, h=1e-4):
    """Directional finite differences of phi(t) = <r, layer(x + t v)> against <backward(r), v>."""
    layer.train()
    y = layer(x)
    r = rng.standard_normal(y.shape)
    gx = layer.backward(r)
    v = rng.standard_normal(x.shape)

    def phi(t):
        out = layer(x + t * v)
        layer._forget()
        return float(np.sum(r * out))

    d1 = (phi(h) - phi(-h)) / (2 * h)
    d2 = (phi(2 * h) - phi(-2 * h)) / (4 * h)
    eps_phi = 2 * (n_terms + y.size) * U * float(np.sum(np.abs(r * y)) + np.sum(np.abs(r)))
    tol = 2 * abs(d2 - d1) / 3 + 2 * eps_phi / (2 * h) + 2 * gx.size * U * float(np.sum(np.abs(gx * v)))
    assert abs(d1 - float(np.sum(gx * v))) <= tol, (d1, float(np.sum(gx * v)), tol)


# ----------------------------------------------------------------------------- BatchNorm2d


def bn_bounds(x, gamma, beta, g=None):
    """Element-wise bounds of the training-mode forward (and backward) of BatchNorm2d."""
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    sig = np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    ax = np.abs(x).mean(axis=(0, 2, 3), keepdims=True)
    amp = 1 + ax / sig                      # the cancellation in x - mean, and in var
    gam, bet = np.abs(gamma)[:, None, None], np.abs(beta)[:, None, None]
    xhat = np.abs(x - mu) / sig
    c = 2 * (m + 8) * U
    fwd = c * (gam * (np.abs(x) + np.abs(mu)) / sig + gam * xhat * amp + bet)
    if g is None:
        return fwd
    ag = np.abs(g)
    mg = ag.mean(axis=(0, 2, 3), keepdims=True)
    mgx = (ag * xhat).mean(axis=(0, 2, 3), keepdims=True)
    bwd = c * amp * gam / sig * (ag + mg + xhat * mgx + mgx)
    return fwd, bwd, c * ag.sum(axis=(0, 2, 3)), c * amp.ravel() * (ag * xhat).sum(axis=(0, 2, 3))


@needs_torch
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (4, 17, 1, 1), (1, 2, 3, 3)])
def test_batchnorm_training_matches_torch(rng, shape, momentum):
    c = shape[1]
    bn = L.BatchNorm2d(c, momentum=momentum, dtype=np.float64)
    tbn = torch.nn.BatchNorm2d(c, momentum=momentum).double()
    gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    bn.weight, bn.bias = gamma, beta
    with torch.no_grad():
        tbn.weight.copy_(tt(gamma))
        tbn.bias.copy_(tt(beta))
    for step in range(3):                     # the running statistics over three batches
        x = 3 + 2 * rng.standard_normal(shape)
        g = rng.standard_normal(shape)
        bn.zero_grad()
        tbn.zero_grad()
        y = bn(x)
        tx = tt(x, True)
        ty = tbn(tx)
        ty.backward(tt(g))
        gx = bn.backward(g)
        fwd, bwd, gb_tol, gw_tol = bn_bounds(x, gamma, beta, g)
        assert_within(y, ty.detach().numpy(), fwd)
        assert_within(gx, tx.grad.numpy(), bwd)
        assert_within(bn._own_params()["weight"].grad, tbn.weight.grad.numpy(), gw_tol)
        assert_within(bn._own_params()["bias"].grad, tbn.bias.grad.numpy(), gb_tol)
        m = shape[0] * shape[2] * shape[3]
        stat_tol = 4 * (m + 8) * U * (np.abs(x).max() ** 2 + 1) * (step + 1)
        assert_within(bn.running_mean, tbn.running_mean.numpy(), stat_tol)
        assert_within(bn.running_var, tbn.running_var.numpy(), stat_tol)
        assert int(bn.num_batches_tracked) == int(tbn.num_batches_tracked) == step + 1
    # eval: the running statistics (PyTorch's x * alpha + beta form)
    bn.eval()
    tbn.eval()
    x = rng.standard_normal(shape)
    ref = tbn(tt(x)).detach().numpy()
    scale = np.abs(gamma) / np.sqrt(bn.running_var + 1e-5)
    tol = 2 * 8 * U * (scale[:, None, None] * (np.abs(x) + np.abs(bn.running_mean)[:, None, None])
                       + np.abs(beta)[:, None, None])
    assert_within(bn(x), ref, tol)


@needs_torch
def test_batchnorm_options_match_torch(rng):
    x = rng.standard_normal((3, 4, 2, 5))
    for kw in ({"affine": False}, {"track_running_stats": False}, {"eps": 0.1, "momentum": 0.5}):
        bn = L.BatchNorm2d(4, dtype=np.float64, **kw)
        tbn = torch.nn.BatchNorm2d(4, **kw).double()
        assert list(bn.state_dict()) == list(tbn.state_dict()), kw
        for mode in (True, False):
            bn.train(mode)
            tbn.train(mode)
            ref = tbn(tt(x)).detach().numpy()
            eps = kw.get("eps", 1e-5)
            sig = np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
            amp = 1 + np.abs(x).mean(axis=(0, 2, 3), keepdims=True) / sig
            tol = 2 * (30 + 8) * U * amp * (np.abs(x) + np.abs(x).max()) / min(sig.min(), np.sqrt(eps))
            assert_within(bn(x), ref, tol)


def test_batchnorm_finite_differences(rng):
    bn = L.BatchNorm2d(3, dtype=np.float64)
    bn.weight = rng.uniform(0.5, 2, 3)
    bn.bias = rng.standard_normal(3)
    fd_check(bn, rng.standard_normal((2, 3, 4, 3)), 24, rng)


def test_batchnorm_state_dict_and_float32(rng):
    bn = L.BatchNorm2d(5)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    x = rng.standard_normal((4, 5, 6, 6)).astype(np.float32)
    y = bn(x)
    assert y.dtype == np.float32 and bn.running_mean.dtype == np.float32
    sd = bn.state_dict()
    other = L.BatchNorm2d(5)
    other.load_state_dict(sd)
    assert int(other.num_batches_tracked) == 1
    np.testing.assert_array_equal(other.running_var, bn.running_var)
    del sd["num_batches_tracked"]            # old checkpoints: accepted
    other.load_state_dict(sd)
    bn.eval()
    again = pickle.loads(pickle.dumps(bn))
    np.testing.assert_array_equal(again(x), bn(x))
    assert again.dtype == np.float32 and not again.training


# ----------------------------------------------------------------------------- other layers


@needs_torch
@pytest.mark.parametrize("out", [1, (1, 1), (2, 3), (3, None), (5, 7), 4])
def test_adaptive_avg_pool_matches_torch(rng, out):
    x = rng.standard_normal((2, 3, 7, 9))
    g_shape = L.AdaptiveAvgPool2d(out).output_shape(x.shape)
    g = rng.standard_normal(g_shape)
    pool = L.AdaptiveAvgPool2d(out)
    y = pool(x)
    tx = tt(x, True)
    ty = torch.nn.AdaptiveAvgPool2d(out)(tx)
    ty.backward(tt(g))
    n = 7 * 9
    assert y.shape == tuple(ty.shape)
    ax = np.abs(x)
    assert_within(y, ty.detach().numpy(), 2 * (n + 3) * U * L.AdaptiveAvgPool2d(out).eval()(ax))
    gx = pool.backward(g)
    ag = np.abs(g)
    pool(x)
    assert_within(gx, tx.grad.numpy(), 2 * (n + 3) * U * pool.backward(ag))


def test_adaptive_avg_pool_finite_differences_and_unbatched(rng):
    fd_check(L.AdaptiveAvgPool2d((2, 3)), rng.standard_normal((2, 2, 5, 7)), 35, rng)
    pool = L.AdaptiveAvgPool2d(1)
    x = rng.standard_normal((3, 4, 4))
    np.testing.assert_allclose(pool(x)[:, 0, 0], x.mean(axis=(1, 2)), rtol=0, atol=32 * U)
    assert pool.output_shape((3, 4, 4)) == (3, 1, 1)


@needs_torch
def test_relu6_and_softmax_match_torch(rng):
    x = 8 * rng.standard_normal((3, 5, 2, 2))
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 6.0     # at the kinks, as PyTorch
    g = rng.standard_normal(x.shape)
    r6 = L.ReLU6()
    tx = tt(x, True)
    ty = torch.nn.ReLU6()(tx)
    ty.backward(tt(g))
    np.testing.assert_array_equal(r6(x), ty.detach().numpy())
    np.testing.assert_array_equal(r6.backward(g), tx.grad.numpy())
    assert np.isnan(L.ReLU6()(np.array([np.nan]))[0])
    for dim in (1, -1, 0):
        sm = L.Softmax(dim)
        tx = tt(x, True)
        ty = torch.nn.Softmax(dim)(tx)
        ty.backward(tt(g))
        y = sm(x)
        k = x.shape[dim]
        assert_within(y, ty.detach().numpy(), 2 * (k + 4) * U * y)
        gx = sm.backward(g)
        bound = y * (np.abs(g) + (np.abs(g) * y).sum(axis=dim, keepdims=True))
        assert_within(gx, tx.grad.numpy(), 2 * (k + 8) * U * bound)
    big = L.Softmax()(np.array([[1000.0, 1000.0]]))
    np.testing.assert_array_equal(big, [[0.5, 0.5]])


def test_softmax_finite_differences(rng):
    fd_check(L.Softmax(1), rng.standard_normal((3, 6)), 6, rng)


def test_dropout(rng):
    x = rng.standard_normal((4, 50, 10))
    d = L.Dropout(0.3, seed=7)
    y = d(x)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept] * (1 / np.float64(0.7)))
    assert 0.6 < kept.mean() < 0.8
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(d.backward(g), np.where(kept, g * (1 / np.float64(0.7)), 0.0))
    np.testing.assert_array_equal(L.Dropout(0.3, seed=7)(x), y)        # seeded
    assert not np.array_equal(L.Dropout(0.3, seed=8)(x), y)
    assert L.Dropout(0.3).eval()(x) is x
    np.testing.assert_array_equal(L.Dropout(1.0)(x), np.zeros_like(x))
    np.testing.assert_array_equal(L.Dropout(0.0)(x), x)
    x32 = x.astype(np.float32)
    assert L.Dropout(0.5, seed=0)(x32).dtype == np.float32
    assert L.Dropout().state_dict() == OrderedDict()


@needs_torch
def test_residual_and_concat_match_torch(rng):
    conv_a = L.Conv2d(3, 3, 3, padding=1, dtype=np.float64, seed=1)
    conv_b = L.Conv2d(3, 4, 1, dtype=np.float64, seed=2)
    conv_s = L.Conv2d(3, 3, 1, dtype=np.float64, seed=3)
    x = rng.standard_normal((2, 3, 6, 5))
    tconv = {}
    for name, c in (("a", conv_a), ("b", conv_b), ("s", conv_s)):
        t = torch.nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding).double()
        t.load_state_dict({"weight": tt(c.weight), "bias": tt(c.bias)})
        tconv[name] = t
    res = L.Residual(L.Sequential(conv_a, L.ReLU()), L.Sequential(conv_s), activation="relu")
    cat = L.Concat(res, conv_b)
    tx = tt(x, True)
    tres = torch.relu(torch.relu(tconv["a"](tx)) + tconv["s"](tx))
    ty = torch.cat([tres, tconv["b"](tx)], 1)
    g = rng.standard_normal(ty.shape)
    ty.backward(tt(g))
    y = cat(x)
    n = 3 * 9 + 3 + 4
    mag = 2 * n * U * (np.abs(x).max() + 1) * 4
    assert_within(y, ty.detach().numpy(), mag)
    gx = cat.backward(g)
    assert_within(gx, tx.grad.numpy(), 4 * n * U * (np.abs(g).max() + 1) * 8)
    for c, name in ((conv_a, "a"), (conv_b, "b"), (conv_s, "s")):
        assert_within(c._own_params()["weight"].grad, tconv[name].weight.grad.numpy(),
                      2 * (x.size + 8) * U * np.abs(x).max() * np.abs(g).sum())
    assert list(cat.state_dict()) == ["0.block.0.weight", "0.block.0.bias",
                                      "0.shortcut.0.weight", "0.shortcut.0.bias",
                                      "1.weight", "1.bias"]
    assert cat.output_shape((3, 6, 5)) == (7, 6, 5)
    assert cat.macs((2, 3, 6, 5)) == sum(c.macs((2, 3, 6, 5)) for c in (conv_a, conv_b, conv_s))


def test_residual_concat_finite_differences(rng):
    block = L.Sequential(L.Conv2d(2, 2, 3, padding=1, dtype=np.float64, seed=0), L.Tanh())
    fd_check(L.Residual(block, activation="tanh"), rng.standard_normal((1, 2, 4, 4)), 20, rng)
    cat = L.Concat(L.Conv2d(2, 1, 1, dtype=np.float64, seed=1),
                   L.Sequential(L.Conv2d(2, 2, 3, padding=1, dtype=np.float64, seed=2), L.Tanh()))
    fd_check(cat, rng.standard_normal((2, 2, 3, 3)), 20, rng)


def test_residual_eval_in_place_never_touches_the_input(rng):
    x = rng.standard_normal((1, 2, 3, 3))
    keep = x.copy()
    for block in (L.Dropout(0.5), L.Sequential(), L.Flatten()):
        res = L.Residual(block, activation="relu").eval() if not isinstance(block, L.Flatten) \
            else None
        if res is None:
            continue
        np.testing.assert_array_equal(res(x), np.maximum(2 * keep, 0))
        np.testing.assert_array_equal(x, keep)


# ----------------------------------------------------------------------------- fuse


def test_fuse_folds_batchnorm_and_activation(rng):
    net = L.Sequential(OrderedDict([
        ("conv", L.Conv2d(3, 4, 3, padding=1, dtype=np.float64, seed=0)),
        ("bn", L.BatchNorm2d(4, dtype=np.float64)), ("act", L.ReLU()),
        ("conv2", L.Conv2d(4, 2, 1, bias=False, dtype=np.float64, seed=1)),
        ("bn2", L.BatchNorm2d(2, track_running_stats=False, dtype=np.float64)),
        ("fc_in", L.Flatten()), ("fc", L.Dense(2 * 25, 3, dtype=np.float64, seed=2)),
        ("sig", L.Sigmoid())]))
    x = rng.standard_normal((4, 3, 5, 5))
    net(x)                                     # running statistics
    net.bn.weight = rng.uniform(0.5, 2, 4)
    net.eval()
    before = net.state_dict()
    fused = net.fuse()
    assert [n for n, _ in fused.named_children()] == ["conv", "conv2", "bn2", "fc_in", "fc"]
    assert fused.conv.activation is not None and fused.fc._spec[0] == "sigmoid"
    assert not fused.training and net.bn is not None
    for k, v in net.state_dict().items():      # the model itself is unchanged
        np.testing.assert_array_equal(v, before[k])
    y, yf = net(x), fused(x)
    assert_within(yf, y, 2 * 64 * U * (np.abs(y) + 1))
    assert list(fused.state_dict())[:2] == ["conv.weight", "conv.bias"]


# ----------------------------------------------------------------------------- models


def randomise_batchnorm(tmodel, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in tmodel.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5, generator=gen)
                mod.running_var.uniform_(0.5, 2.0, generator=gen)
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                mod.bias.uniform_(-0.5, 0.5, generator=gen)
                mod.num_batches_tracked.fill_(7)


def magnitude_twin(tmodel):
    """|net|: |weights|, batch normalisation as |scale| x + |shift| (running mean 0)."""
    mag = copy.deepcopy(tmodel)
    with torch.no_grad():
        for mod in mag.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                scale = mod.weight.abs() / torch.sqrt(mod.running_var + mod.eps)
                mod.bias.copy_(mod.bias.abs() + mod.running_mean.abs() * scale)
                mod.weight.abs_()
                mod.running_mean.zero_()
            elif isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                mod.weight.abs_()
                if mod.bias is not None:
                    mod.bias.abs_()
    return mag


def summed_reductions(model, spatial):
    """M: the reduction lengths of every conv and dense layer, a few roundings each for
    the normalisation, bias, residual add and folding, and the global pooling."""
    total = 0
    for _, p in model.named_parameters():
        if p.data.ndim == 4:
            total += int(np.prod(p.data.shape[1:])) + 12
        elif p.data.ndim == 2:
            total += p.data.shape[1] + 12
    return total + spatial


@needs_torch
@pytest.mark.parametrize("name, size", [("resnet18", 64), ("resnet50", 32), ("mobilenet_v2", 32)])
def test_model_matches_torch(name, size, rng):
    tmodel = bench.torchvision_twin(name, num_classes=10).double()
    randomise_batchnorm(tmodel, 1)
    tmodel.eval()
    ours = getattr(models, name)(num_classes=10, dtype=np.float64, seed=0)
    tsd = tmodel.state_dict()
    osd = ours.state_dict()
    assert list(osd) == list(tsd)
    assert all(osd[k].shape == tuple(tsd[k].shape) for k in tsd)
    ours.load_state_dict(tsd)                    # tensors
    ours.load_state_dict(ours.state_dict())      # arrays
    ours.eval()
    x = rng.standard_normal((2, 3, size, size))
    ref = tmodel(tt(x)).detach().numpy()
    bound = magnitude_twin(tmodel)(tt(np.abs(x))).detach().numpy()
    m = summed_reductions(ours, size * size)
    tol = 2 * m * U * bound
    y = ours(x)
    assert_within(y, ref, tol)
    fused = ours.fuse()
    assert_within(fused(x), ref, tol)
    assert not any(isinstance(mod, L.BatchNorm2d) for mod in _walk(fused))
    # float32: the same network, the bound in float32's u
    ours32 = getattr(models, name)(num_classes=10, seed=0)
    ours32.load_state_dict(tsd)
    y32 = ours32.fuse()(x.astype(np.float32))
    assert y32.dtype == np.float32
    assert_within(y32, ref, 2 * m * (np.finfo(np.float32).eps / 2) * bound * 1.01)


def _walk(module):
    yield module
    for _, child in module._children():
        yield from _walk(child)


def test_models_structure_summary_and_pickle(rng):
    net = models.resnet18(num_classes=5, seed=0)
    s = net.summary((3, 64, 64))
    assert s.totals["output_shape"] == (1, 5)
    assert s.totals["params"] == net.num_params == 11689512 - 512 * 995 - 995
    assert [r.layer for r in s.rows][:4] == ["Conv2d-1", "BatchNorm2d-2", "ReLU-3", "MaxPool2d-4"]
    assert models.resnet18().num_params == 11689512
    assert models.resnet50().num_params == 25557032
    assert models.mobilenet_v2().num_params == 3504872
    assert models.resnet18().macs((3, 224, 224)) == 1814073344
    assert net.fc is net[len(net) - 1] and net.layer1[0].conv1.kernel_size == (3, 3)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    net.eval()
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again(x), net(x))
    assert "layer4.1.bn2.running_var" in again.state_dict()
    # unbatched in, unbatched out
    assert net(x[0]).shape == (5,)


def test_models_train_and_backward_run(rng):
    net = models.mobilenet_v2(num_classes=3, seed=0)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = net(x)
    g = net.backward(np.ones_like(y))
    assert g.shape == x.shape and np.isfinite(g).all()
    assert all(p.grad is not None for p in net.parameters())
    assert int(net.features[0][1].num_batches_tracked) == 1


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    with pytest.raises(ValueError, match="eps"):
        L.BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(TypeError, match="num_features"):
        L.BatchNorm2d(3.0)
    with pytest.raises(TypeError, match="affine"):
        L.BatchNorm2d(3, affine=1)
    bn = L.BatchNorm2d(3)
    with pytest.raises(ValueError, match="channels"):
        bn(np.zeros((2, 4, 2, 2), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        bn(np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="shape"):
        bn.running_mean = np.zeros(4, np.float32)
    with pytest.raises(AttributeError):
        L.BatchNorm2d(3, affine=False).weight = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="p must be"):
        L.Dropout(1.5)
    with pytest.raises(ValueError, match="output_size"):
        L.AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match="output_size"):
        L.AdaptiveAvgPool2d((1, 2, 3))
    with pytest.raises(ValueError, match="dim"):
        L.Softmax(2)(np.zeros((2, 2)))
    res = L.Residual(L.Conv2d(2, 3, 1))
    with pytest.raises(ValueError, match="differ"):
        res(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="differ"):
        res.output_shape((2, 4, 4))
    with pytest.raises(TypeError, match="block"):
        L.Residual(lambda x: x)
    with pytest.raises(ValueError, match="agree"):
        L.Concat(L.Conv2d(2, 1, 1), L.Conv2d(2, 1, 3))(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="at least one"):
        L.Concat()
    with pytest.raises(ValueError, match="layer name"):
        L.Sequential(OrderedDict([("a.b", L.ReLU())]))
    net = models.resnet18(num_classes=4, seed=0)
    sd = net.state_dict()
    bad = dict(sd)
    del bad["layer1.0.bn1.running_var"]
    with pytest.raises(ValueError, match="missing.*layer1.0.bn1.running_var"):
        net.load_state_dict(bad)
    bad = dict(sd, extra=np.zeros(1))
    with pytest.raises(ValueError, match="unexpected.*extra"):
        net.load_state_dict(bad)
    bad = dict(sd)
    bad["bn1.running_mean"] = np.zeros(63)
    with pytest.raises(ValueError, match="bn1.running_mean"):
        net.load_state_dict(bad)
    with pytest.raises(ValueError, match="Sequential layer"):
        net.eval()(np.zeros((1, 4, 32, 32), np.float32))


def test_fused_relu6_equals_conv_then_relu6(rng):
    net = L.Sequential(L.Conv2d(3, 4, 3, padding=1, dtype=np.float64, seed=0), L.ReLU6())
    net[0].weight = 4 * net[0].weight           # outputs on both sides of 6
    x = 3 * rng.standard_normal((2, 3, 5, 5))
    fused = net.fuse()
    assert len(fused) == 1 and "activation=ReLU6()" in repr(fused)
    net.eval()
    y = net(x)
    assert (y == 6).any() and (y == 0).any()
    np.testing.assert_array_equal(fused(x), y)
    again = pickle.loads(pickle.dumps(fused))
    np.testing.assert_array_equal(again(x), y)
    # trained after fusing: the same gradients as the two layers
    net.train()
    fused.train()
    g = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(fused(x), net(x))
    np.testing.assert_array_equal(fused.backward(g), net.backward(g))
    np.testing.assert_array_equal(fused[0]._own_params()["weight"].grad,
                                  net[0]._own_params()["weight"].grad)
    mobile = models.mobilenet_v2(num_classes=3, seed=0).fuse()
    kinds = {type(m).__name__ for m in _walk(mobile)}
    assert "ReLU6" not in kinds and "BatchNorm2d" not in kinds and "_Conv2dReLU6" in kinds


def test_summary_depth():
    net = models.resnet18(num_classes=10, seed=0)
    flat = net.summary((3, 64, 64))
    deep = net.summary((3, 64, 64), depth=3)
    assert deep.totals == flat.totals
    labels = [r.layer for r in deep.rows]
    assert labels[:6] == ["Conv2d-1", "BatchNorm2d-2", "ReLU-3", "MaxPool2d-4", "Sequential-5",
                          "  0 (ResNetBlock)"]
    assert "    downsample (Sequential)" in labels
    row = deep.rows[labels.index("    conv2 (Conv2d)")]
    assert row.depth == 2 and row.output_shape == (1, 64, 16, 16)
    # the rows one level down add up to their container's
    for i, r in enumerate(deep.rows):
        if r.depth == 0 and i + 1 < len(deep.rows) and deep.rows[i + 1].depth == 1:
            kids = [k for k in deep.rows[i + 1:] if k.depth >= 1]
            kids = kids[:next((j for j, k in enumerate(deep.rows[i + 1:]) if k.depth == 0),
                              len(kids))]
            assert sum(k.params for k in kids if k.depth == 1) == r.params
    mobile = models.mobilenet_v2(seed=0).summary((3, 224, 224), depth=4)
    assert mobile.totals["macs"] == 300774272
    assert any(r.layer.strip() == "conv (Sequential)" for r in mobile.rows)
    with pytest.raises(ValueError, match="depth"):
        net.summary((3, 64, 64), depth=0)


def test_models_take_lists_and_unbatched_images():
    net = models.mobilenet_v2(num_classes=4, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32)
    y = net(x)
    assert y.shape == (4,) and y.dtype == np.float32
    np.testing.assert_array_equal(net(x.tolist()), y)        # a list: the weights' dtype
    np.testing.assert_array_equal(net(x[None])[0], y)
    assert net.input_ndim == 3 and net.features.input_ndim == 3


def magnitude_model(model):
    """|net| in convcore (as magnitude_twin): |weights|, BatchNorm2d as |scale| x + |shift|."""
    mag = copy.deepcopy(model)
    for mod in _walk(mag):
        if isinstance(mod, L.BatchNorm2d):
            scale = np.abs(mod.weight) / np.sqrt(mod.running_var + mod.eps)
            mod.bias = np.abs(mod.bias) + np.abs(mod.running_mean) * scale
            mod.weight = np.abs(mod.weight)
            mod.running_mean = np.zeros_like(mod.running_mean)
        elif isinstance(mod, (L.Conv2d, L.Dense)):
            mod.weight = np.abs(mod.weight)
            if mod.bias is not None:
                mod.bias = np.abs(mod.bias)
    return mag.eval()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_fused_model_equals_unfused(name, rng):
    """Without PyTorch too: fuse() changes only the rounding (bound as in the header)."""
    net = getattr(models, name)(num_classes=7, dtype=np.float64, seed=3)
    for mod in _walk(net):
        if isinstance(mod, L.BatchNorm2d):
            c = mod.num_features
            mod.weight, mod.bias = rng.uniform(0.5, 1.5, c), rng.uniform(-0.5, 0.5, c)
            mod.running_mean = rng.uniform(-0.5, 0.5, c)
            mod.running_var = rng.uniform(0.5, 2.0, c)
    net.eval()
    x = rng.standard_normal((2, 3, 32, 32))
    bound = magnitude_model(net)(np.abs(x))
    tol = 2 * summed_reductions(net, 32 * 32) * U * bound
    assert_within(net.fuse()(x), net(x), tol)


def test_state_dict_saved_as_numpy_arrays_loads(tmp_path, rng):
    """A torchvision state dict saved with numpy.savez (keys as they are) loads."""
    net = models.mobilenet_v2(num_classes=5, seed=1)
    other = models.mobilenet_v2(num_classes=5, seed=2)
    path = tmp_path / "weights.npz"
    np.savez(path, **net.state_dict())
    with np.load(path) as saved:
        other.load_state_dict(saved)
    for (k, a), (k2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(net.eval()(x), other.eval()(x))


def test_relu6_finite_differences_and_named_slices(rng):
    x = rng.uniform(0.5, 5.5, (2, 3, 4)) * rng.choice([-1.0, 1.0], (2, 3, 4))
    x[0, 0, 0] = 7.0                          # above the clip: zero gradient there
    fd_check(L.ReLU6(), x, 1, rng, h=1e-3)    # away from the kinks by more than 2h
    net = models.resnet18(num_classes=3, seed=0)
    head = net[-3:]
    assert [n for n, _ in head.named_children()] == ["avgpool", "flatten", "fc"]
    assert list(head.state_dict()) == ["fc.weight", "fc.bias"]
    assert [n for n, _ in L.Sequential(L.ReLU(), L.Tanh())[1:].named_children()] == ["0"]


def test_models_on_an_empty_batch():
    for make in (models.resnet18, models.mobilenet_v2):
        net = make(num_classes=3, seed=0).eval()
        x = np.zeros((0, 3, 32, 32), np.float32)
        assert net(x).shape == (0, 3) and net.fuse()(x).shape == (0, 3)
