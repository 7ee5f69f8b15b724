"""Facts about where a notebook runs, and the metrics it reports to the solution run."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

RUN_SIZES = ("smoke", "full")
METRICS_ENV = "MYTORCH_METRICS_FILE"
# Programs that execute notebooks with no one at the keyboard, as they appear in the command
# line of the kernel's parent process.
NOTEBOOK_RUNNERS = ("papermill", "nbclient", "nbconvert", "nbgrader")


def is_autograding() -> bool:
    """Tell whether nbgrader is executing the notebook (autograde or validate)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def on_colab() -> bool:
    """Tell whether the kernel runs on Google Colab."""
    return "google.colab" in sys.modules


def runs_without_frontend() -> bool:
    """Tell whether no person can use a widget in this kernel.

    True under nbgrader, in the course's solution run (it sets the metrics file) and when the
    kernel's parent process is a notebook runner (read from /proc, so on Linux only).
    """
    if is_autograding() or os.environ.get(METRICS_ENV):
        return True
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return any(runner in parent for runner in NOTEBOOK_RUNNERS)


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
