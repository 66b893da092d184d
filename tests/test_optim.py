"""convcore.optim against torch.optim: the same parameters fed the same gradients follow the
same trajectory over several steps (SGD with every option, Adam), float64 and float32;
bad hyper-parameters.

Bound: each step is at most 16 roundings of quantities no larger than the largest
parameter or update seen, so after t steps the trajectories differ by at most
16 t u (max|p| + max|update|) (no feedback: the gradients are given, not computed from p).
"""

import numpy as np
import pytest

from convcore import layers as L
from convcore.optim import SGD, Adam

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
SHAPES = [(3, 4), (5,)]
STEPS = 6

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.2, weight_decay=0.1),
    dict(lr=0.1, momentum=0.8, dampening=0.1, weight_decay=0.05),
]
ADAM_CASES = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    dict(lr=0.02, betas=(0.3, 0.9)),  # 1 - beta1 >= 0.5: lerp's other branch
]


def trajectories(cls, tcls, kwargs, dtype):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    params = [L.Parameter(p.copy()) for p in start]
    tparams = [torch.from_numpy(p.copy()).requires_grad_(True) for p in start]
    opt, topt = cls(params, **kwargs), tcls(tparams, **kwargs)
    ours, theirs = [], []
    for step, gs in enumerate(grads):
        for i, (p, tp, g) in enumerate(zip(params, tparams, gs)):
            skip = step == 2 and i == 1  # a parameter without a gradient is left alone
            p.grad = None if skip else g.copy()
            tp.grad = None if skip else torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        ours.append([p.data.copy() for p in params])
        theirs.append([tp.detach().numpy().copy() for tp in tparams])
    return start, ours, theirs


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,kwargs", [(SGD, k) for k in SGD_CASES] + [(Adam, k) for k in ADAM_CASES],
                         ids=[f"SGD{k}" for k in SGD_CASES] + [f"Adam{k}" for k in ADAM_CASES])
def test_trajectory_matches_torch_optim(cls, kwargs, dtype):
    tcls = {SGD: torch.optim.SGD, Adam: torch.optim.Adam}[cls]
    start, ours, theirs = trajectories(cls, tcls, kwargs, dtype)
    u = np.finfo(dtype).eps / 2
    for i in range(len(SHAPES)):
        path = [start[i]] + [t[i] for t in theirs]
        scale = max(np.abs(p).max() for p in path) + max(
            np.abs(b - a).max() for a, b in zip(path, path[1:]))
        for t, (o, w) in enumerate(zip(ours, theirs), start=1):
            assert o[i].dtype == dtype
            np.testing.assert_allclose(o[i], w[i], rtol=0, atol=16 * t * u * scale)


def test_sgd_moves_against_the_gradient_in_place():
    p = L.Parameter(np.ones(4))
    data = p.data
    p.grad = np.arange(4.0)
    SGD([p], lr=0.5).step()
    assert p.data is data  # in place
    np.testing.assert_array_equal(p.data, 1 - 0.5 * np.arange(4.0))


def test_zero_grad_and_bad_arguments():
    layer = L.Dense(3, 2)
    opt = Adam(layer.parameters())
    for p in layer.parameters():
        p.grad = np.ones_like(p.data)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in layer.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in layer.parameters())
    ps = layer.parameters()
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\] must be a convcore.layers.Parameter"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Parameters"):
        SGD(ps[0], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([ps[0], ps[0]], lr=0.1)
    with pytest.raises(ValueError, match="lr must be in"):
        SGD(ps, lr=-1)
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD(ps, lr="0.1")
    with pytest.raises(ValueError, match="nesterov"):
        SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in"):
        Adam(ps, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas must be a pair"):
        Adam(ps, betas=0.9)
    with pytest.raises(ValueError, match="eps must be in"):
        Adam(ps, eps=-1e-8)
    ps[0].grad = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"grad of shape \(3, 3\)"):
        SGD(ps, lr=0.1).step()
