"""Checks of the student's environment, each with the fix for what fails (used by 00_setup)."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass

MIN_PYTHON = (3, 10)
SPEECH_SPLITS = ("train", "dev", "test", "test_unseen_voices")

# Packages the notebooks import, with the distribution name pip knows them by.
REQUIRED_PACKAGES = {
    "numpy": "numpy",
    "torch": "torch",
    "torchaudio": "torchaudio",
    "matplotlib": "matplotlib",
    "ipywidgets": "ipywidgets",
    "jiwer": "jiwer",
    "tokenizers": "tokenizers",
    "yaml": "PyYAML",
    "tqdm": "tqdm",
}


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        line = f"[{mark}] {self.name}: {self.detail}"
        return line if self.ok else f"{line}\n       fix: {self.fix}"


def check_python() -> CheckResult:
    version = platform.python_version()
    ok = sys.version_info[:2] >= MIN_PYTHON
    wanted = ".".join(map(str, MIN_PYTHON))
    return CheckResult("Python", ok, version, f"use Python {wanted} or newer for the course kernel")


def check_package(module: str, distribution: str) -> CheckResult:
    try:
        importlib.import_module(module)
    except Exception as error:  # a broken install raises more than ImportError (OSError, ...)
        return CheckResult(
            distribution, False, f"cannot be imported ({type(error).__name__}: {error})",
            "run `make setup` in the course folder, or on Colab re-run the first cell",
        )
    return CheckResult(distribution, True, importlib.metadata.version(distribution))


def check_accelerator() -> CheckResult:
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        bf16 = "bf16 supported" if torch.cuda.is_bf16_supported() else "fp16 only"
        return CheckResult("accelerator", True, f"GPU {name} ({bf16})")
    return CheckResult(
        "accelerator", True,
        "CPU only: every notebook runs, training takes longer "
        "(on Colab: Runtime > Change runtime type > GPU)",
    )


def check_bundled_data() -> CheckResult:
    """Open every bundled corpus the notebooks use, as the notebooks would."""
    from mytorch.data.paths import DataNotFoundError, data_root
    from mytorch.data.speech import load_manifest
    from mytorch.data.text import load_text
    from mytorch.data.tokenizers import load_tokenizer

    try:
        characters = sum(len(load_text("web", split)) for split in ("train", "validation", "test"))
        load_tokenizer("web_char")
        utterances = {split: len(load_manifest(split)) for split in SPEECH_SPLITS}
    except DataNotFoundError as error:
        return CheckResult("bundled data", False, str(error).splitlines()[0],
                           "clone the whole course repository (git clone), not only the notebooks")

    speech = ", ".join(f"{count} {split}" for split, count in utterances.items())
    return CheckResult(
        "bundled data", True,
        f"{data_root()}: World English Bible ({characters / 1e6:.1f}M characters), "
        f"speech utterances: {speech}",
    )


def run_checks() -> list[CheckResult]:
    """Run every check; later checks that need torch are skipped if torch is missing."""
    results = [check_python()]
    results += [check_package(module, dist) for module, dist in REQUIRED_PACKAGES.items()]
    if all(r.ok for r in results if r.name in ("torch",)):
        results.append(check_accelerator())
    results.append(check_bundled_data())
    return results
