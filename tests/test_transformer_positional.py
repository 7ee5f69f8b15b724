"""Tests of the reference PositionalEncoding against the sinusoidal formula."""

import math

import numpy as np
import pytest
import torch

from mytorch.testing import assert_close
from mytorch.transformer.positional import PositionalEncoding

torch.set_num_threads(1)


def formula_table(max_len: int, d_model: int) -> np.ndarray:
    """Return the sinusoidal table, written out entry by entry in float64."""
    table = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for column in range(d_model):
            i = column // 2
            angle = pos / 10000 ** (2 * i / d_model)
            table[pos, column] = math.sin(angle) if column % 2 == 0 else math.cos(angle)
    return table


@pytest.mark.parametrize("d_model", [2, 8, 33])
def test_table_matches_formula(d_model):
    encoding = PositionalEncoding(d_model, max_len=64)
    table = encoding(torch.zeros(1, 64, d_model))[0]
    assert_close(table, formula_table(64, d_model), f"table, d_model={d_model}", atol=1e-6)


def test_table_precise_at_large_positions():
    encoding = PositionalEncoding(16, max_len=10000).double()
    expected = formula_table(10000, 16)[-5:]
    assert_close(encoding.pe[-5:], expected, "last rows of the table", atol=1e-6)


def test_forward_adds_table_to_each_sequence():
    encoding = PositionalEncoding(8, max_len=10)
    x = torch.randn(3, 6, 8)
    expected = x.numpy() + formula_table(10, 8)[:6]
    assert_close(encoding(x), expected, "PositionalEncoding(x)", atol=1e-6)


def test_table_is_nonpersistent_buffer():
    encoding = PositionalEncoding(8, max_len=10)
    assert list(encoding.parameters()) == []
    assert dict(encoding.named_buffers()).keys() == {"pe"}
    assert encoding.pe.shape == (10, 8)
    assert encoding.state_dict() == {}
    assert encoding.double().pe.dtype == torch.float64


def test_too_long_sequence_raises():
    encoding = PositionalEncoding(8, max_len=10)
    with pytest.raises(ValueError, match=r"PositionalEncoding.*length 11.*max_len=10"):
        encoding(torch.zeros(2, 11, 8))


def test_dropout_only_in_training():
    encoding = PositionalEncoding(8, max_len=10, dropout=0.5)
    x = torch.randn(2, 10, 8)
    expected = x + encoding.pe

    encoding.eval()
    assert torch.equal(encoding(x), expected)

    encoding.train()
    out = encoding(x)
    assert (out == 0).any()
    kept = out != 0
    assert torch.allclose(out[kept], 2 * expected[kept])
