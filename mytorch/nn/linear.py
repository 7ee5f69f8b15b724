"""Reference of the graded component Linear (notebook 01)."""

from __future__ import annotations

import numpy as np

from mytorch.nn.base import Module, Parameter
from mytorch.registry import check_reference_available

check_reference_available(__name__)


class Linear(Module):
    """Affine map y = x W^T + b over the last axis of inputs of shape (*, in_features).

    Parameters (float64, initialised like ``torch.nn.Linear``: uniform on [-k, k] with
    k = 1 / sqrt(in_features)):

    - ``self.weight``: a Parameter of shape (out_features, in_features)
    - ``self.bias``: a Parameter of shape (out_features,)

    ``rng`` is the ``numpy.random.Generator`` that draws the initial values. Pass one with a
    fixed seed to get the same weights every run.

    ``forward(x)`` returns an array of shape (*, out_features) and keeps ``x`` for backward.
    ``backward(grad_output)`` takes dL/dy of shape (*, out_features), returns dL/dx of
    shape (*, in_features) and adds dL/dW and dL/db to ``weight.grad`` and ``bias.grad``.
    """

    def __init__(self, in_features: int, out_features: int,
                 rng: np.random.Generator | None = None):
        self.in_features = in_features
        self.out_features = out_features
        rng = np.random.default_rng() if rng is None else rng
        ### BEGIN SOLUTION
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, size=(out_features, in_features)))
        self.bias = Parameter(rng.uniform(-bound, bound, size=out_features))
        ### END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        ### BEGIN SOLUTION
        self.x = np.asarray(x, dtype=np.float64)
        return self.x @ self.weight.data.T + self.bias.data
        ### END SOLUTION

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        ### BEGIN SOLUTION
        grad_output = np.asarray(grad_output, dtype=np.float64)
        # Every leading axis is a batch axis: flatten them to sum over all positions at once.
        flat_grad = grad_output.reshape(-1, self.out_features)
        flat_x = self.x.reshape(-1, self.in_features)
        self.weight.grad += flat_grad.T @ flat_x
        self.bias.grad += flat_grad.sum(axis=0)
        return grad_output @ self.weight.data
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"
