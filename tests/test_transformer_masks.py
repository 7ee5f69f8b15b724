"""Tests of the reference pad_mask and causal_mask."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch.transformer.masks import causal_mask, pad_mask

torch.set_num_threads(1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=6), st.integers(0, 3))
def test_pad_mask_ragged_lengths(lengths, extra):
    T = max(lengths) + extra
    mask = pad_mask(torch.zeros(len(lengths), T, 4), lengths)

    expected = np.array([[t >= length for t in range(T)] for length in lengths], dtype=bool)
    expected = expected.reshape(len(lengths), T)
    assert mask.dtype == torch.bool
    assert np.array_equal(mask.numpy(), expected)


def test_pad_mask_accepts_tensor_lengths_and_token_ids():
    tokens = torch.zeros(3, 5, dtype=torch.long)
    mask = pad_mask(tokens, torch.tensor([5, 2, 0]))
    expected = torch.tensor([
        [False, False, False, False, False],
        [False, False, True, True, True],
        [True, True, True, True, True],
    ])
    assert torch.equal(mask, expected)


def test_masks_follow_device():
    padded = torch.zeros(2, 5, device="meta")
    assert pad_mask(padded, torch.tensor([3, 5])).device == padded.device
    assert causal_mask(4, device="meta").device.type == "meta"
    assert causal_mask(4).device.type == "cpu"


def test_pad_mask_rejects_wrong_count():
    with pytest.raises(ValueError, match=r"pad_mask: expected 2 lengths.*\(3,\)"):
        pad_mask(torch.zeros(2, 5), [1, 2, 3])


@pytest.mark.parametrize("T", [1, 2, 7])
def test_causal_mask_above_diagonal(T):
    mask = causal_mask(T)
    expected = np.array([[s > t for s in range(T)] for t in range(T)])
    assert mask.dtype == torch.bool
    assert np.array_equal(mask.numpy(), expected)
