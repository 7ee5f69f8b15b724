"""Speech manifests, audio loading, and the ASR dataset with its collate function.

A manifest is a JSON-lines file, one utterance per line, with the fields
``id``, ``path`` (relative to the manifest's folder), ``transcript`` (lower
case letters, apostrophe and space), ``duration`` (seconds), ``voice`` and
``split``. The bundled corpora are:

* ``synth``: splits ``train``, ``dev``, ``test`` (same voices as train, other
  sentences) and ``test_unseen_voices`` (voices never used in train).
* ``real``: split ``test``, five LibriVox recordings.

Batches are batch first: features (batch, time, n_mels), tokens (batch, length).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from mytorch.data.features import FeatureCache, FeatureConfig, FeatureStats, LogMelFilterbank
from mytorch.data.paths import cache_root, data_root, require_path
from mytorch.data.tokenizers import PAD_ID, CharTokenizer, load_tokenizer

SPEECH_CORPORA = {
    "synth": ("train", "dev", "test", "test_unseen_voices"),
    "real": ("test",),
}
MAKE_SPEECH_COMMAND = "python data/scripts/make_speech_corpus.py   (needs the Debian TTS packages in data/README.md)"
MAKE_STATS_COMMAND = "python -m mytorch.data.speech stats"


@dataclass(frozen=True)
class Utterance:
    """One manifest entry; ``path`` is absolute."""

    id: str
    path: Path
    transcript: str
    duration: float
    voice: str
    split: str
    text: str | None = None  # the written form, where the corpus has one


def manifest_path(split: str, corpus: str = "synth") -> Path:
    """Return the manifest path of a bundled speech split, checking that it exists."""
    if corpus not in SPEECH_CORPORA:
        raise ValueError(f"unknown speech corpus {corpus!r}; expected one of {tuple(SPEECH_CORPORA)}")
    if split not in SPEECH_CORPORA[corpus]:
        raise ValueError(f"unknown split {split!r} of corpus {corpus!r}; expected one of {SPEECH_CORPORA[corpus]}")
    path = data_root() / "speech" / corpus / f"{split}.jsonl"
    return require_path(path, f"the {corpus} speech corpus ({split} split)", MAKE_SPEECH_COMMAND)


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSON-lines manifest, resolving audio paths against its folder."""
    path = require_path(Path(path), "the speech manifest", MAKE_SPEECH_COMMAND)
    utterances = []
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                utterances.append(Utterance(
                    id=row["id"],
                    path=(path.parent / row["path"]).resolve(),
                    transcript=row["transcript"],
                    duration=float(row["duration"]),
                    voice=row["voice"],
                    split=row["split"],
                    text=row.get("text"),
                ))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}:{line_number}: invalid manifest line ({error})") from error
    return utterances


def write_manifest(path: str | Path, utterances: Sequence[Utterance]) -> None:
    """Write utterances as a JSON-lines manifest with paths relative to its folder."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as out:
        for utt in utterances:
            row = {
                "id": utt.id,
                "path": Path(os.path.relpath(utt.path, path.parent)).as_posix(),
                "transcript": utt.transcript,
                "duration": utt.duration,
                "voice": utt.voice,
                "split": utt.split,
            }
            if utt.text is not None:
                row["text"] = utt.text
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_manifest(split: str, corpus: str = "synth") -> list[Utterance]:
    """Read the manifest of a bundled speech split."""
    return read_manifest(manifest_path(split, corpus))


def load_audio(path: str | Path, sample_rate: int = 16000) -> Tensor:
    """Read an audio file as a mono float32 waveform (samples,) at ``sample_rate``.

    Raises ``soundfile.LibsndfileError`` (a RuntimeError) for unreadable files
    and ValueError for files that decode to no samples.
    """
    waveform, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if waveform.size == 0:
        raise ValueError(f"{path} contains no audio samples")
    mono = torch.from_numpy(np.ascontiguousarray(waveform.mean(axis=1)))
    if rate != sample_rate:
        mono = AF.resample(mono, rate, sample_rate)
    return mono


def stats_path(corpus: str = "synth", config: FeatureConfig = FeatureConfig()) -> Path:
    """Return where the training-split statistics for ``config`` are stored."""
    return data_root() / "speech" / corpus / f"feature_stats_{config.key()}.json"


def load_feature_stats(corpus: str = "synth", config: FeatureConfig = FeatureConfig()) -> FeatureStats:
    """Load the mean and standard deviation of the corpus's training features."""
    path = require_path(stats_path(corpus, config), f"the {corpus} feature statistics", MAKE_STATS_COMMAND)
    return FeatureStats.load(path)


@dataclass
class SpeechBatch:
    """A padded ASR batch. Padding is 0.0 in ``features`` and PAD_ID in ``tokens``."""

    features: Tensor  # (batch, time, n_mels) float32
    feature_lengths: Tensor  # (batch,) int64, frames before padding
    tokens: Tensor  # (batch, length) int64, transcript ids without <s> or </s>
    token_lengths: Tensor  # (batch,) int64
    transcripts: list[str]
    ids: list[str]

    def to(self, device: torch.device | str) -> SpeechBatch:
        return SpeechBatch(
            self.features.to(device), self.feature_lengths.to(device),
            self.tokens.to(device), self.token_lengths.to(device),
            self.transcripts, self.ids,
        )


