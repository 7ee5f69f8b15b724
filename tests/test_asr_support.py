"""Tests of the ungraded parts of notebook 05: metrics, checkpoints, configs, batches and the widget."""

import dataclasses
from fractions import Fraction

import matplotlib
import pytest
import torch

from mytorch.asr.checkpoint import CheckpointError, load_checkpoint, quality_points, save_checkpoint
from mytorch.asr.metrics import (
    SplitResult,
    character_alignment,
    character_error_rate,
    results_table,
    word_error_rate,
)
from mytorch.asr.model import EncoderDecoderTransformer
from mytorch.asr.training import ASRRunConfig, SpeechBatches, load_run_config, model_kwargs
from mytorch.config import CONFIG_DIR, load_config
from mytorch.data.tokenizers import CharTokenizer
from mytorch.runtime import runs_without_frontend
from mytorch.widgets import alignment as widget

matplotlib.use("Agg")
torch.set_num_threads(1)

TOKENIZER = CharTokenizer("abcdefghijklmnopqrstuvwxyz' ")


def tiny_model(**overrides):
    torch.manual_seed(0)
    kwargs = dict(vocab_size=TOKENIZER.vocab_size, n_mels=16, d_model=16, num_heads=2, d_ff=32,
                  num_encoder_layers=1, num_decoder_layers=2, conv_channels=4, dropout=0.0)
    kwargs.update(overrides)
    return EncoderDecoderTransformer(**kwargs).eval(), kwargs


def test_error_rates_are_corpus_level():
    references = ["the cat sat", "a dog"]
    hypotheses = ["the bat sat", ""]
    # 1 substitution of 11 characters, then 5 deletions of 5: (1 + 5) / 16.
    assert character_error_rate(references, hypotheses) == pytest.approx(6 / 16)
    # 1 of 3 words, then 2 of 2: 3 / 5.
    assert word_error_rate(references, hypotheses) == pytest.approx(3 / 5)


def test_error_rates_normalise_text():
    assert character_error_rate(["Don't  stop!"], ["don't stop"]) == 0.0
    assert word_error_rate(["Hello, World."], ["hello world"]) == 0.0


def test_error_rates_reject_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty after normalisation"):
        word_error_rate(["!!"], ["a"])


def test_character_alignment_operations():
    pieces = character_alignment("the cat", "the bat!")
    assert ("substitute", "c", "b") in pieces
    assert pieces[-1] == ("insert", "", "!")
    assert character_alignment("abc", "") == [("delete", "abc", "")]
    assert character_alignment("", "") == []


def test_results_table_in_percent():
    table = results_table([SplitResult("test", 0.0812, 0.2346, 400)])
    assert "| test | 400 | 8.1 | 23.5 |" in table


def test_quality_points_by_tier():
    assert quality_points(0.05) == 10
    assert quality_points(0.15) == 10
    assert quality_points(0.2) == 7
    assert quality_points(0.5) == 2
    assert quality_points(0.9) == 0


def test_checkpoint_round_trip_in_float16(tmp_path):
    model, kwargs = tiny_model()
    path = save_checkpoint(tmp_path / "model.pt", model, kwargs, dtype=torch.float16)
    loaded = load_checkpoint(path, EncoderDecoderTransformer)

    assert not loaded.training
    for name, tensor in loaded.state_dict().items():
        assert tensor.dtype == model.state_dict()[name].dtype
        assert torch.allclose(tensor, model.state_dict()[name], atol=1e-3, rtol=1e-3), name


def test_checkpoint_missing_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="the training cell writes it"):
        load_checkpoint(tmp_path / "asr_model.pt", EncoderDecoderTransformer)


def test_checkpoint_that_does_not_fit_is_rejected(tmp_path):
    model, kwargs = tiny_model()
    path = save_checkpoint(tmp_path / "model.pt", model, kwargs)

    class Wider(EncoderDecoderTransformer):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "d_ff": 64})

    with pytest.raises(CheckpointError, match="does not fit Wider"):
        load_checkpoint(path, Wider)


