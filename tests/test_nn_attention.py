"""Tests of the reference attention layers against PyTorch, with masks and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mytorch.nn.attention import MultiHeadAttention, ScaledDotProductAttention
from mytorch.testing import assert_close, check_gradient

ATOL = 1e-12


def torch_attention(q, k, v, mask, grad_output):
    """Return PyTorch's output and (dQ, dK, dV).

    `mask` uses this course's polarity (True = may not attend), the opposite of PyTorch's function.
    """
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    allowed = None if mask is None else torch.from_numpy(~mask)
    output = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=allowed)
    output.backward(torch.from_numpy(grad_output))
    return output, tq.grad, tk.grad, tv.grad


def run_attention(q, k, v, mask, grad_output):
    attention = ScaledDotProductAttention()
    output = attention.forward(q, k, v, mask)
    return attention, output, attention.backward(grad_output)


@pytest.mark.parametrize("leading", [(2,), (2, 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(leading, masked):
    rng = np.random.default_rng(len(leading) + 2 * masked)
    q = rng.normal(size=(*leading, 4, 6))
    k = rng.normal(size=(*leading, 5, 6))
    v = rng.normal(size=(*leading, 5, 3))
    grad_output = rng.normal(size=(*leading, 4, 3))
    mask = rng.random((*leading, 4, 5)) < 0.4 if masked else None

    attention, output, grads = run_attention(q, k, v, mask, grad_output)
    expected_output, *expected_grads = torch_attention(q, k, v, mask, grad_output)

    assert_close(output, expected_output, "output", atol=ATOL)
    for name, grad, expected in zip(("dQ", "dK", "dV"), grads, expected_grads):
        assert_close(grad, expected, name, atol=ATOL)
    if masked:
        assert (attention.attention_weights[mask] == 0).all()


def test_attention_weights_are_softmax_of_scores():
    rng = np.random.default_rng(5)
    q, k, v = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 2, 4)), rng.normal(size=(1, 2, 1))
    attention = ScaledDotProductAttention()
    attention.forward(q, k, v)
    expected = torch.softmax(torch.from_numpy(q @ k.transpose(0, 2, 1) / 2.0), dim=-1)

    assert_close(attention.attention_weights, expected, "attention weights", atol=ATOL)


def test_masked_key_gets_no_weight_or_gradient():
    rng = np.random.default_rng(6)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2))
    mask = np.zeros((3, 5), dtype=bool)
    mask[:, 1] = True  # no query may attend to key 1

    attention, _, (_, grad_k, grad_v) = run_attention(q, k, v, mask, rng.normal(size=(2, 3, 2)))

    assert (attention.attention_weights[..., 1] == 0).all()
    assert (grad_k[:, 1] == 0).all()
    assert (grad_v[:, 1] == 0).all()


def test_fully_masked_row_gives_zeros():
    rng = np.random.default_rng(7)
    q, k, v = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 4, 4)), rng.normal(size=(1, 4, 2))
    grad_output = rng.normal(size=(1, 3, 2))
    mask = np.zeros((3, 4), dtype=bool)
    mask[2] = True

    attention, output, (grad_q, grad_k, grad_v) = run_attention(q, k, v, mask, grad_output)
    expected_output, expected_q, expected_k, expected_v = torch_attention(q, k, v, mask, grad_output)

    assert (attention.attention_weights[0, 2] == 0).all()
    assert (output[0, 2] == 0).all()
    assert (grad_q[0, 2] == 0).all()
    assert_close(output, expected_output, "output", atol=ATOL)
    assert_close(grad_k, expected_k, "dK", atol=ATOL)
    assert_close(grad_v, expected_v, "dV", atol=ATOL)


def test_attention_large_logits_stay_finite():
    rng = np.random.default_rng(8)
    q, k, v = 100 * rng.normal(size=(1, 3, 4)), 100 * rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 3, 2))
    grad_output = rng.normal(size=(1, 3, 2))

    _, output, grads = run_attention(q, k, v, None, grad_output)
    expected_output, *expected_grads = torch_attention(q, k, v, None, grad_output)

    assert_close(output, expected_output, "output", atol=1e-10)
    for name, grad, expected in zip(("dQ", "dK", "dV"), grads, expected_grads):
        assert_close(grad, expected, name, atol=1e-10)


def test_attention_gradient_matches_finite_differences():
    rng = np.random.default_rng(9)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 2, 4)), rng.normal(size=(2, 2, 3))
    grad_output = rng.normal(size=(2, 3, 3))
    mask = np.array([[False, True], [False, False], [True, True]])
    attention, _, grads = run_attention(q, k, v, mask, grad_output)

    def loss(_: np.ndarray) -> float:
        return float((attention.forward(q, k, v, mask) * grad_output).sum())

    for name, array, grad in zip(("dQ", "dK", "dV"), (q, k, v), grads):
        check_gradient(loss, array, grad, name)


def torch_copy(layer: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    """Return a float64 torch.nn.MultiheadAttention with the weights of `layer`."""
    projections = (layer.q_proj, layer.k_proj, layer.v_proj)
    module = torch.nn.MultiheadAttention(layer.embed_dim, layer.num_heads, batch_first=True,
                                         dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.from_numpy(np.concatenate([p.weight.data for p in projections])))
        module.in_proj_bias.copy_(torch.from_numpy(np.concatenate([p.bias.data for p in projections])))
        module.out_proj.weight.copy_(torch.from_numpy(layer.out_proj.weight.data))
        module.out_proj.bias.copy_(torch.from_numpy(layer.out_proj.bias.data))
    return module


@pytest.mark.parametrize("masks", ["none", "padding", "both"])
def test_multi_head_attention_matches_torch(masks):
    rng = np.random.default_rng(11)
    batch, target, source, embed, heads = 2, 3, 5, 8, 2
    layer = MultiHeadAttention(embed, heads, rng=rng)
    query = rng.normal(size=(batch, target, embed))
    key = rng.normal(size=(batch, source, embed))
    value = rng.normal(size=(batch, source, embed))
    grad_output = rng.normal(size=(batch, target, embed))
    padding = attn_mask = None
    if masks in ("padding", "both"):
        padding = np.zeros((batch, source), dtype=bool)
        padding[0, 3:] = True
    if masks == "both":
        attn_mask = np.triu(np.ones((target, source), dtype=bool), k=3)

    output = layer.forward(query, key, value, key_padding_mask=padding, attn_mask=attn_mask)
    grads = layer.backward(grad_output)

    module = torch_copy(layer)
    inputs = [torch.tensor(a, requires_grad=True) for a in (query, key, value)]
    expected, weights = module(
        *inputs,
        key_padding_mask=None if padding is None else torch.from_numpy(padding),
        attn_mask=None if attn_mask is None else torch.from_numpy(attn_mask),
        average_attn_weights=False,
    )
    expected.backward(torch.from_numpy(grad_output))

    assert_close(output, expected, "output", atol=ATOL)
    assert_close(layer.attention_weights, weights, "attention weights", atol=ATOL)
    for name, grad, tensor in zip(("d_query", "d_key", "d_value"), grads, inputs):
        assert_close(grad, tensor.grad, name, atol=ATOL)

    in_weight, in_bias = module.in_proj_weight.grad, module.in_proj_bias.grad
    for index, name in enumerate(("q_proj", "k_proj", "v_proj")):
        projection = getattr(layer, name)
        rows = slice(index * embed, (index + 1) * embed)
        assert_close(projection.weight.grad, in_weight[rows], f"{name}.weight.grad", atol=ATOL)
        assert_close(projection.bias.grad, in_bias[rows], f"{name}.bias.grad", atol=ATOL)
    assert_close(layer.out_proj.weight.grad, module.out_proj.weight.grad, "out_proj.weight.grad", atol=ATOL)
    assert_close(layer.out_proj.bias.grad, module.out_proj.bias.grad, "out_proj.bias.grad", atol=ATOL)


def test_multi_head_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 3)


def test_split_and_merge_heads_are_inverse():
    layer = MultiHeadAttention(6, 3, rng=np.random.default_rng(12))
    x = np.arange(2 * 4 * 6, dtype=np.float64).reshape(2, 4, 6)
    heads = layer.split_heads(x)

    assert heads.shape == (2, 3, 4, 2)
    assert np.array_equal(heads[1, 2, 3], x[1, 3, 4:6])
    assert np.array_equal(layer.merge_heads(heads), x)
