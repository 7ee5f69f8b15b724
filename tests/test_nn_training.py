"""Tests of the ungraded training pieces of notebook 01: loss, task data and model."""

from __future__ import annotations

import numpy as np
import torch

from mytorch.nn.attention import MultiHeadAttention
from mytorch.nn.linear import Linear
from mytorch.nn.losses import CrossEntropyLoss
from mytorch.nn.models import TokenAttentionModel
from mytorch.nn.optim import Adam
from mytorch.nn.tasks import reversal_batch, sequence_accuracy
from mytorch.testing import assert_close, check_gradient


def test_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4)) * 5
    targets = rng.integers(0, 4, size=(2, 3))
    loss_fn = CrossEntropyLoss()

    loss = loss_fn.forward(logits, targets)
    grad = loss_fn.backward()
    tensor = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tensor.reshape(-1, 4), torch.from_numpy(targets).reshape(-1))
    expected.backward()

    assert_close(loss, expected, "loss", atol=1e-12)
    assert_close(grad, tensor.grad, "grad of logits", atol=1e-12)


def test_reversal_batch_targets_are_reversed():
    inputs, targets = reversal_batch(np.random.default_rng(1), batch_size=4, length=5)

    assert inputs.shape == targets.shape == (4, 5)
    assert np.array_equal(targets, inputs[:, ::-1])
    assert inputs.min() >= 0
    assert inputs.max() <= 9


def test_sequence_accuracy_counts_tokens_and_sequences():
    targets = np.array([[0, 1], [1, 1]])
    logits = np.eye(2)[np.array([[0, 1], [0, 1]])]

    assert sequence_accuracy(logits, targets) == (0.75, 0.5)


def make_model(seed: int) -> TokenAttentionModel:
    return TokenAttentionModel(10, 4, 8, 2, linear=Linear, attention=MultiHeadAttention,
                               rng=np.random.default_rng(seed))


def test_model_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    model = make_model(3)
    inputs, targets = reversal_batch(rng, batch_size=3, length=4)
    loss_fn = CrossEntropyLoss()

    def loss(_: np.ndarray) -> float:
        return loss_fn.forward(model.forward(inputs), targets)

    loss(None)
    model.backward(loss_fn.backward())
    for index, parameter in enumerate(model.parameters()):
        check_gradient(loss, parameter.data, parameter.grad, f"parameter {index}")


def test_model_learns_reversal():
    rng = np.random.default_rng(4)
    model = make_model(5)
    optimizer = Adam(model.parameters(), lr=0.01)
    loss_fn = CrossEntropyLoss()
    losses = []
    for _ in range(150):
        inputs, targets = reversal_batch(rng, batch_size=32, length=4)
        losses.append(loss_fn.forward(model.forward(inputs), targets))
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()

    inputs, targets = reversal_batch(rng, batch_size=200, length=4)
    token_accuracy, _ = sequence_accuracy(model.forward(inputs), targets)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert token_accuracy > 0.9
