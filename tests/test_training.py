"""Training with convcore.layers: each layer's backward against central finite differences
of its own forward (float64, always) and against PyTorch autograd (float64, when torch is
installed); whole networks (LeNet-5, a ResNet basic block composed by hand, a
depthwise-separable block) against PyTorch; accumulation, modes, errors.

Tolerances come from the arithmetic. A sum of n products computed in any order is within
gamma_n * (the same sum of absolute values) of the exact one (Higham sec. 3.1), so each
bound is gamma of the number of summed terms times a "magnitude" computed from absolute
values (the layer's or network's computation on |x|, |w|, |G|, with every activation
replaced by its Lipschitz constant). A central difference of a function that is linear or
quadratic along the direction (every layer here but sigmoid and tanh, which get the
h**2/6 * |L'''| truncation term) is exact in exact arithmetic, so its error is the
rounding of the two forward values divided by 2h.
"""

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.testing import ACTIVATION_ULPS, reference_conv2d_abs

try:
    import torch
except ImportError:  # the PyTorch comparisons skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
F64 = np.float64
U = np.finfo(F64).eps / 2
H = 1e-6  # finite-difference step (directions have unit-normal entries)


def gamma(n):
    return n * U / (1 - n * U)


# ----------------------------------------------------------------------------- cases

# activation name -> (Lipschitz constant on |z| <= zmax, max |f'''| (None: the central
# difference is exact: f is piecewise linear or quadratic), whether f has kinks)
def act_props(spec, zmax):
    name, a, _ = spec
    return {
        "none": (1.0, None, False), "relu": (1.0, None, True),
        "leaky_relu": (max(1.0, abs(a)), None, True), "abs": (1.0, None, True),
        "square": (2 * zmax, None, False), "tanh": (1.0, 2.0, False),
        "sigmoid": (abs(a) / 4, abs(a) ** 3 / 8, False),
    }[name]


def conv(*args, **kw):
    return L.Conv2d(*args, dtype=F64, seed=3, **kw)


# (id, layer factory, input shape)
LAYER_CASES = [
    ("conv", lambda: conv(3, 4, 3), (2, 3, 7, 6)),
    ("conv-stride-pad-dil", lambda: conv(4, 6, (3, 2), stride=2, padding=(1, 2),
                                         dilation=(2, 1)), (2, 4, 9, 8)),
    ("conv-groups", lambda: conv(4, 6, 3, padding=1, groups=2), (2, 4, 6, 5)),
    ("conv-depthwise-same", lambda: conv(4, 4, 3, padding="same", groups=4, bias=False),
     (2, 4, 6, 7)),
    ("conv-reflect", lambda: conv(2, 3, 3, padding=1, padding_mode="reflect"), (1, 2, 5, 6)),
    ("conv-replicate", lambda: conv(2, 3, 3, padding=(2, 1), padding_mode="replicate"),
     (1, 2, 5, 6)),
    ("conv-circular", lambda: conv(2, 3, 3, padding=1, padding_mode="circular"), (2, 2, 5, 4)),
    ("conv-unbatched", lambda: conv(2, 3, 3, padding=1), (2, 5, 5)),
    ("conv-relu", lambda: conv(3, 4, 3, activation="relu"), (2, 3, 6, 6)),
    ("conv-abs", lambda: conv(3, 4, 3, activation="abs"), (2, 3, 6, 6)),
    ("conv-square", lambda: conv(3, 4, 3, activation=L.Square()), (2, 3, 6, 6)),
    ("conv-sigmoid-ab", lambda: conv(3, 4, 3, activation=L.Sigmoid(a=0.7, b=0.3)),
     (2, 3, 6, 6)),
    ("conv-tanh", lambda: conv(3, 4, 3, padding=1, activation="tanh"), (1, 3, 5, 5)),
    ("conv-leaky", lambda: conv(3, 4, 3, activation=L.LeakyReLU(0.2)), (2, 3, 6, 6)),
    ("dense", lambda: L.Dense(5, 3, dtype=F64, seed=3), (4, 5)),
    ("dense-3d-tanh", lambda: L.Dense(5, 3, activation="tanh", dtype=F64, seed=3), (2, 3, 5)),
    ("dense-nobias-relu", lambda: L.Dense(6, 4, bias=False, activation="relu", dtype=F64,
                                          seed=3), (5, 6)),
    ("lc", lambda: L.LocallyConnected2d(2, 3, (6, 5), 3, padding=1, dtype=F64, seed=3),
     (2, 2, 6, 5)),
    ("lc-stride-sigmoid", lambda: L.LocallyConnected2d(2, 3, 7, 3, stride=2,
                                                       activation="sigmoid", dtype=F64,
                                                       seed=3), (2, 2, 7, 7)),
    ("maxpool", lambda: L.MaxPool2d(2), (2, 3, 6, 6)),
    ("maxpool-pad-ceil-dil", lambda: L.MaxPool2d(3, 2, padding=1, dilation=(1, 2),
                                                 ceil_mode=True), (1, 2, 7, 9)),
    ("avgpool", lambda: L.AvgPool2d(2), (2, 3, 6, 6)),
    ("avgpool-pad-ceil-nocount", lambda: L.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                                     count_include_pad=False), (1, 2, 7, 8)),
    ("relu", lambda: L.ReLU(), (2, 3, 4)),
    ("leaky", lambda: L.LeakyReLU(0.1), (2, 3, 4)),
    ("abs", lambda: L.Abs(), (3, 5)),
    ("square", lambda: L.Square(), (3, 5)),
    ("tanh", lambda: L.Tanh(), (3, 5)),
    ("sigmoid-ab", lambda: L.Sigmoid(a=0.08, b=50.0), (3, 5)),
    ("flatten", lambda: L.Flatten(), (2, 3, 2, 2)),
]