class SpeechDataset(Dataset):
    """Log-mel features and token ids of the readable utterances of a manifest.

    On construction every utterance's features are computed, or read from the
    disk cache, once. Files that cannot be decoded are skipped: each gets a
    warning naming it, and one summary warning gives the count. The dataset
    then holds only readable utterances, so a training run never stops on a
    corrupt file.

    Features are cached on disk under ``cache_dir`` (by default
    ``<data root>/cache/features``), or kept in memory with ``cache=False``.

    Items are ``(features (time, n_mels), token ids (length,), transcript, id)``.
    Features are normalised with ``stats`` when given. ``transform`` is the
    hook for data augmentation such as SpecAugment: a callable from a
    (time, n_mels) tensor to a tensor of the same shape, applied after
    normalisation and only while ``training`` is True. By default ``training``
    is True when every utterance's split name starts with "train" (the
    synthetic ``train`` split, LibriSpeech ``train-clean-100``).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        tokenizer: CharTokenizer,
        stats: FeatureStats | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        config: FeatureConfig = FeatureConfig(),
        cache: bool = True,
        cache_dir: str | Path | None = None,
        training: bool | None = None,
        progress: bool = False,
    ):
        self.tokenizer = tokenizer
        self.stats = stats
        self.transform = transform
        self.config = config
        self.frontend = LogMelFilterbank(config)
        if cache:
            self.cache = FeatureCache(cache_dir or cache_root() / "features", config)
        else:
            self.cache = None
        self._in_memory: dict[str, Tensor] = {}

        self.utterances, self.num_frames, self.skipped = self._prepare(utterances, progress)
        if training is None:
            training = bool(self.utterances) and all(u.split.startswith("train") for u in self.utterances)
        self.training = training

    @classmethod
    def from_corpus(cls, split: str, corpus: str = "synth", tokenizer: CharTokenizer | None = None,
                    normalize: bool = True, **kwargs) -> SpeechDataset:
        """Build the dataset of a bundled split with the ``asr_char`` tokenizer and saved stats."""
        tokenizer = tokenizer or load_tokenizer("asr_char")
        config = kwargs.get("config", FeatureConfig())
        stats = load_feature_stats("synth", config) if normalize else None
        return cls(load_manifest(split, corpus), tokenizer, stats=stats, **kwargs)

    def _compute(self, utt: Utterance) -> Tensor:
        waveform = load_audio(utt.path, self.config.sample_rate)
        with torch.no_grad():
            return self.frontend(waveform)

    def _prepare(self, utterances: Sequence[Utterance], progress: bool):
        kept, num_frames, skipped = [], [], []
        for utt in _progress(utterances, progress, "features"):
            try:
                features = self.cache.get(utt.path) if self.cache else None
                if features is None:
                    features = self._compute(utt)
                    if self.cache:
                        self.cache.put(utt.path, features)
                    else:
                        self._in_memory[utt.id] = features
            except (RuntimeError, ValueError, OSError) as error:
                # soundfile raises LibsndfileError (a RuntimeError) for corrupt
                # files, and OSError covers missing or unreadable ones.
                warnings.warn(f"skipping unreadable audio file {utt.path}: {error}", stacklevel=3)
                skipped.append(utt)
                continue
            kept.append(utt)
            num_frames.append(features.shape[0])
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} of {len(utterances)} audio files that could not be read: "
                + ", ".join(str(u.path) for u in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
                stacklevel=3,
            )
        return kept, num_frames, skipped

    def features(self, index: int) -> Tensor:
        """Return the unnormalised (time, n_mels) features of one utterance."""
        utt = self.utterances[index]
        if self.cache is None:
            return self._in_memory[utt.id]
        cached = self.cache.get(utt.path)
        return cached if cached is not None else self._compute(utt)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str, str]:
        utt = self.utterances[index]
        x = self.features(index)
        if self.stats is not None:
            x = self.stats.normalize(x)
        if self.training and self.transform is not None:
            x = self.transform(x)
        tokens = torch.tensor(self.tokenizer.encode(utt.transcript), dtype=torch.long)
        return x, tokens, utt.transcript, utt.id


def collate_speech(items: Sequence[tuple[Tensor, Tensor, str, str]]) -> SpeechBatch:
    """Pad a list of SpeechDataset items into a SpeechBatch."""
    features, tokens, transcripts, ids = zip(*items)
    return SpeechBatch(
        features=pad_sequence(list(features), batch_first=True, padding_value=0.0),
        feature_lengths=torch.tensor([f.shape[0] for f in features], dtype=torch.long),
        tokens=pad_sequence(list(tokens), batch_first=True, padding_value=PAD_ID),
        token_lengths=torch.tensor([t.shape[0] for t in tokens], dtype=torch.long),
        transcripts=list(transcripts),
        ids=list(ids),
    )


def compute_feature_stats(corpus: str = "synth", config: FeatureConfig = FeatureConfig(),
                          progress: bool = False) -> Path:
    """Compute and save the statistics of the corpus's train split; return the path."""
    dataset = SpeechDataset(load_manifest("train", corpus), load_tokenizer("asr_char"),
                            config=config, training=False, progress=progress)
    stats = FeatureStats.compute(dataset.features(i) for i in range(len(dataset)))
    path = stats_path(corpus, config)
    stats.save(path)
    return path


def _progress(items, enabled: bool, description: str):
    """Wrap ``items`` in a tqdm bar if enabled and not running under nbgrader."""
    if not enabled or os.environ.get("NBGRADER_EXECUTION"):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=description)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Speech data maintenance commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser("stats", help="compute the feature statistics of a corpus's train split")
    stats.add_argument("--corpus", default="synth")
    args = parser.parse_args()
    if args.command == "stats":
        print(compute_feature_stats(args.corpus, progress=True))


if __name__ == "__main__":
    main()
