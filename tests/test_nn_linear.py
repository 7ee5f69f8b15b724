"""Tests of the reference Linear against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch.nn.linear import Linear
from mytorch.testing import assert_close, check_gradient

ATOL = 1e-12


def torch_linear(layer: Linear, x: np.ndarray, grad_output: np.ndarray):
    """Return PyTorch's output and gradients of x, W and b for the same weights."""
    tx = torch.tensor(x, requires_grad=True)
    weight = torch.tensor(layer.weight.data, requires_grad=True)
    bias = torch.tensor(layer.bias.data, requires_grad=True)
    output = torch.nn.functional.linear(tx, weight, bias)
    output.backward(torch.from_numpy(grad_output))
    return output, tx.grad, weight.grad, bias.grad


def test_linear_matches_torch_with_leading_axes():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng)
    x = rng.normal(size=(2, 5, 4))
    grad_output = rng.normal(size=(2, 5, 3))

    output = layer.forward(x)
    grad_x = layer.backward(grad_output)
    expected, expected_x, expected_weight, expected_bias = torch_linear(layer, x, grad_output)

    assert_close(output, expected, "output", atol=ATOL)
    assert_close(grad_x, expected_x, "grad of x", atol=ATOL)
    assert_close(layer.weight.grad, expected_weight, "grad of weight", atol=ATOL)
    assert_close(layer.bias.grad, expected_bias, "grad of bias", atol=ATOL)


def test_linear_single_vector():
    rng = np.random.default_rng(1)
    layer = Linear(3, 2, rng=rng)
    x = rng.normal(size=3)
    grad_output = rng.normal(size=2)

    output = layer.forward(x)
    grad_x = layer.backward(grad_output)
    expected, expected_x, expected_weight, _ = torch_linear(layer, x, grad_output)

    assert_close(output, expected, "output", atol=ATOL)
    assert_close(grad_x, expected_x, "grad of x", atol=ATOL)
    assert_close(layer.weight.grad, expected_weight, "grad of weight", atol=ATOL)


def test_linear_initialisation_bounds():
    layer = Linear(16, 32, rng=np.random.default_rng(2))
    bound = 1 / np.sqrt(16)

    assert layer.weight.data.shape == (32, 16)
    assert layer.bias.data.shape == (32,)
    assert layer.weight.data.dtype == np.float64
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.bias.data).max() <= bound
    # The seed is fixed, and for any seed all 512 draws stay within 0.8 * bound with probability 0.8**512.
    assert np.abs(layer.weight.data).max() > 0.8 * bound


def test_linear_same_seed_same_weights():
    first = Linear(5, 4, rng=np.random.default_rng(3))
    second = Linear(5, 4, rng=np.random.default_rng(3))

    assert np.array_equal(first.weight.data, second.weight.data)
    assert np.array_equal(first.bias.data, second.bias.data)


def test_linear_backward_accumulates():
    rng = np.random.default_rng(4)
    layer = Linear(3, 2, rng=rng)
    x = rng.normal(size=(4, 3))
    grad_output = rng.normal(size=(4, 2))

    layer.forward(x)
    layer.backward(grad_output)
    once = layer.weight.grad.copy()
    layer.backward(grad_output)

    assert_close(layer.weight.grad, 2 * once, "grad of weight after two backward calls", atol=ATOL)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    leading=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    in_features=st.integers(1, 4),
    out_features=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_linear_gradients_match_finite_differences(leading, in_features, out_features, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(in_features, out_features, rng=rng)
    x = rng.normal(size=(*leading, in_features))
    grad_output = rng.normal(size=(*leading, out_features))

    # check_gradient perturbs x, W or b in place, and the closure reads them from there.
    def loss(_: np.ndarray) -> float:
        return float((layer.forward(x) * grad_output).sum())

    layer.forward(x)
    grad_x = layer.backward(grad_output)
    check_gradient(loss, x, grad_x, "grad of x")
    check_gradient(loss, layer.weight.data, layer.weight.grad, "grad of weight")
    check_gradient(loss, layer.bias.data, layer.bias.grad, "grad of bias")
