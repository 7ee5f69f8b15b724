"""Log-mel filterbank features, their normalisation statistics, and the disk cache.

Features are (time, n_mels) float32 tensors: one 80-dimensional frame every
10 ms, each computed from a 25 ms Hann window of 16 kHz audio.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of the log-mel front end; any change gives a new cache key."""

    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    f_min: float = 20.0
    f_max: float = 7600.0
    log_floor: float = 1e-6

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    def key(self) -> str:
        """Return a short hash of every setting, used to name cache folders."""
        encoded = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:12]


class LogMelFilterbank(nn.Module):
    """Compute log-mel features: (samples,) -> (time, n_mels) or (batch, samples) -> (batch, time, n_mels)."""

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
            center=True,
        )

    def forward(self, waveform: Tensor) -> Tensor:
        mel = self.mel(waveform)  # (..., n_mels, time)
        return torch.log(mel + self.config.log_floor).transpose(-1, -2)


@dataclass
class FeatureStats:
    """Per-dimension mean and standard deviation of features over a training split."""

    mean: Tensor  # (n_mels,)
    std: Tensor  # (n_mels,)
    num_frames: int

    @classmethod
    def compute(cls, features: Iterable[Tensor]) -> FeatureStats:
        """Accumulate statistics over (time, n_mels) tensors in float64."""
        total = total_sq = None
        num_frames = 0
        for x in features:
            x = x.to(torch.float64)
            total = x.sum(0) if total is None else total + x.sum(0)
            total_sq = (x**2).sum(0) if total_sq is None else total_sq + (x**2).sum(0)
            num_frames += x.shape[0]
        if num_frames == 0:
            raise ValueError("cannot compute feature statistics from zero frames")
        mean = total / num_frames
        var = (total_sq / num_frames - mean**2).clamp_min(1e-10)
        return cls(mean.float(), var.sqrt().float(), num_frames)

    def normalize(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.std

    def save(self, path: str | Path) -> None:
        content = {"mean": self.mean.tolist(), "std": self.std.tolist(), "num_frames": self.num_frames}
        Path(path).write_text(json.dumps(content) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        content = json.loads(Path(path).read_text())
        return cls(torch.tensor(content["mean"]), torch.tensor(content["std"]), content["num_frames"])


class FeatureCache:
    """Feature tensors on disk, one file per audio file, under a folder per config.

    A file's cache entry is keyed by its absolute path, size and modification
    time, so a replaced audio file is recomputed. Entries are stored as
    float16 to halve disk use and returned as float32.
    """

    def __init__(self, root: str | Path, config: FeatureConfig):
        self.folder = Path(root) / config.key()

    def _entry(self, audio_path: Path) -> Path:
        stat = audio_path.stat()
        identity = f"{audio_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
        return self.folder / digest[:2] / f"{audio_path.stem}-{digest}.pt"

    def get(self, audio_path: Path) -> Tensor | None:
        entry = self._entry(audio_path)
        if not entry.exists():
            return None
        return torch.load(entry, weights_only=True).float()

    def put(self, audio_path: Path, features: Tensor) -> None:
        entry = self._entry(audio_path)
        entry.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary name, then rename, so a DataLoader worker never reads a partial file.
        partial = entry.with_suffix(f".{os.getpid()}.tmp")
        torch.save(features.to(torch.float16).clone(), partial)
        os.replace(partial, entry)
