"""The digit-reversal task that notebook 01 trains on (not graded)."""

from __future__ import annotations

import numpy as np


def reversal_batch(rng: np.random.Generator, batch_size: int, length: int,
                   vocab_size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Draw `batch_size` random digit sequences and their reversals.

    Returns ``(inputs, targets)``, two int64 arrays of shape (batch_size, length) with
    ``targets[n] == inputs[n, ::-1]``.
    """
    inputs = rng.integers(0, vocab_size, size=(batch_size, length))
    return inputs, inputs[:, ::-1].copy()


def sequence_accuracy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Return the fraction of correct tokens and of sequences with every token correct."""
    correct = logits.argmax(axis=-1) == targets
    return float(correct.mean()), float(correct.all(axis=-1).mean())
