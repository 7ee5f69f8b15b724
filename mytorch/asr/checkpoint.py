"""Save and load the trained speech recogniser, score it on a split, and grade its quality.

A checkpoint is a plain dict that ``torch.load(..., weights_only=True)`` reads without running
any code: the format name, the keyword arguments of EncoderDecoderTransformer and its
state_dict. The model class is passed in, so a notebook loads the checkpoint into its own
implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from mytorch.asr.metrics import SplitResult
from mytorch.asr.pipeline import evaluation_batches
from mytorch.data.speech import SpeechDataset

CHECKPOINT_FORMAT = "mytorch-asr-1"

# (maximum CER, points) from the best tier down: the quality cell of notebook 05 awards the
# points of the first tier whose maximum the test CER does not exceed, and 0 below the last.
QUALITY_TIERS: tuple[tuple[float, float], ...] = ((0.15, 10.0), (0.25, 7.0), (0.40, 4.0), (0.60, 2.0))


class CheckpointError(RuntimeError):
    """A checkpoint file exists but is not one this notebook's model can load."""


def save_checkpoint(path: str | Path, model: nn.Module, model_kwargs: dict,
                    dtype: torch.dtype | None = None) -> Path:
    """Write `model`'s state_dict and the keyword arguments that rebuild it to `path`.

    With `dtype` (for example torch.float16), floating-point tensors are stored in that type
    to make the file smaller; loading casts them back to the model's dtype.
    """
    state = {
        name: tensor.detach().to(dtype) if dtype is not None and tensor.is_floating_point() else tensor.detach()
        for name, tensor in model.state_dict().items()
    }
    content = {"format": CHECKPOINT_FORMAT, "model_kwargs": dict(model_kwargs), "state_dict": state}
    path = Path(path)
    torch.save(content, path)
    return path


def load_checkpoint(path: str | Path, model_class: type[nn.Module]) -> nn.Module:
    """Build `model_class` from the checkpoint at `path`, load its weights and return it in eval mode.

    Raises FileNotFoundError when the file is missing, and CheckpointError when it cannot be
    read with weights_only=True or its weights do not fit the model that model_class builds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path.name} not found in {path.resolve().parent}: the training cell writes "
            f"it when it finishes, so run that cell (with SIZE = \"full\" for a graded model) and fix "
            f"any error it raises, then submit {path.name} beside the notebook"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(
            f"{path} is not a checkpoint that torch.load can read with weights_only=True: {error}"
        ) from None

    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a checkpoint of notebook 05 (expected a dict with format "
            f"{CHECKPOINT_FORMAT!r}); save it with mytorch.asr.checkpoint.save_checkpoint"
        )
    kwargs = content["model_kwargs"]
    try:
        model = model_class(**kwargs)
    except TypeError as error:
        raise CheckpointError(f"{path}: {model_class.__name__}(**{kwargs}) failed: {error}") from None
    try:
        model.load_state_dict(content["state_dict"], strict=True)
    except RuntimeError as error:
        first_lines = "\n".join(str(error).splitlines()[:6])
        raise CheckpointError(
            f"{path} does not fit {model_class.__name__}(**{kwargs}); was it trained with "
            f"another version of the model's code?\n{first_lines}"
        ) from None
    return model.eval()


def transcribe_dataset(model: nn.Module, dataset: SpeechDataset,
                       normalize: Callable[[Tensor, Tensor], Tensor], transcribe: Callable,
                       tokenizer, max_frames: int = 16000, **decode_options) -> dict[str, str]:
    """Decode every utterance of `dataset`; return utterance id -> hypothesis.

    normalize(features, lengths) and transcribe(model, features, lengths, tokenizer,
    **decode_options) are the notebook's functions. Batches hold at most `max_frames`
    padded frames, utterances of similar length together.
    """
    device = next(model.parameters()).device
    hypotheses = {}
    for batch in evaluation_batches(dataset, max_frames):
        batch = batch.to(device)
        features = normalize(batch.features, batch.feature_lengths)
        texts = transcribe(model, features, batch.feature_lengths, tokenizer, **decode_options)
        hypotheses.update(zip(batch.ids, texts))
    return hypotheses


def score_split(name: str, dataset: SpeechDataset, hypotheses: dict[str, str]) -> SplitResult:
    """Return the CER and WER of `hypotheses` (utterance id -> text) on every utterance of `dataset`."""
    references = [u.transcript for u in dataset.utterances]
    return SplitResult.score(name, references, [hypotheses[u.id] for u in dataset.utterances])


def quality_points(cer: float, tiers: Sequence[tuple[float, float]] = QUALITY_TIERS) -> float:
    """Return the points of the first tier (maximum CER, points) that `cer` meets, else 0.0."""
    for max_cer, points in tiers:
        if cer <= max_cer:
            return float(points)
    return 0.0