def layer_input(case_id, shape, rng):
    if "pool" in case_id:
        # distinct values >= 1e-3 apart: no tie in a window, none within H of another
        return rng.permutation(np.arange(np.prod(shape), dtype=F64)).reshape(shape) * 1e-3
    if "sigmoid-ab" == case_id:
        return 50.0 + 20 * rng.standard_normal(shape)
    return rng.standard_normal(shape)


def pre_activation(layer, x, weight=None, bias=None):
    """The layer without its activation on x (pools and Flatten: x itself), with its
    weight and bias or the ones given (0: zeros of their shape)."""
    if not isinstance(layer, L._Weighted):
        return x
    w = layer.weight if weight is None else np.zeros_like(layer.weight) if np.isscalar(weight) \
        else weight
    b = layer.bias if bias is None or layer.bias is None else \
        np.zeros_like(layer.bias) if np.isscalar(bias) else bias
    if isinstance(layer, L.Conv2d):
        return convcore.conv2d(x, w, b, layer.stride, layer.padding, layer.dilation,
                               layer.groups, padding_mode=layer.padding_mode)
    if isinstance(layer, L.Dense):
        return convcore.linear(x, w, b)
    return convcore.locally_connected2d(x, w, b, layer.stride, layer.padding, layer.dilation)


def magnitude(layer, x):
    """(elementwise bound on |pre-activation| scale of the rounding error, summed terms)."""
    ax = np.abs(x)
    if isinstance(layer, L.Conv2d):
        n = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        return reference_conv2d_abs(x, layer.weight, layer.bias, layer.stride, layer.padding,
                                    layer.dilation, layer.groups, layer.padding_mode), n + 1
    if isinstance(layer, (L.Dense, L.LocallyConnected2d)):
        b = None if layer.bias is None else np.abs(layer.bias)
        w = np.abs(layer.weight)
        if isinstance(layer, L.Dense):
            return convcore.linear(ax, w, b), layer.in_features + 1
        n = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
        return convcore.locally_connected2d(ax, w, b, layer.stride, layer.padding,
                                            layer.dilation), n + 1
    if isinstance(layer, L.AvgPool2d):
        k = layer._k[0] * layer._k[1]
        return convcore.avg_pool2d(ax, layer._k, layer._s, layer._p, layer.ceil_mode,
                                   layer.count_include_pad), k + 1
    return None, 0  # max pool, flatten, activation layers: no sum