def test_checkpoint_of_another_format_is_rejected(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint of notebook 05"):
        load_checkpoint(path, EncoderDecoderTransformer)


def test_checkpoint_needing_pickle_is_rejected(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format": "mytorch-asr-1", "model_kwargs": Fraction(1, 3)}, path)  # needs unpickling
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_checkpoint(path, EncoderDecoderTransformer)


@pytest.mark.parametrize("size", ["smoke", "full", "librispeech_gpu"])
def test_run_configs_load(size):
    config = load_run_config(size)
    assert isinstance(config, ASRRunConfig)
    assert config.training.max_steps >= 1


def test_full_config_trains_within_thirty_minutes():
    config = load_run_config("full")
    assert config.training.time_budget_s <= 30 * 60


def test_librispeech_config_under_30m_parameters():
    config = load_run_config("librispeech_gpu")
    with torch.device("meta"):
        model = EncoderDecoderTransformer(**model_kwargs(config, TOKENIZER.vocab_size))
    assert sum(p.numel() for p in model.parameters()) < 30_000_000


def test_unknown_config_key_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((CONFIG_DIR / "05_asr" / "smoke.yaml").read_text() + "\nbeam: 3\n")
    with pytest.raises(ValueError, match="unknown key 'beam'"):
        load_config(path, ASRRunConfig)


class FakeDataset:
    """The parts of a SpeechDataset that SpeechBatches reads."""

    def __init__(self, lengths):
        self.num_frames = lengths

    def __getitem__(self, index):
        frames = self.num_frames[index]
        return torch.zeros(frames, 4), torch.tensor([5, 6]), "ab", f"utt{index}"


def test_speech_batches_depend_on_index_only():
    lengths = [20 + (37 * i * i) % 180 for i in range(60)]
    config = load_run_config("smoke").batches
    config = dataclasses.replace(config, max_frames=400, pool_factor=1)  # pools of 32 utterances
    first = SpeechBatches(FakeDataset(lengths), config, seed=3)
    second = SpeechBatches(FakeDataset(lengths), config, seed=3)

    per_epoch = len(first)
    indices = [0, 5, per_epoch + 2, 2, 7 * per_epoch + 1]
    ids_first = [first(i).ids for i in indices]
    ids_second = [second(i).ids for i in reversed(indices)][::-1]
    assert ids_first == ids_second

    sizes = []
    for epoch in range(6):  # every epoch contains each utterance once, whatever its batch count
        assert first.locate(sum(sizes)) == (epoch, 0)
        size = len(first.epoch_batches(epoch))
        utterances = [id_ for i in range(sum(sizes), sum(sizes) + size) for id_ in first(i).ids]
        assert sorted(utterances) == sorted(f"utt{i}" for i in range(60))
        sizes.append(size)
    assert len(set(sizes)) > 1  # the test covers epochs of different sizes

    for i in range(per_epoch):
        batch = first(i)
        assert batch.features.shape[0] * batch.features.shape[1] <= 400


def test_speech_batches_shortest_first_epoch():
    lengths = [30 + 7 * (i % 13) for i in range(60)]
    config = dataclasses.replace(load_run_config("smoke").batches, max_frames=400, shortest_first=True)
    batches = SpeechBatches(FakeDataset(lengths), config, seed=3)
    longest = [max(lengths[i] for i in batch) for batch in batches.epoch_batches(0)]
    assert longest == sorted(longest)
    assert batches.epoch_batches(1) != sorted(batches.epoch_batches(1), key=lambda b: max(lengths[i] for i in b))


def make_alignment():
    model, _ = tiny_model()
    features = torch.randn(60, 16)
    return widget.compute_alignment(model, features, TOKENIZER, "hat", reference="cat")


def test_compute_alignment_shapes():
    alignment = make_alignment()
    assert alignment.weights.shape == (2, 2, 4, 14)  # layers, heads, "hat" + EOS, 60 frames -> 14
    assert alignment.labels == ["h", "a", "t", "</s>"]
    assert alignment.attention(0, "mean").shape == (4, 14)


def test_transcript_html_marks_errors():
    html = widget.transcript_html("hat", "cat", current=1)
    assert "#f8c9c9" in html  # the substituted h
    assert "reference: c" in html
    assert "outline" in html


def test_static_figure_drawn_in_batch_runs(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runs_without_frontend()
    figure = widget.draw_alignment(make_alignment(), with_transcript=True)
    assert len(figure.axes) == 2
    matplotlib.pyplot.close(figure)


def test_interactive_widget_has_pickers(monkeypatch):
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: None)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    view = widget.show_alignment(make_alignment(), static=False)
    controls = view.children[0].children
    assert [c.description for c in controls] == ["layer", "head", "character"]
    controls[2].value = 3  # the slider redraws without error


def test_decoder_input_dropout_training_only():
    from mytorch.asr.frontend import SpecAugment
    from mytorch.asr.loss import joint_loss
    from mytorch.asr.training import LossConfig, speech_loss
    from mytorch.data.speech import SpeechBatch
    from mytorch.data.tokenizers import UNK_ID

    seen = []

    class Recorder(torch.nn.Module):
        """Records the decoder input and returns logits of the right shapes."""

        def forward(self, features, lengths, tokens):
            seen.append(tokens.clone())
            N, L = tokens.shape
            S = 5
            return torch.zeros(N, L + 1, 12, requires_grad=True), torch.zeros(N, S, 12), torch.full((N,), S)

    tokens = torch.full((4, 50), 7)
    tokens[1, 30:] = 0  # padding stays padding
    batch = SpeechBatch(torch.zeros(4, 30, 16), torch.full((4,), 30), tokens,
                        torch.tensor([50, 30, 50, 50]), [""] * 4, ["a", "b", "c", "d"])
    loss_fn = speech_loss(lambda f, l: f, SpecAugment(num_freq_masks=0, num_time_masks=0), joint_loss,
                          LossConfig(decoder_input_dropout=0.3))
    model = Recorder()

    torch.manual_seed(0)
    loss_fn(model.train(), batch)
    dropped = seen[-1] == UNK_ID
    assert 0.15 < dropped.float().mean() < 0.45
    assert torch.all(seen[-1][1, 30:] == 0)
    assert torch.equal(seen[-1][~dropped], tokens[~dropped])

    loss_fn(model.eval(), batch)
    assert torch.equal(seen[-1], tokens)
