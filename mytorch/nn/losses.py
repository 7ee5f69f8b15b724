"""Cross-entropy loss with its backward pass, for the training task of notebook 01 (not graded)."""

from __future__ import annotations

import numpy as np


class CrossEntropyLoss:
    """Mean cross-entropy between logits (..., C) and integer class targets (...).

    ``forward`` returns the loss as a float and keeps what ``backward`` needs. ``backward()``
    returns dLoss/dlogits, of the same shape as the logits.
    """

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:
        logits = np.asarray(logits, dtype=np.float64)
        targets = np.asarray(targets)
        if logits.shape[:-1] != targets.shape:
            raise ValueError(
                f"logits of shape {logits.shape} need targets of shape {logits.shape[:-1]}, "
                f"got {targets.shape}"
            )
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        self.probs = np.exp(log_probs)
        self.targets = targets
        picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)
        return float(-picked.mean())

    def backward(self) -> np.ndarray:
        grad = self.probs.copy()
        np.put_along_axis(grad, self.targets[..., None],
                          np.take_along_axis(grad, self.targets[..., None], axis=-1) - 1.0, axis=-1)
        return grad / self.targets.size
