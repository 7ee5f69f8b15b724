"""The run configuration of notebook 05, and speech batches for the trainer of notebook 04.

A run reads ``configs/05_asr/<size>.yaml`` into `ASRRunConfig`. Its ``training`` section is the
`mytorch.training.TrainerConfig` of the generic trainer of notebook 04: AdamW, warmup and
cosine decay, clipping, mixed precision, a time budget and resumable checkpoints. This module
adds what is specific to speech: length-bucketed batches addressed by their index, as the
trainer requires, and the loss and evaluation functions built from the notebook's own
components.

It imports no graded reference of notebook 05: the notebook passes in its normalisation,
SpecAugment, loss and decoder, so this module works under grading mode and with a student's
implementations.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from mytorch.asr.metrics import character_error_rate
from mytorch.asr.pipeline import DataConfig, evaluation_batches
from mytorch.config import config_path, load_config
from mytorch.data.sampler import LengthBucketSampler
from mytorch.data.speech import SpeechBatch, SpeechDataset, collate_speech
from mytorch.data.tokenizers import PAD_ID, UNK_ID
from mytorch.training import TrainerConfig


@dataclass
class ModelConfig:
    """The keyword arguments of EncoderDecoderTransformer, except vocab_size (from the tokenizer)."""

    n_mels: int = 80
    d_model: int = 144
    num_heads: int = 4
    d_ff: int = 576
    num_encoder_layers: int = 6
    num_decoder_layers: int = 2
    conv_channels: int = 32
    dropout: float = 0.1
    max_frames: int = 2000
    max_tokens: int = 512


@dataclass
class SpecAugmentConfig:
    """The keyword arguments of SpecAugment."""

    freq_mask_param: int = 27
    num_freq_masks: int = 2
    time_mask_param: int = 40
    num_time_masks: int = 2
    max_time_fraction: float = 0.2


@dataclass
class LossConfig:
    """The weight of CTC in the joint loss, the label smoothing of the attention loss, and the
    share of decoder input characters replaced by <unk> in training.

    Replacing input characters (the targets stay) keeps the decoder from predicting the next
    character from the previous ones alone, so it learns sooner to attend to the audio.
    """

    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    decoder_input_dropout: float = 0.0


@dataclass
class BatchConfig:
    """Training batches hold at most max_frames padded input frames (10 ms each)."""

    max_frames: int = 8000
    pool_factor: int = 50  # LengthBucketSampler: batches drawn from pools this many times larger
    # The first epoch goes from the shortest utterances to the longest ("SortaGrad"): short
    # utterances are the easiest to align, which gets attention and CTC started sooner.
    shortest_first: bool = False


@dataclass
class EvaluationConfig:
    """Evaluation settings: the batch size in frames, the dev utterances scored during
    training, and the beam of the final beam-search evaluation."""

    max_frames: int = 16000
    dev_utterances: int = 100
    max_utterances: int | None = None  # score only the first this many of each split (smoke runs)
    beam_size: int = 4
    length_penalty: float = 0.0


@dataclass
class ASRRunConfig:
    """One training run of notebook 05 (the YAML files under configs/05_asr/)."""

    training: TrainerConfig
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batches: BatchConfig = field(default_factory=BatchConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    checkpoint: str = "asr_model.pt"  # the trained model, for grading
    trainer_checkpoint: str = "asr_training.pt"  # optimizer and progress, to resume a run
    num_threads: int | None = None  # torch.set_num_threads on the CPU; None keeps torch's choice
    description: str = ""


def load_run_config(size: str) -> ASRRunConfig:
    """Read ``configs/05_asr/<size>.yaml`` (smoke, full, librispeech_gpu, ...)."""
    return load_config(config_path("05_asr", size), ASRRunConfig)


def model_kwargs(config: ASRRunConfig, vocab_size: int) -> dict:
    """Return the keyword arguments of EncoderDecoderTransformer for this run."""
    return {"vocab_size": vocab_size, **asdict(config.model)}


class SpeechBatches:
    """Training batches by number, in the form the trainer requests: ``batches(index)``.

    Each epoch is one pass of a LengthBucketSampler over the dataset with its own seed, so
    batch `index` is always the same batch, and a resumed run continues where it stopped.
    Epochs differ in their number of batches, because a batch holds as many utterances as
    fit in max_frames. With config.shortest_first, epoch 0 is instead the batches of that
    sampler sorted by their longest utterance.
    """

    def __init__(self, dataset: SpeechDataset, config: BatchConfig, seed: int = 0):
        self.dataset = dataset
        self.shortest_first = config.shortest_first
        self.sampler = LengthBucketSampler(dataset.num_frames, max_frames=config.max_frames,
                                           pool_factor=config.pool_factor, seed=seed)
        self._epoch = -1
        self._order: list[list[int]] = []
        self._epoch_starts = [0]  # the index of the first batch of epochs 0, 1, ...

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Return the index lists of the batches of `epoch`."""
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._order = list(self.sampler)
            if epoch == 0 and self.shortest_first:
                self._order.sort(key=lambda batch: max(self.dataset.num_frames[i] for i in batch))
            self._epoch = epoch
        return self._order

    def __len__(self) -> int:
        """Return the number of batches in the first epoch (later ones differ by a few)."""
        return len(self.epoch_batches(0))

    def locate(self, index: int) -> tuple[int, int]:
        """Return (epoch, position in that epoch) of batch `index` of the run."""
        if index < 0:
            raise IndexError(f"batch index must be non-negative, got {index}")
        while self._epoch_starts[-1] <= index:
            epoch = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + len(self.epoch_batches(epoch)))
        epoch = bisect.bisect_right(self._epoch_starts, index) - 1
        return epoch, index - self._epoch_starts[epoch]

    def __call__(self, index: int) -> SpeechBatch:
        epoch, position = self.locate(index)
        indices = self.epoch_batches(epoch)[position]
        return collate_speech([self.dataset[i] for i in indices])


