"""Data for the speech recogniser: datasets of raw log-mel features, statistics and batch loaders.

The datasets return unnormalised features: normalisation (with the training split's global
statistics) and SpecAugment are steps of the model's input pipeline that the notebook writes,
applied to whole padded batches. Features come from the disk cache of `mytorch.data`, so a
split is computed once per machine.

Evaluation batches are sorted by length, so utterances of similar length share a batch and
little compute goes to padding. `mytorch.asr.training.SpeechBatches` groups training batches
the same way, in random order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mytorch.data.features import FeatureStats
from mytorch.data.paths import data_root
from mytorch.data.speech import (
    SpeechBatch,
    SpeechDataset,
    collate_speech,
    load_feature_stats,
    load_manifest,
    read_manifest,
)
from mytorch.data.tokenizers import CharTokenizer, load_tokenizer


@dataclass
class DataConfig:
    """Where the utterances of a run come from.

    corpus: "synth", the bundled synthetic corpus (splits train, dev, test and
        test_unseen_voices, and the real-speech clips of corpus "real"), or "manifests", the
        JSON-lines files named in `manifests` (for example the LibriSpeech manifests that
        ``python -m mytorch.data.librispeech manifest`` writes).
    manifests: for corpus "manifests", split name -> manifest path, relative to the data root
        unless absolute. It must name "train" and "dev"; every other split is an evaluation split.
    stats: for corpus "manifests", the JSON file of the training features' statistics,
        relative to the data root unless absolute. The first run computes and writes it.
    max_train_utterances: use only the first this many training utterances (smoke runs).
    """

    corpus: str = "synth"
    manifests: dict | None = None
    stats: str | None = None
    max_train_utterances: int | None = None

    def __post_init__(self) -> None:
        if self.corpus not in ("synth", "manifests"):
            raise ValueError(f"invalid corpus {self.corpus!r}: choose synth or manifests")
        if self.corpus == "manifests":
            missing = {"train", "dev"} - set(self.manifests or {})
            if missing or self.stats is None:
                raise ValueError(
                    f"corpus 'manifests' needs manifests for train and dev (missing: "
                    f"{', '.join(sorted(missing)) or 'none'}) and a stats path (given: {self.stats})"
                )


# The evaluation splits of the bundled data: name in reports -> (corpus, split).
SYNTH_EVALUATION_SPLITS = {
    "test": ("synth", "test"),
    "test_unseen_voices": ("synth", "test_unseen_voices"),
    "real": ("real", "test"),
}


def _resolve(path: str) -> Path:
    """Resolve a config path against the data root unless it is absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else data_root() / path


def speech_dataset(split: str, corpus: str = "synth", tokenizer: CharTokenizer | None = None,
                   limit: int | None = None) -> SpeechDataset:
    """Return the dataset of a bundled split with unnormalised, cached features."""
    tokenizer = tokenizer or load_tokenizer("asr_char")
    utterances = load_manifest(split, corpus)
    return SpeechDataset(utterances[:limit] if limit else utterances, tokenizer, training=False, progress=True)


def manifest_dataset(path: str | Path, tokenizer: CharTokenizer, limit: int | None = None) -> SpeechDataset:
    """Return the dataset of a manifest file with unnormalised, cached features."""
    utterances = read_manifest(_resolve(str(path)))
    return SpeechDataset(utterances[:limit] if limit else utterances, tokenizer, training=False, progress=True)


def train_dataset(config: DataConfig, tokenizer: CharTokenizer) -> SpeechDataset:
    """Return the training set of a run (its first max_train_utterances, if set)."""
    if config.corpus == "synth":
        return speech_dataset("train", tokenizer=tokenizer, limit=config.max_train_utterances)
    return manifest_dataset(config.manifests["train"], tokenizer, config.max_train_utterances)


def dev_dataset(config: DataConfig, tokenizer: CharTokenizer, limit: int | None = None) -> SpeechDataset:
    """Return the first `limit` utterances (all if None) of the dev set of a run."""
    if config.corpus == "synth":
        return speech_dataset("dev", tokenizer=tokenizer, limit=limit)
    return manifest_dataset(config.manifests["dev"], tokenizer, limit)


def evaluation_datasets(config: DataConfig, tokenizer: CharTokenizer,
                        limit: int | None = None) -> dict[str, SpeechDataset]:
    """Return the evaluation splits of a run by name, each cut to `limit` utterances if given."""
    if config.corpus == "synth":
        return {name: speech_dataset(split, corpus, tokenizer=tokenizer, limit=limit)
                for name, (corpus, split) in SYNTH_EVALUATION_SPLITS.items()}
    return {name: manifest_dataset(path, tokenizer, limit)
            for name, path in config.manifests.items() if name not in ("train", "dev")}


def feature_stats(config: DataConfig, tokenizer: CharTokenizer | None = None) -> FeatureStats:
    """Return the training split's feature statistics.

    For the bundled corpus they are saved with it. For corpus "manifests" they are read from
    `config.stats`, or, on the first run, computed from the training set (which computes and
    caches its features) and written there.
    """
    if config.corpus == "synth":
        return load_feature_stats("synth")
    path = _resolve(config.stats)
    if path.is_file():
        return FeatureStats.load(path)
    train_set = train_dataset(config, tokenizer or load_tokenizer("asr_char"))
    stats = FeatureStats.compute(train_set.features(i) for i in range(len(train_set)))
    path.parent.mkdir(parents=True, exist_ok=True)
    stats.save(path)
    return stats


def evaluation_batches(dataset: SpeechDataset, max_frames: int) -> Iterator[SpeechBatch]:
    """Yield the whole dataset in batches sorted by length, each at most `max_frames` padded frames."""
    order = sorted(range(len(dataset)), key=lambda i: dataset.num_frames[i])
    batch: list[int] = []
    for index in order:
        # Sorted ascending, so the newest item is the longest of the batch.
        if batch and (len(batch) + 1) * dataset.num_frames[index] > max_frames:
            yield collate_speech([dataset[i] for i in batch])
            batch = []
        batch.append(index)
    if batch:
        yield collate_speech([dataset[i] for i in batch])
