"""Tests of the notebook 05 references: front end, subsampling, encoder-decoder model and joint loss."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch.asr.embedding import SpeechEmbedding
from mytorch.asr.frontend import SpecAugment, normalize_features
from mytorch.asr.loss import joint_loss
from mytorch.asr.model import EncoderDecoderTransformer
from mytorch.data.speech import SpeechBatch
from mytorch.data.tokenizers import BLANK_ID, BOS_ID, EOS_ID, PAD_ID

torch.set_num_threads(1)

VOCAB = 12


def small_model(**overrides) -> EncoderDecoderTransformer:
    torch.manual_seed(0)
    kwargs = dict(vocab_size=VOCAB, n_mels=16, d_model=16, num_heads=2, d_ff=32,
                  num_encoder_layers=2, num_decoder_layers=2, conv_channels=4, dropout=0.0)
    kwargs.update(overrides)
    return EncoderDecoderTransformer(**kwargs).eval()


def padded_features(lengths, n_mels=16, fill=0.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), n_mels, generator=generator)
    for i, length in enumerate(lengths):
        x[i, length:] = fill
    return x


def test_normalize_features_uses_statistics_and_zeroes_padding():
    features = padded_features([5, 3], n_mels=4, fill=7.0)
    mean, std = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.5, 1.0, 2.0, 4.0])
    out = normalize_features(features, torch.tensor([5, 3]), mean, std)

    assert torch.allclose(out[0], (features[0] - mean) / std)
    assert torch.allclose(out[1, :3], (features[1, :3] - mean) / std)
    assert torch.equal(out[1, 3:], torch.zeros(2, 4))


def test_spec_augment_masks_only_in_training():
    augment = SpecAugment(freq_mask_param=8, num_freq_masks=2, time_mask_param=10, num_time_masks=2,
                          max_time_fraction=0.5)
    features = torch.randn(4, 60, 16) + 5.0  # no value is 0.0 before masking
    torch.manual_seed(0)
    masked = augment.train()(features)
    assert masked.shape == features.shape
    assert (masked == 0).any()
    assert torch.equal(masked[masked != 0], features[masked != 0])
    assert torch.equal(augment.eval()(features), features)


def test_spec_augment_masks_differ_between_utterances():
    augment = SpecAugment(freq_mask_param=8, num_freq_masks=1, time_mask_param=1, num_time_masks=0).train()
    torch.manual_seed(1)
    masked = augment(torch.ones(8, 30, 16))
    channels_masked = [tuple((masked[i, 0] == 0).nonzero().flatten().tolist()) for i in range(8)]
    assert len(set(channels_masked)) > 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(7, 80), min_size=1, max_size=5))
def test_subsampled_lengths_match_formula(lengths):
    embedding = SpeechEmbedding(n_mels=16, d_model=8, channels=2)
    features = padded_features(lengths)
    out, out_lengths = embedding(features, torch.tensor(lengths))

    expected = [((length - 1) // 2 - 1) // 2 for length in lengths]
    assert out_lengths.tolist() == expected
    assert out.shape == (len(lengths), ((max(lengths) - 1) // 2 - 1) // 2, 8)


def test_subsampled_positions_ignore_padding_frames():
    embedding = SpeechEmbedding(n_mels=16, d_model=8, channels=2)
    lengths = torch.tensor([40, 23])
    clean, out_lengths = embedding(padded_features([40, 23]), lengths)
    noisy, _ = embedding(padded_features([40, 23], fill=100.0), lengths)
    valid = int(out_lengths[1])
    assert torch.allclose(clean[1, :valid], noisy[1, :valid])


def test_encoder_ignores_padding_frames():
    model = small_model()
    lengths = torch.tensor([61, 38, 17])
    memory, memory_lengths = model.encode(padded_features([61, 38, 17]), lengths)
    noisy, _ = model.encode(padded_features([61, 38, 17], fill=50.0), lengths)

    for i, length in enumerate(memory_lengths.tolist()):
        assert torch.allclose(memory[i, :length], noisy[i, :length], atol=1e-5)


def test_cross_attention_never_attends_padding():
    model = small_model()
    lengths = torch.tensor([61, 30])
    memory, memory_lengths = model.encode(padded_features([61, 30]), lengths)
    tokens = torch.tensor([[BOS_ID, 5, 6, 7], [BOS_ID, 8, 9, PAD_ID]])
    _, weights = model.decode(tokens, memory, memory_lengths, return_weights=True)

    assert len(weights) == 2
    short = int(memory_lengths[1])
    for layer_weights in weights:
        assert layer_weights.shape == (2, 2, 4, memory.shape[1])
        assert torch.all(layer_weights[1, :, :, short:] == 0)
        assert torch.allclose(layer_weights.sum(-1), torch.ones(2, 2, 4))


def test_decoder_is_causal():
    model = small_model()
    memory, memory_lengths = model.encode(padded_features([40]), torch.tensor([40]))
    tokens = torch.tensor([[BOS_ID, 5, 6, 7, 8]])
    changed = tokens.clone()
    changed[0, 3:] = torch.tensor([9, 10])
    logits = model.decode(tokens, memory, memory_lengths)
    logits_changed = model.decode(changed, memory, memory_lengths)
    assert torch.allclose(logits[0, :3], logits_changed[0, :3], atol=1e-6)
    assert not torch.allclose(logits[0, 3:], logits_changed[0, 3:])


def test_forward_shapes_and_bos_input():
    model = small_model()
    tokens = torch.tensor([[5, 6, 7], [8, PAD_ID, PAD_ID]])
    lengths = torch.tensor([50, 33])
    decoder_logits, ctc_logits, memory_lengths = model(padded_features([50, 33]), lengths, tokens)
    memory, _ = model.encode(padded_features([50, 33]), lengths)

    assert decoder_logits.shape == (2, 4, VOCAB)
    assert ctc_logits.shape == (2, memory.shape[1], VOCAB)
    assert memory_lengths.tolist() == [11, 7]
    expected = model.decode(torch.cat([torch.full((2, 1), BOS_ID), tokens], 1), memory, memory_lengths)
    assert torch.allclose(decoder_logits, expected, atol=1e-6)


def make_batch(feature_lengths, token_lists):
    tokens = torch.full((len(token_lists), max(map(len, token_lists))), PAD_ID)
    for i, ids in enumerate(token_lists):
        tokens[i, :len(ids)] = torch.tensor(ids)
    return SpeechBatch(padded_features(feature_lengths), torch.tensor(feature_lengths), tokens,
                       torch.tensor([len(ids) for ids in token_lists]), ["", ""], ["a", "b"])


def test_joint_loss_matches_independent_computation():
    torch.manual_seed(0)
    batch = make_batch([57, 33], [[5, 6, 7, 5], [8, 9]])
    memory_lengths = torch.tensor([13, 7])
    decoder_logits = torch.randn(2, 5, VOCAB)
    ctc_logits = torch.randn(2, 13, VOCAB)
    loss, attention, ctc = joint_loss(decoder_logits, ctc_logits, memory_lengths, batch,
                                      ctc_weight=0.3, label_smoothing=0.1)

    targets = torch.tensor([[5, 6, 7, 5, EOS_ID], [8, 9, EOS_ID, PAD_ID, PAD_ID]])
    expected_attention = F.cross_entropy(decoder_logits.reshape(-1, VOCAB), targets.flatten(),
                                         ignore_index=PAD_ID, label_smoothing=0.1)
    per_utterance = [
        F.ctc_loss(ctc_logits[i, :memory_lengths[i]].log_softmax(-1).unsqueeze(1),
                   batch.tokens[i:i + 1, :batch.token_lengths[i]], memory_lengths[i:i + 1],
                   batch.token_lengths[i:i + 1], blank=BLANK_ID, reduction="sum") / batch.token_lengths[i]
        for i in range(2)
    ]
    expected_ctc = torch.stack(per_utterance).mean()
    assert torch.allclose(attention, expected_attention, atol=1e-5)
    assert torch.allclose(ctc, expected_ctc, atol=1e-4)
    assert torch.allclose(loss, 0.7 * expected_attention + 0.3 * expected_ctc, atol=1e-4)


def test_joint_loss_ignores_ctc_logits_past_reduced_lengths():
    torch.manual_seed(1)
    batch = make_batch([57, 33], [[5, 6, 7], [8, 9]])
    memory_lengths = torch.tensor([13, 7])
    decoder_logits, ctc_logits = torch.randn(2, 4, VOCAB), torch.randn(2, 13, VOCAB)
    changed = ctc_logits.clone()
    changed[1, 7:] = torch.randn(6, VOCAB) * 10
    _, _, ctc = joint_loss(decoder_logits, ctc_logits, memory_lengths, batch)
    _, _, ctc_changed = joint_loss(decoder_logits, changed, memory_lengths, batch)
    assert torch.allclose(ctc, ctc_changed)


def test_joint_loss_gradients_reach_model():
    model = small_model()
    model.train()
    batch = make_batch([57, 33], [[5, 6, 7], [8, 9]])
    decoder_logits, ctc_logits, memory_lengths = model(batch.features, batch.feature_lengths, batch.tokens)
    loss, _, _ = joint_loss(decoder_logits, ctc_logits, memory_lengths, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.embedding.conv1.weight.grad.abs().sum() > 0
    assert model.ctc_head.weight.grad.abs().sum() > 0
    assert model.output.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("ctc_weight", [0.0, 1.0])
def test_joint_loss_weight_extremes(ctc_weight):
    torch.manual_seed(2)
    batch = make_batch([57, 33], [[5, 6, 7], [8, 9]])
    decoder_logits, ctc_logits = torch.randn(2, 4, VOCAB), torch.randn(2, 13, VOCAB)
    loss, attention, ctc = joint_loss(decoder_logits, ctc_logits, torch.tensor([13, 7]), batch,
                                      ctc_weight=ctc_weight)
    assert torch.allclose(loss, ctc if ctc_weight else attention)
