"""The joint CTC-attention loss of the encoder-decoder speech recogniser."""

import torch
import torch.nn.functional as F

from mytorch.registry import check_reference_available

check_reference_available(__name__)

from mytorch.data.tokenizers import BLANK_ID, EOS_ID, PAD_ID  # noqa: E402


def joint_loss(decoder_logits, ctc_logits, memory_lengths, batch, ctc_weight=0.3,
               label_smoothing=0.0):
    """Return (loss, attention_loss, ctc_loss) of one batch, each a scalar tensor.

    decoder_logits: (N, L + 1, V) from EncoderDecoderTransformer.forward; position t predicts
        batch.tokens[:, t] and position token_lengths[i] predicts EOS_ID.
    ctc_logits: (N, S, V), and memory_lengths (N,): the reduced lengths of the encoder output.
    batch: the SpeechBatch, with tokens (N, L) padded with PAD_ID, token_lengths (N,) and
        feature_lengths (N,), the frame counts before subsampling.

    attention_loss is the cross-entropy of the decoder over the transcript and its EOS_ID,
    averaged over those target tokens (padding ignored), with `label_smoothing`. ctc_loss is
    torch's CTC loss over the memory_lengths positions of each utterance, with the blank
    token BLANK_ID of the tokenizer, divided by each target length and averaged over the batch.
    loss = (1 - ctc_weight) * attention_loss + ctc_weight * ctc_loss.
    """
    ### BEGIN SOLUTION
    tokens, token_lengths = batch.tokens, batch.token_lengths
    N, L = tokens.shape

    # Targets: the transcript followed by EOS_ID, then PAD_ID.
    targets = torch.cat([tokens, torch.full((N, 1), PAD_ID, dtype=tokens.dtype, device=tokens.device)], dim=1)
    targets[torch.arange(N, device=tokens.device), token_lengths] = EOS_ID   # (N, L + 1)
    attention_loss = F.cross_entropy(
        decoder_logits.transpose(1, 2), targets,  # cross_entropy wants classes on dim 1
        ignore_index=PAD_ID, label_smoothing=label_smoothing,
    )

    log_probs = ctc_logits.float().log_softmax(dim=-1).transpose(0, 1)     # (S, N, V)
    ctc_loss = F.ctc_loss(
        log_probs, tokens, memory_lengths, token_lengths,
        blank=BLANK_ID, reduction="mean", zero_infinity=True,
    )

    loss = (1.0 - ctc_weight) * attention_loss + ctc_weight * ctc_loss
    ### END SOLUTION
    return loss, attention_loss, ctc_loss
