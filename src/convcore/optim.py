"""Optimizers with ``torch.optim``'s update formulas: ``SGD`` and ``Adam``.

Each updates ``Parameter.data`` in place (also in eval mode, where the arrays are
otherwise read-only), with NumPy ufuncs writing into the parameter, its state and one
scratch array per parameter (``out=``): no allocation and no Python loop per element, a
handful of calls per parameter and step. The operations and their order are PyTorch's
(``_single_tensor_sgd`` / ``_single_tensor_adam``), scalars rounded to the parameter's
dtype as PyTorch does, so the same model, data and hyper-parameters give the same
weights to float rounding. Parameters whose ``grad`` is None are skipped, as PyTorch does.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

from .layers import Parameter

__all__ = ["Adam", "Optimizer", "SGD"]


def _hyper(value: Any, name: str, low: float = 0.0, high: float = math.inf,
           high_open: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (low <= v and (v < high if high_open else v <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return v


class Optimizer:
    """Base class: the parameters, per-parameter state, ``zero_grad`` and ``step``.

    Subclasses implement ``_update(data, grad, state)``, writing the new values into
    ``data``; ``state`` is this parameter's dict (kept across steps, with a ``scratch``
    array of the parameter's shape)."""

    def __init__(self, params: Iterable[Parameter]) -> None:
        if isinstance(params, Parameter):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            "(model.parameters()), got one Parameter")
        self.params: List[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: params[{i}] must be a "
                                f"convcore.layers.Parameter, got {type(p).__name__}")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears twice in params")
        self.state: List[Dict[str, Any]] = [{} for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every parameter's ``grad`` to None (PyTorch's default), or to zeros."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for i, (p, state) in enumerate(zip(self.params, self.state)):
            grad = p.grad
            if grad is None:
                continue
            if grad.shape != p.shape or grad.dtype != p.dtype:
                raise ValueError(f"{type(self).__name__}.step: params[{i}] ({p!r}) has a grad "
                                 f"of shape {grad.shape} and dtype {grad.dtype}; expected "
                                 f"{p.shape} and {p.dtype}")
            if "scratch" not in state:
                state["scratch"] = np.empty_like(p.data)
            data = p._writable()
            try:
                self._update(data, grad, state)
            finally:
                p._set_readonly(p._readonly)
                p._changed()  # packed weights of an eval-mode layer are now stale

    def _update(self, data: np.ndarray, grad: np.ndarray, state: Dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def _decayed(data: np.ndarray, grad: np.ndarray, state: Dict[str, Any],
                 weight_decay: float) -> np.ndarray:
        """grad + weight_decay * data (grad.add(param, alpha=weight_decay)), in an array of
        the state's; grad itself without weight decay."""
        if weight_decay == 0:
            return grad
        out = state.get("decayed")
        if out is None:
            out = state["decayed"] = np.empty_like(data)
        np.multiply(data, weight_decay, out=out)
        return np.add(grad, out, out=out)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    The update, per parameter ``p``::

        g = grad + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov), else buf      (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params)
        self.lr = _hyper(lr, "lr")
        self.momentum = _hyper(momentum, "momentum")
        self.dampening = _hyper(dampening, "dampening", -math.inf)
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov momentum requires a momentum > 0 and zero dampening")

    def _update(self, data: np.ndarray, grad: np.ndarray, state: Dict[str, Any]) -> None:
        tmp = state["scratch"]
        g = self._decayed(data, grad, state, self.weight_decay)
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                np.multiply(buf, self.momentum, out=buf)
                if self.dampening == 0:
                    np.add(buf, g, out=buf)
                else:
                    np.add(buf, np.multiply(g, 1 - self.dampening, out=tmp), out=buf)
            if self.nesterov:
                g = np.add(g, np.multiply(buf, self.momentum, out=tmp), out=tmp)
            else:
                g = buf
        np.subtract(data, np.multiply(g, self.lr, out=tmp), out=data)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (weight decay added to the gradient, no amsgrad).

    The update, per parameter ``p``::

        g = grad + weight_decay * p;  t = t + 1
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = _hyper(lr, "lr")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of floats, got {betas!r}")
        self.betas = (_hyper(betas[0], "betas[0]", 0.0, 1.0, True),
                      _hyper(betas[1], "betas[1]", 0.0, 1.0, True))
        self.eps = _hyper(eps, "eps")
        self.weight_decay = _hyper(weight_decay, "weight_decay")

    def _update(self, data: np.ndarray, grad: np.ndarray, state: Dict[str, Any]) -> None:
        beta1, beta2 = self.betas
        tmp = state["scratch"]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        g = self._decayed(data, grad, state, self.weight_decay)
        # m.lerp_(g, w): m + w*(g - m) for w < 0.5, else g - (g - m)*(1 - w), as ATen's lerp
        w = 1 - beta1
        if w < 0.5:
            np.add(m, np.multiply(np.subtract(g, m, out=tmp), w, out=tmp), out=m)
        else:
            np.subtract(g, np.multiply(np.subtract(g, m, out=tmp), 1 - w, out=tmp), out=m)
        # v.mul_(beta2).addcmul_(g, g, value=1 - beta2): v + ((1 - beta2)*g)*g
        np.multiply(v, beta2, out=v)
        np.add(v, np.multiply(np.multiply(g, 1 - beta2, out=tmp), g, out=tmp), out=v)
        step_size = self.lr / (1 - beta1 ** step)
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        # denom = sqrt(v) / bias_correction2_sqrt + eps
        denom = np.sqrt(v, out=tmp)
        np.divide(denom, bias_correction2_sqrt, out=denom)
        np.add(denom, self.eps, out=denom)
        # p.addcdiv_(m, denom, value=-step_size): p + ((-step_size)*m)/denom
        np.add(data, np.divide(np.multiply(m, -step_size), denom, out=denom), out=data)