def speech_loss(normalize: Callable[[Tensor, Tensor], Tensor], augment: nn.Module,
                joint_loss: Callable, config: LossConfig) -> Callable[[nn.Module, SpeechBatch], Tensor]:
    """Return ``loss_fn(model, batch)`` for the trainer: normalise, augment, run the model, joint loss.

    normalize(features, lengths), augment (SpecAugment, applied only while the model trains)
    and joint_loss are the notebook's components. While the model trains, a share
    config.decoder_input_dropout of the transcript characters fed to the decoder become
    UNK_ID, drawn from torch's global generator, which the trainer seeds and checkpoints.
    """
    def loss_fn(model: nn.Module, batch: SpeechBatch) -> Tensor:
        features = normalize(batch.features, batch.feature_lengths)
        augment.train(model.training)
        features = augment(features)
        tokens = batch.tokens
        if model.training and config.decoder_input_dropout > 0:
            dropped = (torch.rand(tokens.shape, device=tokens.device) < config.decoder_input_dropout)
            tokens = tokens.masked_fill(dropped & (tokens != PAD_ID), UNK_ID)
        decoder_logits, ctc_logits, memory_lengths = model(features, batch.feature_lengths, tokens)
        loss, _, _ = joint_loss(decoder_logits.float(), ctc_logits.float(), memory_lengths, batch,
                                ctc_weight=config.ctc_weight, label_smoothing=config.label_smoothing)
        return loss

    return loss_fn


def dev_cer(dataset: SpeechDataset, normalize: Callable[[Tensor, Tensor], Tensor], transcribe: Callable,
            tokenizer, max_frames: int) -> Callable[[nn.Module], dict[str, float]]:
    """Return ``evaluate(model)`` for the trainer: {"dev_cer": greedy-decoding CER on `dataset`}."""
    def evaluate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        references, hypotheses = [], []
        for batch in evaluation_batches(dataset, max_frames):
            batch = batch.to(device)
            features = normalize(batch.features, batch.feature_lengths)
            hypotheses += transcribe(model, features, batch.feature_lengths, tokenizer)
            references += batch.transcripts
        return {"dev_cer": character_error_rate(references, hypotheses)}

    return evaluate
