"""Reference of the graded components SGD and Adam (notebook 01)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from mytorch.nn.base import Optimizer, Parameter
from mytorch.registry import check_reference_available

check_reference_available(__name__)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (no dampening, no Nesterov).

    For each parameter p with gradient g, one ``step()`` computes

        b <- momentum * b + g        (b starts at zero)
        p <- p - lr * b

    With ``momentum=0`` this is plain gradient descent. ``step`` updates ``p.data`` in place.
    """

    def __init__(self, parameters: Iterable[Parameter], lr: float, momentum: float = 0.0):
        super().__init__(parameters, lr)
        if momentum < 0:
            raise ValueError(f"invalid momentum {momentum}: it must be >= 0")
        self.momentum = momentum
        ### BEGIN SOLUTION
        self.buffers = [np.zeros_like(p.data) for p in self.parameters]
        ### END SOLUTION

    def step(self) -> None:
        ### BEGIN SOLUTION
        for parameter, buffer in zip(self.parameters, self.buffers):
            buffer *= self.momentum
            buffer += parameter.grad
            parameter.data -= self.lr * buffer
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (no weight decay, no AMSGrad).

    For each parameter p with gradient g, step t = 1, 2, ... computes

        m <- beta1 * m + (1 - beta1) * g           (m and v start at zero)
        v <- beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    ``step`` updates ``p.data`` in place.
    """

    def __init__(self, parameters: Iterable[Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(parameters, lr)
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"invalid betas {betas}: each must be in [0, 1)")
        self.beta1, self.beta2 = betas
        self.eps = eps
        ### BEGIN SOLUTION
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.parameters]
        self.v = [np.zeros_like(p.data) for p in self.parameters]
        ### END SOLUTION

    def step(self) -> None:
        ### BEGIN SOLUTION
        self.t += 1
        correction1 = 1.0 - self.beta1 ** self.t
        correction2 = 1.0 - self.beta2 ** self.t
        for parameter, m, v in zip(self.parameters, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * parameter.grad
            v *= self.beta2
            v += (1.0 - self.beta2) * parameter.grad ** 2
            m_hat = m / correction1
            v_hat = v / correction2
            parameter.data -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, betas=({self.beta1}, {self.beta2}), eps={self.eps})"
