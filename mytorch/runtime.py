"""Facts about where a notebook runs, and the metrics it reports to the solution run."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

RUN_SIZES = ("smoke", "full")
METRICS_ENV = "MYTORCH_METRICS_FILE"


def is_autograding() -> bool:
    """Tell whether nbgrader is executing the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def on_colab() -> bool:
    """Tell whether the kernel runs on Google Colab."""
    return "google.colab" in sys.modules


def check_run_size(size: str) -> str:
    """Return `size` if it is a known run size, else raise ValueError naming the choices."""
    if size not in RUN_SIZES:
        raise ValueError(f"invalid run size {size!r}: choose one of {', '.join(RUN_SIZES)}")
    return size


def record_metric(name: str, value: float) -> float:
    """Record a named result (perplexity, CER, ...) for the solution run's report.

    The solution run sets ``MYTORCH_METRICS_FILE`` and collects what each notebook records.
    Elsewhere (JupyterLab, Colab, autograding) this only returns `value`.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} is not a finite number: {value}")

    path = os.environ.get(METRICS_ENV)
    if path:
        metrics_file = Path(path)
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        metrics[name] = value
        metrics_file.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return value
