"""The decoder-only Transformer, its loss and the submitted checkpoint of notebook 04."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mytorch.lm.checkpoint import CheckpointError, load_lm_checkpoint, quality_points, save_lm_checkpoint
from mytorch.lm.loss import lm_loss
from mytorch.lm.model import DecoderOnlyTransformer

ARGS = dict(vocab_size=20, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=32)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DecoderOnlyTransformer(**ARGS).double().eval()


def test_later_token_changes_no_earlier_logit(model):
    tokens = torch.randint(5, 20, (2, 12))
    logits = model(tokens)
    for position in range(12):
        changed = tokens.clone()
        changed[:, position] = (changed[:, position] - 4) % 15 + 5
        new_logits = model(changed)
        torch.testing.assert_close(new_logits[:, :position], logits[:, :position], rtol=0, atol=1e-12)
        assert not torch.allclose(new_logits[:, position], logits[:, position])


def test_weight_tying_shares_tensor():
    tied = DecoderOnlyTransformer(**ARGS)
    assert tied.head.weight is tied.embedding.weight
    untied = DecoderOnlyTransformer(**ARGS, tie_weights=False)
    assert untied.head.weight is not untied.embedding.weight
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == 20 * 32


def test_step_matches_forward_in_chunks(model):
    tokens = torch.randint(0, 20, (3, 17))
    expected = model(tokens)
    cache, pieces = None, []
    for start, end in [(0, 5), (5, 6), (6, 13), (13, 17)]:
        logits, cache = model.step(tokens[:, start:end], cache)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), expected, rtol=0, atol=1e-10)
    assert cache[0][0].shape == (3, 4, 17, 8)


def test_step_rejects_too_long(model):
    with pytest.raises(ValueError, match="max_len"):
        model.step(torch.zeros(1, 33, dtype=torch.long))


def test_attention_weights_causal_and_normalised(model):
    tokens = torch.randint(0, 20, (2, 9))
    logits, weights = model(tokens, return_weights=True)
    torch.testing.assert_close(logits, model(tokens), rtol=0, atol=1e-10)
    assert len(weights) == 2
    for layer_weights in weights:
        assert layer_weights.shape == (2, 4, 9, 9)
        torch.testing.assert_close(layer_weights.sum(-1), torch.ones(2, 4, 9, dtype=torch.float64))
        assert layer_weights.triu(diagonal=1).abs().max() == 0


def test_padding_does_not_affect_loss(model):
    sequences = [torch.randint(5, 20, (n,)) for n in (9, 5, 7)]
    inputs = torch.zeros(3, 8, dtype=torch.long)
    targets = torch.zeros(3, 8, dtype=torch.long)  # pad_id 0
    total, count = 0.0, 0
    for row, sequence in enumerate(sequences):
        n = len(sequence) - 1
        inputs[row, :n], targets[row, :n] = sequence[:-1], sequence[1:]
        alone = model(sequence[:-1].unsqueeze(0))
        total += F.cross_entropy(alone[0], sequence[1:], reduction="sum").item()
        count += n
    loss = lm_loss(model(inputs), targets)
    assert loss.item() == pytest.approx(total / count, rel=1e-10)

    inputs_other_padding = inputs.clone()
    inputs_other_padding[targets == 0] = 7  # what the padded positions read must not matter
    assert lm_loss(model(inputs_other_padding), targets).item() == pytest.approx(loss.item(), rel=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_loss_matches_cross_entropy(label_smoothing):
    logits = torch.randn(4, 6, 11, dtype=torch.float64)
    targets = torch.randint(0, 11, (4, 6))
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0,
                               label_smoothing=label_smoothing)
    assert lm_loss(logits, targets, label_smoothing=label_smoothing).item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_rejects_all_padding():
    with pytest.raises(ValueError, match="padding"):
        lm_loss(torch.randn(1, 3, 5), torch.zeros(1, 3, dtype=torch.long))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    model = DecoderOnlyTransformer(**ARGS)
    path = save_lm_checkpoint(tmp_path / "lm.pt", model, ARGS, tokenizer="web_char", block_size=16)
    content = torch.load(path, weights_only=True)
    assert content["state_dict"]["head.weight"].data_ptr() == content["state_dict"]["embedding.weight"].data_ptr()
    loaded, _ = load_lm_checkpoint(path, DecoderOnlyTransformer)
    tokens = torch.randint(0, 20, (2, 10))
    torch.testing.assert_close(loaded(tokens), model.eval()(tokens), rtol=0, atol=5e-3)


def test_checkpoint_missing_or_misfit(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*SIZE"):
        load_lm_checkpoint(tmp_path / "missing.pt", DecoderOnlyTransformer)

    path = save_lm_checkpoint(tmp_path / "lm.pt", DecoderOnlyTransformer(**ARGS), ARGS, "web_char", 16)

    class Smaller(DecoderOnlyTransformer):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "num_layers": 1})

    with pytest.raises(CheckpointError, match="do not fit"):
        load_lm_checkpoint(path, Smaller)

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_lm_checkpoint(tmp_path / "junk.pt", DecoderOnlyTransformer)


def test_quality_tiers():
    tiers = [[3.7, 5], [4.5, 3], [8.0, 1]]
    assert quality_points(3.5, tiers) == 5
    assert quality_points(4.0, tiers) == 3
    assert quality_points(9.0, tiers) == 0
