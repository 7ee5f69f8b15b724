"""The sinusoidal positional encoding, added to embeddings of shape (batch, time, d_model)."""

import math

import torch
from torch import nn

from mytorch.registry import check_reference_available

check_reference_available(__name__)


class PositionalEncoding(nn.Module):
    """Add the sinusoidal position table to a batch of embeddings, then apply dropout.

    PE[pos, 2i] = sin(pos * w_i) and PE[pos, 2i + 1] = cos(pos * w_i), with the angular
    frequency w_i = 10000 ** (-2i / d_model). An odd d_model gets one more sine than cosine
    column.

    The table is the buffer `pe`, of shape (max_len, d_model). It is registered as
    non-persistent: it moves with `.to()` and `.double()` like any buffer, but stays out of
    the state_dict, because d_model and max_len determine it. A checkpoint therefore loads
    into a model built with a different max_len.
    """

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.max_len = max_len

        # The angles pos * w_i are computed in float64, because in float32 their rounding error
        # reaches 5e-4 by pos = 10000. The table is then stored in the default dtype.
        # F = ceil(d_model / 2) frequencies, one per sine column.
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)     # (max_len, 1)
        exponent = torch.arange(0, d_model, 2, dtype=torch.float64) / d_model  # 2i / d_model, (F,)
        frequency = torch.exp(-math.log(10000.0) * exponent)                   # w_i, (F,)
        angle = position * frequency                                           # (max_len, F)

        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(angle)
        pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
        self.register_buffer("pe", pe.to(torch.get_default_dtype()), persistent=False)

        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x):
        """Return dropout(x + PE[:T]) for embeddings x of shape (N, T, d_model).

        Raises ValueError if T is larger than max_len.
        """
        ### BEGIN SOLUTION
        T = x.size(1)
        if T > self.max_len:
            raise ValueError(
                f"PositionalEncoding: the sequence has length {T}, which exceeds "
                f"max_len={self.max_len}. Build the module with max_len >= {T} "
                f"or shorten the input."
            )
        x = x + self.pe[:T]  # (N, T, d_model) + (T, d_model), broadcast over the batch
        ### END SOLUTION
        return self.dropout(x)
