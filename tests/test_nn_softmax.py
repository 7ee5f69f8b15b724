"""Tests of the reference Softmax: probabilities, stability and the backward pass."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mytorch.nn.softmax import Softmax
from mytorch.testing import assert_close, check_gradient

finite_arrays = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(x=finite_arrays, data=st.data())
def test_softmax_is_a_distribution(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would warn
        y = Softmax(dim=dim).forward(x)

    assert np.isfinite(y).all()
    assert (y >= 0).all()
    assert_close(y.sum(axis=dim), np.ones(np.delete(x.shape, dim % x.ndim)), "sums along dim",
                 atol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_matches_torch(dim):
    rng = np.random.default_rng(dim + 10)
    x = rng.normal(size=(3, 4, 5)) * 3
    grad_output = rng.normal(size=x.shape)
    softmax = Softmax(dim=dim)

    y = softmax.forward(x)
    grad_x = softmax.backward(grad_output)
    tx = torch.tensor(x, requires_grad=True)
    expected = torch.softmax(tx, dim=dim)
    expected.backward(torch.from_numpy(grad_output))

    assert_close(y, expected, "output", atol=1e-12)
    assert_close(grad_x, tx.grad, "grad of x", atol=1e-12)


def test_softmax_extreme_logits():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    expected = torch.softmax(torch.from_numpy(x), dim=-1)

    assert_close(Softmax().forward(x), expected, "output", atol=1e-12)


def test_softmax_negative_infinity_is_zero():
    x = np.array([[0.0, -np.inf, 1.0]])
    y = Softmax().forward(x)

    assert y[0, 1] == 0.0
    assert_close(y, torch.softmax(torch.from_numpy(x), dim=-1), "output", atol=1e-12)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), seed=st.integers(0, 2**16),
       data=st.data())
def test_softmax_gradient_matches_finite_differences(shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    grad_output = rng.normal(size=shape)
    softmax = Softmax(dim=dim)

    def loss(values: np.ndarray) -> float:
        return float((softmax.forward(values) * grad_output).sum())

    softmax.forward(x)
    check_gradient(loss, x, softmax.backward(grad_output), "grad of x")