def spec_of(layer):
    if isinstance(layer, L._Activation):
        return layer.activation_spec
    return getattr(layer, "_spec", ("none", 1.0, 0.0))


def loss(layer, x, G):
    return float(np.dot(layer(x).ravel(), G.ravel()))


# ----------------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_gradients_match_finite_differences(case):
    """<grad, v> from backward against (L(theta + Hv) - L(theta - Hv)) / 2H, L = sum(G*y),
    for the input and each parameter, with the bound of the module docstring."""
    case_id, make, shape = case
    rng = np.random.default_rng(11)
    layer = make()
    x = layer_input(case_id, shape, rng)
    y = layer(x)
    G = rng.standard_normal(y.shape)
    gx = layer.backward(G)
    assert gx.shape == x.shape and gx.dtype == F64
    grads = {name: p.grad.copy() for name, p in layer.named_parameters()}

    z = pre_activation(layer, x)
    zmag, n = magnitude(layer, x)
    lip, f3, kinks = act_props(spec_of(layer), float(np.max(np.abs(z))) + 1.0)

    def check(direction, analytic, perturbed_loss, dz):
        """dz: the pre-activation's derivative along the direction (z is linear in it)."""
        fd = (perturbed_loss(H) - perturbed_loss(-H)) / (2 * H)
        dy_err = (lip * gamma(n) * zmag if zmag is not None else 0.0) \
            + (ACTIVATION_ULPS * U + gamma(G.size)) * np.abs(y)
        bound = float(np.sum(np.abs(G) * dy_err)) / H
        if f3 is not None:
            bound += H ** 2 / 6 * f3 * float(np.sum(np.abs(G) * np.abs(dz) ** 3))
        if kinks:  # the central difference is exact only if no kink lies within H
            assert np.min(np.abs(z)) > H * np.max(np.abs(dz))
        bound += 4 * U * abs(analytic)  # the dot product <grad, v>
        assert abs(fd - analytic) <= bound, (direction, fd, analytic, bound)

    v = rng.standard_normal(x.shape)
    check("input", float(np.sum(gx * v)), lambda h: loss(layer, x + h * v, G),
          pre_activation(layer, v, bias=0))
    for name, p in layer.named_parameters():
        v = rng.standard_normal(p.shape)
        base = p.data.copy()

        def at(h, name=name, base=base, v=v):
            setattr(layer, name, base + h * v)
            try:
                return loss(layer, x, G)
            finally:
                setattr(layer, name, base)

        dz = pre_activation(layer, x, weight=v, bias=0) if name == "weight" else \
            pre_activation(layer, np.zeros_like(x), weight=0, bias=v)
        check(name, float(np.sum(grads[name] * v)), at, dz)


# ----------------------------------------------------------------------------- against PyTorch


def torch_module(layer):
    """The torch.nn module computing a convcore layer without its activation (weights
    copied), None for an activation layer."""
    tnn = torch.nn
    if isinstance(layer, L.Conv2d):
        t = tnn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                       layer.padding, layer.dilation, layer.groups, layer.bias is not None,
                       layer.padding_mode, dtype=torch.float64)
    elif isinstance(layer, L.Dense):
        t = tnn.Linear(layer.in_features, layer.out_features, layer.bias is not None,
                       dtype=torch.float64)
    elif isinstance(layer, L.MaxPool2d):
        return tnn.MaxPool2d(layer._k, layer._s, layer._p, layer._d, ceil_mode=layer.ceil_mode)
    elif isinstance(layer, L.AvgPool2d):
        return tnn.AvgPool2d(layer._k, layer._s, layer._p, layer.ceil_mode,
                             layer.count_include_pad)
    elif isinstance(layer, L.Flatten):
        return tnn.Flatten()
    else:
        return None
    return t


