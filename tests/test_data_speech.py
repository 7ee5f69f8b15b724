"""Tests of the bundled speech corpora, features, the ASR dataset and the sampler."""

import json
import random
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from mytorch.data import paths
from mytorch.data.features import FeatureConfig, FeatureStats, LogMelFilterbank
from mytorch.data.sampler import LengthBucketSampler, padding_fraction
from mytorch.data.speech import (
    SPEECH_CORPORA,
    SpeechDataset,
    Utterance,
    collate_speech,
    load_audio,
    load_feature_stats,
    load_manifest,
    write_manifest,
)
from mytorch.data.text import TRANSCRIPT_ALPHABET
from mytorch.data.tokenizers import PAD_ID, load_tokenizer

HELD_OUT_SPLITS = ("dev", "test", "test_unseen_voices")


@pytest.fixture(scope="module")
def manifests():
    return {split: load_manifest(split) for split in SPEECH_CORPORA["synth"]}


@pytest.fixture(scope="module")
def asr_tokenizer():
    return load_tokenizer("asr_char")


@pytest.mark.parametrize(("corpus", "split"), [(c, s) for c, splits in SPEECH_CORPORA.items() for s in splits])
def test_manifest_entries_valid(corpus, split):
    utterances = load_manifest(split, corpus)
    assert utterances
    for utt in utterances:
        assert utt.path.is_file(), utt.path
        assert set(utt.transcript) <= TRANSCRIPT_ALPHABET
        assert utt.transcript == " ".join(utt.transcript.split())
        assert 0.3 < utt.duration < 20
    assert len({u.id for u in utterances}) == len(utterances)


def test_corpus_sizes(manifests):
    assert len(manifests["train"]) >= 3000
    for split in HELD_OUT_SPLITS:
        assert len(manifests[split]) >= 100


def test_held_out_sentences_absent_from_training(manifests):
    train_sentences = {u.transcript for u in manifests["train"]}
    for split in HELD_OUT_SPLITS:
        leaked = [u.id for u in manifests[split] if u.transcript in train_sentences]
        assert not leaked, f"{split} shares sentences with train: {leaked[:5]}"


def test_unseen_voices_absent_from_training(manifests):
    train_voices = {u.voice for u in manifests["train"]}
    unseen = {u.voice for u in manifests["test_unseen_voices"]}
    assert not unseen & train_voices
    assert len(unseen) >= 4
    assert any(v.startswith(("flite-", "festival-")) for v in unseen)
    assert sum(v.startswith("espeak-ng-") for v in unseen) >= 2


def test_seen_test_voices_occur_in_training(manifests):
    train_voices = {u.voice for u in manifests["train"]}
    for split in ("dev", "test"):
        assert {u.voice for u in manifests[split]} <= train_voices


def test_audio_is_16k_mono(manifests):
    for utt in manifests["dev"][:3] + load_manifest("test", "real")[:2]:
        info = sf.info(str(utt.path))
        assert info.samplerate == 16000
        assert info.channels == 1
        assert info.frames / info.samplerate == pytest.approx(utt.duration, abs=0.01)


def test_log_mel_shape():
    frontend = LogMelFilterbank()
    features = frontend(torch.zeros(16000))
    assert features.shape == (101, 80)  # 1 s at a 10 ms hop, centred frames
    batch = frontend(torch.randn(2, 8000))
    assert batch.shape == (2, 51, 80)


def test_feature_config_key_changes_with_settings():
    assert FeatureConfig().key() == FeatureConfig().key()
    assert FeatureConfig().key() != FeatureConfig(n_mels=40).key()


def test_saved_stats_match_config():
    stats = load_feature_stats()
    assert stats.mean.shape == stats.std.shape == (80,)
    assert (stats.std > 0).all()
    assert stats.num_frames > 100_000


def test_dev_batches_from_bundled_corpus(manifests, asr_tokenizer, tmp_path):
    dataset = SpeechDataset(manifests["dev"][:12], asr_tokenizer, stats=load_feature_stats(),
                            cache_dir=tmp_path)
    assert not dataset.training
    sampler = LengthBucketSampler(dataset.num_frames, batch_size=4, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_speech)
    batches = list(loader)
    assert len(batches) == 3
    batch = batches[0]
    n, t, d = batch.features.shape
    assert (n, d) == (4, 80)
    assert t == int(batch.feature_lengths.max())
    assert batch.tokens.shape == (4, int(batch.token_lengths.max()))
    for i in range(n):
        assert asr_tokenizer.decode(batch.tokens[i].tolist()) == batch.transcripts[i]
        assert (batch.tokens[i, batch.token_lengths[i]:] == PAD_ID).all()
        assert (batch.features[i, batch.feature_lengths[i]:] == 0).all()
    # Normalised features are roughly zero-mean, unit-variance.
    valid = batch.features[0, : batch.feature_lengths[0]]
    assert abs(float(valid.mean())) < 1.0
    assert 0.3 < float(valid.std()) < 3.0


def test_feature_cache_reused(manifests, asr_tokenizer, tmp_path):
    utterances = manifests["dev"][:2]
    first = SpeechDataset(utterances, asr_tokenizer, cache_dir=tmp_path)
    cached_files = sorted(tmp_path.rglob("*.pt"))
    assert len(cached_files) == 2
    assert cached_files[0].parent.parent.name == FeatureConfig().key()
    second = SpeechDataset(utterances, asr_tokenizer, cache_dir=tmp_path)
    assert torch.equal(first[0][0], second[0][0])
    uncached = SpeechDataset(utterances, asr_tokenizer, cache=False)
    torch.testing.assert_close(uncached[0][0], first[0][0], atol=0.02, rtol=0.005)


