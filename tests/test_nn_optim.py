"""Tests of the reference SGD and Adam against torch.optim, step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mytorch.nn.base import Parameter
from mytorch.nn.optim import SGD, Adam
from mytorch.testing import assert_close

STEPS = 6


def compare_with_torch(make_ours, make_theirs, seed: int) -> None:
    """Feed both optimizers the same gradients for STEPS steps; compare parameters after each."""
    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    ours = [Parameter(a) for a in initial]
    theirs = [torch.tensor(a, requires_grad=True) for a in initial]
    optimizer, reference = make_ours(ours), make_theirs(theirs)

    for step in range(STEPS):
        for mine, tensor in zip(ours, theirs):
            grad = rng.normal(size=mine.shape)
            mine.grad[...] = grad
            tensor.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        reference.step()
        for index, (mine, tensor) in enumerate(zip(ours, theirs)):
            assert_close(mine.data, tensor, f"parameter {index} after step {step + 1}", atol=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum):
    compare_with_torch(
        lambda params: SGD(params, lr=0.1, momentum=momentum),
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=momentum),
        seed=int(momentum * 10),
    )


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_adam_matches_torch(betas):
    compare_with_torch(
        lambda params: Adam(params, lr=0.01, betas=betas, eps=1e-8),
        lambda params: torch.optim.Adam(params, lr=0.01, betas=betas, eps=1e-8),
        seed=3,
    )


def test_optimizer_zero_grad():
    parameter = Parameter(np.ones(3))
    parameter.grad += 2.0
    Adam([parameter]).zero_grad()

    assert not parameter.grad.any()


def test_invalid_hyperparameters_rejected():
    parameter = Parameter(np.ones(3))
    with pytest.raises(ValueError, match="momentum"):
        SGD([parameter], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas"):
        Adam([parameter], betas=(0.9, 1.0))
