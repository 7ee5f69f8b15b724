"""Tests of the cached decoder and transcribe (notebook 05) with the decoders of notebook 04."""

import pytest
import torch

from mytorch.asr.decoding import transcribe
from mytorch.asr.model import EncoderDecoderTransformer
from mytorch.asr.stepping import CachedDecoder
from mytorch.lm.decoding import beam_search, greedy_decode
from mytorch.lm.stepping import reorder_state
from mytorch.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, CharTokenizer

torch.set_num_threads(1)

TOKENIZER = CharTokenizer("abcdefg")  # ids 5..11
VOCAB = TOKENIZER.vocab_size


def random_model(seed=0) -> EncoderDecoderTransformer:
    torch.manual_seed(seed)
    model = EncoderDecoderTransformer(VOCAB, n_mels=16, d_model=16, num_heads=2, d_ff=32,
                                      num_encoder_layers=1, num_decoder_layers=2, conv_channels=4,
                                      dropout=0.0)
    return model.eval()


def features(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), 16, generator=generator)
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    return x, torch.tensor(lengths)


# Each token's successor in the scripted model: the chain from BOS is a, <unk>, b, <pad>, c,
# </s>, then d e f g a ... had the decoder not stopped.
SUCCESSOR = {BOS_ID: 5, 5: UNK_ID, UNK_ID: 6, 6: PAD_ID, PAD_ID: 7, 7: EOS_ID, EOS_ID: 8,
             8: 9, 9: 10, 10: 11, 11: 5}


def scripted_model() -> EncoderDecoderTransformer:
    """A model whose decoder emits SUCCESSOR[previous token] with near certainty, whatever the audio."""
    model = random_model()
    with torch.no_grad():
        for parameter in model.decoder_layers.parameters():
            parameter.zero_()  # every sublayer adds 0 to its input
        model.token_embedding.weight.zero_()
        model.output.weight.zero_()
        model.output.bias.zero_()
        for token, successor in SUCCESSOR.items():
            model.token_embedding.weight[token, token] = 30.0
            model.output.weight[successor, token] = 10.0
    return model


def greedy(model, memory, memory_lengths):
    decoder = CachedDecoder(model)
    first = torch.full((memory.shape[0],), BOS_ID)
    tokens, _ = greedy_decode(decoder.step, decoder.initial_state(memory, memory_lengths), first,
                              int(memory_lengths.max()), EOS_ID, PAD_ID)
    return tokens


def beam(model, memory, memory_lengths, beam_size):
    decoder = CachedDecoder(model)
    first = torch.full((memory.shape[0],), BOS_ID)
    tokens, _ = beam_search(decoder.step, decoder.initial_state(memory, memory_lengths), first,
                            beam_size, int(memory_lengths.max()), EOS_ID, PAD_ID, length_penalty=0.0)
    return tokens


def until_eos(tokens):
    """Cut each row of a (B, L) tensor of decoder output at its first EOS_ID."""
    rows = []
    for row in tokens.tolist():
        rows.append(row[:row.index(EOS_ID)] if EOS_ID in row else row)
    return rows


def full_greedy(model, x, lengths):
    """Greedy decoding that reruns the whole decoder at each step (no cache)."""
    memory, memory_lengths = model.encode(x, lengths)
    outputs = []
    for i in range(x.shape[0]):
        tokens = [BOS_ID]
        while len(tokens) - 1 < int(memory_lengths.max()):
            logits = model.decode(torch.tensor([tokens]), memory[i:i + 1], memory_lengths[i:i + 1])
            token = int(logits[0, -1].argmax())
            if token == EOS_ID:
                break
            tokens.append(token)
        outputs.append(tokens[1:])
    return outputs


def test_cached_decoder_matches_full_decode():
    model = random_model()
    x, lengths = features([61, 37, 22])
    tokens = torch.tensor([[BOS_ID, 5, 6, 7, 8], [BOS_ID, 9, 5, 5, 6], [BOS_ID, 11, 10, 9, 8]])
    with torch.no_grad():
        memory, memory_lengths = model.encode(x, lengths)
        expected = model.decode(tokens, memory, memory_lengths).log_softmax(-1)
        decoder = CachedDecoder(model)
        state = decoder.initial_state(memory, memory_lengths)
        steps = []
        for t in range(tokens.shape[1]):
            log_probs, state = decoder.step(tokens[:, t], state)
            steps.append(log_probs)
    assert torch.allclose(torch.stack(steps, 1), expected, atol=1e-5)


def test_cached_greedy_matches_full_recompute():
    model = random_model(seed=3)
    x, lengths = features([61, 37, 22])
    with torch.no_grad():
        memory, memory_lengths = model.encode(x, lengths)
        assert until_eos(greedy(model, memory, memory_lengths)) == full_greedy(model, x, lengths)


def test_beam_of_one_equals_greedy_scripted():
    model = scripted_model()
    x, lengths = features([60, 16, 35])
    with torch.no_grad():
        memory, memory_lengths = model.encode(x, lengths)
        assert until_eos(beam(model, memory, memory_lengths, 1)) == until_eos(greedy(model, memory, memory_lengths))


@pytest.mark.parametrize("seed", range(4))
def test_one_beam_greedy_untrained(seed):
    # An untrained model often ranks </s> second, and one beam must not finish it.
    model = random_model(seed)
    x, lengths = features([61, 37, 22, 50], seed=seed)
    with torch.no_grad():
        memory, memory_lengths = model.encode(x, lengths)
        assert until_eos(beam(model, memory, memory_lengths, 1)) == until_eos(greedy(model, memory, memory_lengths))


def test_transcribe_stops_at_eos_strips_specials():
    model = scripted_model()
    x, lengths = features([60, 16])
    assert transcribe(model, x, lengths, TOKENIZER) == ["abc", "abc"]


@pytest.mark.parametrize("beam_size", [2, 4])
def test_beam_search_finds_scripted_transcript(beam_size):
    model = scripted_model()
    x, lengths = features([60, 16])
    assert transcribe(model, x, lengths, TOKENIZER, beam_size=beam_size) == ["abc", "abc"]


def test_transcript_cut_at_maximum_length():
    model = scripted_model()
    x, lengths = features([16])  # 3 encoder positions: a, <unk>, b
    assert transcribe(model, x, lengths, TOKENIZER) == ["ab"]


def test_transcribe_restores_training_mode():
    model = random_model().train()
    x, lengths = features([30])
    transcribe(model, x, lengths, TOKENIZER)
    assert model.training


def test_decoder_state_follows_beams():
    model = random_model()
    x, lengths = features([40, 30])
    with torch.no_grad():
        memory, memory_lengths = model.encode(x, lengths)
        decoder = CachedDecoder(model)
        state = decoder.initial_state(memory, memory_lengths)
        _, state = decoder.step(torch.tensor([5, 6]), state)
        reordered = reorder_state(state, torch.tensor([1, 1, 0]))
        log_probs, _ = decoder.step(torch.tensor([7, 7, 7]), reordered)
        expected, _ = decoder.step(torch.tensor([7, 7]), state)
    assert torch.allclose(log_probs, expected[[1, 1, 0]], atol=1e-6)
