"""Transcribe speech with the encoder-decoder model and the decoders of notebook 04."""

import torch

from mytorch.registry import check_reference_available

check_reference_available(__name__)

from mytorch.asr.stepping import CachedDecoder  # noqa: E402
from mytorch.data.tokenizers import BOS_ID, EOS_ID, NUM_SPECIAL, PAD_ID  # noqa: E402
from mytorch.lm.decoding import beam_search, greedy_decode  # noqa: E402


def transcribe(model, features, lengths, tokenizer, beam_size=1, length_penalty=0.0):
    """Return the transcript of each utterance of a padded batch, as a list of N strings.

    features (N, T, n_mels), normalised, and lengths (N,) as for model.encode. The encoder
    output is the memory of a CachedDecoder, whose step function the decoders of notebook 04
    run from BOS_ID: greedy_decode for beam_size=1, else beam_search with `length_penalty`.
    Decoding stops at EOS_ID, or after as many tokens as the longest memory has positions,
    since a transcript has fewer characters than the encoder has positions.

    Each transcript is the tokens before the first EOS_ID, with the special tokens (ids below
    NUM_SPECIAL) removed, joined by tokenizer.decode. The model runs in evaluation mode
    without gradients, and is put back in the mode it was in.
    """
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            memory, memory_lengths = model.encode(features, lengths)
            decoder = CachedDecoder(model)
            state = decoder.initial_state(memory, memory_lengths)
            first = torch.full((memory.shape[0],), BOS_ID, dtype=torch.long, device=memory.device)
            max_tokens = max(int(memory_lengths.max()), 1)
            if beam_size == 1:
                tokens, _ = greedy_decode(decoder.step, state, first, max_tokens, EOS_ID, PAD_ID)
            else:
                tokens, _ = beam_search(decoder.step, state, first, beam_size, max_tokens, EOS_ID,
                                        PAD_ID, length_penalty)
    finally:
        model.train(was_training)

    transcripts = []
    for sequence in tokens.tolist():
        if EOS_ID in sequence:
            sequence = sequence[:sequence.index(EOS_ID)]
        transcripts.append(tokenizer.decode([t for t in sequence if t >= NUM_SPECIAL]))
    ### END SOLUTION
    return transcripts
