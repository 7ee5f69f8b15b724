"""Reference of the graded component Softmax (notebook 01)."""

from __future__ import annotations

import numpy as np

from mytorch.nn.base import Module
from mytorch.registry import check_reference_available

check_reference_available(__name__)


class Softmax(Module):
    """Softmax along axis ``dim``: y_i = exp(x_i) / sum_j exp(x_j).

    ``forward(x)`` must not overflow: inputs of +-1e4 give finite probabilities. Entries of
    -inf get probability exactly 0, as long as the slice along ``dim`` has a finite entry.
    It keeps the output for backward.

    ``backward(grad_output)`` takes dL/dy (same shape as x) and returns dL/dx through the
    Jacobian of the softmax along ``dim``. Softmax has no parameters.
    """

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        ### BEGIN SOLUTION
        x = np.asarray(x, dtype=np.float64)
        # Subtracting a constant per slice leaves softmax unchanged. Subtracting the maximum
        # makes every exponent <= 0, so exp cannot overflow.
        shifted = x - x.max(axis=self.dim, keepdims=True)
        exps = np.exp(shifted)
        self.y = exps / exps.sum(axis=self.dim, keepdims=True)
        return self.y
        ### END SOLUTION

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        ### BEGIN SOLUTION
        grad_output = np.asarray(grad_output, dtype=np.float64)
        # dL/dx_i = y_i (dL/dy_i - sum_j dL/dy_j y_j): the Jacobian diag(y) - y y^T applied
        # to the upstream gradient without building it.
        inner = (grad_output * self.y).sum(axis=self.dim, keepdims=True)
        return self.y * (grad_output - inner)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Softmax(dim={self.dim})"
