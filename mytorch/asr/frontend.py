"""Feature normalisation and SpecAugment for padded batches of log-mel features (N, T, n_mels)."""

import torch
from torch import nn
from torchaudio.transforms import FrequencyMasking, TimeMasking

from mytorch.registry import check_reference_available

check_reference_available(__name__)


def normalize_features(features, lengths, mean, std):
    """Normalise a padded batch with the training set's global statistics.

    features: (N, T, n_mels) float log-mel features, each utterance at the start of its row.
    lengths: (N,) int, the number of frames of each utterance before padding.
    mean, std: (n_mels,), the per-dimension mean and standard deviation of the training
        features (FeatureStats of the train split).

    Returns (features - mean) / std, of shape (N, T, n_mels), with every padding frame set to
    0.0, so that the padding does not depend on the statistics.
    """
    ### BEGIN SOLUTION
    N, T, _ = features.shape
    mean = torch.as_tensor(mean, dtype=features.dtype, device=features.device)
    std = torch.as_tensor(std, dtype=features.dtype, device=features.device)
    lengths = torch.as_tensor(lengths, device=features.device)

    valid = torch.arange(T, device=features.device) < lengths.unsqueeze(1)  # (N, T)
    normalized = (features - mean) / std * valid.unsqueeze(-1)                # (N, T, n_mels)
    ### END SOLUTION
    return normalized


class SpecAugment(nn.Module):
    """Mask random bands of mel channels and random spans of frames, in training mode only.

    Each utterance of a batch gets its own masks (torchaudio's ``iid_masks=True``):
    `num_freq_masks` bands of up to `freq_mask_param` consecutive mel channels, then
    `num_time_masks` spans of up to `time_mask_param` consecutive frames, each span at most
    `max_time_fraction` of the padded length. Masked values become 0.0, the mean of normalised
    features, so apply SpecAugment after `normalize_features`.

    In evaluation mode (``model.eval()``) the module returns its input unchanged, so that
    validation and test batches are never augmented.

    Attributes:
        freq_masks: nn.ModuleList of `num_freq_masks` torchaudio FrequencyMasking modules.
        time_masks: nn.ModuleList of `num_time_masks` torchaudio TimeMasking modules.
    """

    def __init__(self, freq_mask_param: int = 27, num_freq_masks: int = 2,
                 time_mask_param: int = 40, num_time_masks: int = 2,
                 max_time_fraction: float = 0.2):
        super().__init__()
        ### BEGIN SOLUTION
        self.freq_masks = nn.ModuleList(
            FrequencyMasking(freq_mask_param, iid_masks=True) for _ in range(num_freq_masks)
        )
        self.time_masks = nn.ModuleList(
            TimeMasking(time_mask_param, iid_masks=True, p=max_time_fraction)
            for _ in range(num_time_masks)
        )
        ### END SOLUTION

    def forward(self, features):
        """Return the masked copy of features (N, T, n_mels) in training mode, else features."""
        ### BEGIN SOLUTION
        masked = features
        if self.training:
            # torchaudio masks (batch, channel, freq, time); iid_masks needs the channel axis.
            x = features.transpose(1, 2).unsqueeze(1)  # (N, 1, n_mels, T)
            for mask in self.freq_masks:
                x = mask(x)
            for mask in self.time_masks:
                x = mask(x)
            masked = x.squeeze(1).transpose(1, 2)      # (N, T, n_mels)
        ### END SOLUTION
        return masked