def torch_activation(spec):
    name, a, b = spec
    return {"none": None, "relu": torch.relu, "tanh": torch.tanh, "abs": torch.abs,
            "square": torch.square, "sigmoid": lambda z: torch.sigmoid(a * (z - b)),
            "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, a)}[name]


def torch_backward(module, act, x, G):
    """(dL/dx, {name: dL/dparam}) by autograd for L = sum(G * act(module(x)))."""
    xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    z = module(xt) if module is not None else xt
    (act(z) if act is not None else z).backward(torch.from_numpy(np.array(G)))
    params = {} if module is None else {k: p.grad.numpy() for k, p in module.named_parameters()}
    return xt.grad.numpy(), params


@needs_torch
@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_gradients_match_pytorch(case):
    """Both compute the same sums in different orders: every entry within 2 gamma_N of
    the same backward on magnitudes (|x|, |w|, |G| * Lipschitz(activation)), N the longest
    sum, plus what the rounding of the pre-activation does to f'(z)."""
    case_id, make, shape = case
    layer = make()
    if isinstance(layer, L.LocallyConnected2d):
        pytest.skip("no torch.nn equivalent: finite differences test it")
    rng = np.random.default_rng(12)
    x = layer_input(case_id, shape, rng)
    y = layer(x)
    G = rng.standard_normal(y.shape)
    gx = layer.backward(G)
    got = {"input": gx, **{k: p.grad for k, p in layer.named_parameters()}}

    module = torch_module(layer)
    if module is not None and isinstance(layer, L._Weighted):
        module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    act = torch_activation(spec_of(layer))
    want_x, want_p = torch_backward(module, act, x, G)
    want = {"input": want_x, **want_p}

    z = pre_activation(layer, x)
    zmag, n_fwd = magnitude(layer, x)
    lip, _, _ = act_props(spec_of(layer), float(np.max(np.abs(z))) + 1.0)
    f2 = {"square": 2.0, "tanh": 1.0, "sigmoid": spec_of(layer)[1] ** 2 / 4}.get(
        spec_of(layer)[0], 0.0)
    if isinstance(layer, L._Weighted):
        # N: the forward sum + the weight gradient's (batch x pixels) + the input
        # gradient's (at most K*R*S, or out_features)
        n_out = int(np.prod(y.shape)) // layer.weight.shape[0] if isinstance(layer, L.Conv2d) \
            else int(np.prod(y.shape[:-1]))
        n = n_fwd + n_out + int(np.prod(layer.weight.shape)) // layer.weight.shape[1]
        # upstream magnitude: 2 gamma_N |G| lip, plus |G| |f''| times the error of z
        up = 2 * gamma(n + ACTIVATION_ULPS) * np.abs(G) * lip \
            + 2 * np.abs(G) * f2 * gamma(n_fwd) * zmag
        absmod = torch_module(layer)
        absmod.load_state_dict({k: torch.from_numpy(np.abs(v))
                                for k, v in layer.state_dict().items()})
        bx, bp = torch_backward(absmod, None, np.abs(x), up)
        bound = {"input": bx, **bp}
    elif isinstance(layer, L._Pool2d):
        bx, _ = torch_backward(module, None, x, np.abs(G))
        bound = {"input": 2 * gamma(layer._k[0] * layer._k[1] + 1) * bx}
    else:  # an activation or Flatten: one product per element
        bound = {"input": 2 * ACTIVATION_ULPS * U * np.abs(G).reshape(x.shape) * lip}
    for name in want:
        err = np.abs(got[name] - want[name])
        assert got[name].shape == want[name].shape
        assert np.all(err <= bound[name] + ACTIVATION_ULPS * U * np.abs(want[name])), \
            (name, float(np.max(err - bound[name])))