def test_transform_applied_only_when_training(manifests, asr_tokenizer, tmp_path):
    def zero(features):
        return torch.zeros_like(features)

    utterances = manifests["train"][:2]
    train_set = SpeechDataset(utterances, asr_tokenizer, transform=zero, cache_dir=tmp_path)
    assert train_set.training
    assert (train_set[0][0] == 0).all()
    eval_set = SpeechDataset(utterances, asr_tokenizer, transform=zero, cache_dir=tmp_path, training=False)
    assert not (eval_set[0][0] == 0).all()


def test_real_speech_loads(asr_tokenizer, tmp_path):
    dataset = SpeechDataset.from_corpus("test", corpus="real", tokenizer=asr_tokenizer, cache_dir=tmp_path)
    assert len(dataset) == 5
    assert dataset.utterances[1].transcript == "he was not an ill disposed young man"


def write_tone(path, seconds, fmt):
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), 16000, format=fmt)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_truncated_file_skipped_and_reported(tmp_path, asr_tokenizer, fmt):
    suffix = fmt.lower()
    utterances = []
    for i in range(4):
        path = tmp_path / f"utt{i}.{suffix}"
        write_tone(path, 1.0 + i / 4, fmt)
        utterances.append(Utterance(f"utt{i}", path, "a tone", 1.0 + i / 4, "tone", "train"))
    broken = utterances[2].path
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 8])
    manifest = tmp_path / "train.jsonl"
    write_manifest(manifest, utterances)

    from mytorch.data.speech import read_manifest

    with pytest.warns(UserWarning) as record:
        dataset = SpeechDataset(read_manifest(manifest), asr_tokenizer, cache_dir=tmp_path / "cache")
    messages = [str(w.message) for w in record]
    assert [u.id for u in dataset.utterances] == ["utt0", "utt1", "utt3"]
    assert [u.path for u in dataset.skipped] == [broken.resolve()]
    assert any(str(broken.resolve()) in m and "skipping" in m for m in messages)
    assert any("skipped 1 of 4" in m for m in messages)
    batch = collate_speech([dataset[i] for i in range(len(dataset))])
    assert batch.features.shape[0] == 3


def test_readable_corpus_loads_without_warnings(manifests, asr_tokenizer, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SpeechDataset(manifests["test"][:3], asr_tokenizer, cache_dir=tmp_path)


def test_missing_speech_corpus_names_command(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(tmp_path))
    with pytest.raises(paths.DataNotFoundError, match="make_speech_corpus.py"):
        load_manifest("train")


def test_missing_audio_file_is_skipped(tmp_path, asr_tokenizer):
    missing = Utterance("gone", tmp_path / "gone.flac", "gone", 1.0, "tone", "dev")
    with pytest.warns(UserWarning, match="gone.flac"):
        dataset = SpeechDataset([missing], asr_tokenizer, cache_dir=tmp_path)
    assert len(dataset) == 0


def test_load_audio_resamples(tmp_path):
    path = tmp_path / "tone8k.wav"
    sf.write(str(path), np.zeros(8000, dtype=np.float32), 8000)
    assert load_audio(path).shape == (16000,)


def test_feature_stats_match_direct_computation():
    generator = torch.Generator().manual_seed(0)
    parts = [torch.randn(n, 3, generator=generator) * 2 + 1 for n in (5, 17, 9)]
    stats = FeatureStats.compute(parts)
    whole = torch.cat(parts)
    torch.testing.assert_close(stats.mean, whole.mean(0))
    torch.testing.assert_close(stats.std, whole.std(0, unbiased=False))
    assert stats.num_frames == 31


def test_bucketing_wastes_less_padding_than_random(manifests):
    lengths = [round(u.duration * 100) for u in manifests["train"]]
    rng = random.Random(0)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    random_batches = [order[i: i + 32] for i in range(0, len(order), 32)]
    bucketed = list(LengthBucketSampler(lengths, batch_size=32, seed=0))
    assert sorted(i for b in bucketed for i in b) == list(range(len(lengths)))
    random_waste = padding_fraction(lengths, random_batches)
    bucket_waste = padding_fraction(lengths, bucketed)
    assert bucket_waste < random_waste / 4, (bucket_waste, random_waste)


def test_bucket_sampler_epochs_differ_and_repeat():
    lengths = list(range(1, 201))
    sampler = LengthBucketSampler(lengths, batch_size=8, pool_factor=5, seed=3)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_bucket_sampler_max_frames_budget():
    lengths = [random.Random(i).randint(50, 500) for i in range(300)]
    sampler = LengthBucketSampler(lengths, max_frames=2000, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 2000


def test_manifest_round_trip(tmp_path):
    utt = Utterance("a", tmp_path / "audio" / "a.flac", "a b", 1.5, "v", "dev", text="A, b.")
    write_manifest(tmp_path / "dev.jsonl", [utt])
    row = json.loads((tmp_path / "dev.jsonl").read_text())
    assert row["path"] == "audio/a.flac"
    from mytorch.data.speech import read_manifest

    assert read_manifest(tmp_path / "dev.jsonl") == [utt]
