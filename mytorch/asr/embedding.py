"""Convolutional subsampling: log-mel frames (N, T, n_mels) -> embeddings (N, T', d_model), T' ~ T / 4."""

import torch
from torch import nn

from mytorch.registry import check_reference_available

check_reference_available(__name__)


class SpeechEmbedding(nn.Module):
    """Two stride-2 convolutions over (time, mel) and a linear projection to d_model.

    Both convolutions have a 3x3 kernel, stride 2 and no padding, each followed by ReLU, so a
    sequence of L frames becomes L1 = (L - 1) // 2, then L2 = (L1 - 1) // 2 positions. Without
    padding, every output position within an utterance's L2 is computed from that utterance's
    frames only, never from the padding after it. The mel axis shrinks the same way, and the
    channels of each output position are flattened and projected to d_model.

    Attributes:
        conv1: nn.Conv2d(1, channels, kernel_size=3, stride=2).
        conv2: nn.Conv2d(channels, channels, kernel_size=3, stride=2).
        linear: nn.Linear(channels * reduced_mels, d_model), where
            reduced_mels = ((n_mels - 1) // 2 - 1) // 2.
    """

    def __init__(self, n_mels: int, d_model: int, channels: int = 32):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2)
        reduced_mels = ((n_mels - 1) // 2 - 1) // 2
        self.linear = nn.Linear(channels * reduced_mels, d_model)
        ### END SOLUTION

    @staticmethod
    def output_lengths(lengths):
        """Return the number of output positions of each input length: ((L - 1) // 2 - 1) // 2.

        lengths: (N,) int tensor. Returns an (N,) int64 tensor on the same device.
        """
        ### BEGIN SOLUTION
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        reduced = ((lengths - 1) // 2 - 1) // 2
        ### END SOLUTION
        return reduced

    def forward(self, features, lengths):
        """Embed a padded batch of features (N, T, n_mels) with frame counts lengths (N,).

        Returns (embeddings (N, T', d_model), output lengths (N,)), where
        T' = ((T - 1) // 2 - 1) // 2 and the output lengths are output_lengths(lengths).
        """
        ### BEGIN SOLUTION
        x = features.unsqueeze(1)           # (N, 1, T, n_mels)
        x = torch.relu(self.conv1(x))       # (N, C, T1, M1)
        x = torch.relu(self.conv2(x))       # (N, C, T', M')
        N, C, T, M = x.shape
        x = x.transpose(1, 2).reshape(N, T, C * M)  # channels of each position side by side
        embeddings = self.linear(x)                 # (N, T', d_model)
        output_lengths = self.output_lengths(lengths)
        ### END SOLUTION
        return embeddings, output_lengths
