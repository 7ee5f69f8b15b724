"""The next-token loss of a language model."""

import torch

from mytorch.registry import check_reference_available

check_reference_available(__name__)


def lm_loss(logits, targets, pad_id=0, label_smoothing=0.0):
    """Return the mean next-token cross-entropy over the positions whose target is not pad_id.

    logits: (N, T, V), the model's output at each position.
    targets: (N, T) int, the token that follows each position; pad_id marks positions to ignore.
    label_smoothing: eps in [0, 1). The target distribution puts 1 - eps on the target and
        spreads eps uniformly over all V classes, as in torch.nn.functional.cross_entropy.

    Returns a scalar tensor (nats per token). Raises ValueError if every target is padding.
    """
    ### BEGIN SOLUTION
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # half-precision logits (under autocast) are scored in float32
    log_probs = torch.log_softmax(logits, dim=-1)                          # (N, T, V)
    keep = targets != pad_id                                               # (N, T)
    count = keep.sum()
    if count == 0:
        raise ValueError("lm_loss: every target is padding, so there is nothing to average")

    safe_targets = targets.masked_fill(~keep, 0)  # any valid index; these positions are dropped
    nll = -log_probs.gather(-1, safe_targets.unsqueeze(-1)).squeeze(-1)   # (N, T)
    if label_smoothing > 0:
        uniform = -log_probs.mean(dim=-1)                                  # (N, T)
        nll = (1 - label_smoothing) * nll + label_smoothing * uniform
    loss = nll.masked_fill(~keep, 0.0).sum() / count
    ### END SOLUTION
    return loss
