"""The solution run: execute every solution notebook in order and report what each reached.

Each notebook runs with papermill in a work folder of its own under the run folder (where it
writes checkpoints and figures), with the run size injected into the cell tagged
``parameters``. The executed notebooks, and ``report.md`` and ``report.json``,
go to ``runs/<timestamp>/``. A notebook that fails is reported with the cell that failed,
and the run goes on to the next one.

What a notebook shows in cells tagged ``report`` (printed text, tables, figures) is copied
into ``report.md`` under the notebook's name: samples from the decoders, a CER table, the
loss curve. Metrics come from `mytorch.runtime.record_metric`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
import papermill

from mytorch.course import REPO_ROOT, SOLUTIONS_DIR, notebook_names, solution_notebook
from mytorch.runtime import METRICS_ENV, check_run_size

log = logging.getLogger(__name__)


@dataclass
class NotebookResult:
    status: str  # "ok" or "failed"
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    shown: list[str] = field(default_factory=list)  # Markdown of the `report` cells' outputs


REPORT_TAG = "report"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def report_outputs(executed: Path, figures_dir: Path) -> list[str]:
    """Turn the outputs of the cells tagged ``report`` into Markdown; save their figures as PNG."""
    if not executed.is_file():
        return []

    lines = []
    cells = nbformat.read(executed, as_version=4).cells
    tagged = [cell for cell in cells if REPORT_TAG in cell.metadata.get("tags", [])]
    for cell_number, cell in enumerate(tagged, start=1):
        for output_number, output in enumerate(cell.get("outputs", []), start=1):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                # A live widget, such as a tqdm bar: its text form is a stale first frame.
                continue
            if output.output_type == "stream" and output.name == "stdout":
                lines += ["```text", output.text.rstrip(), "```", ""]
            elif "image/png" in data:
                figures_dir.mkdir(exist_ok=True)
                figure = figures_dir / f"{cell_number}-{output_number}.png"
                figure.write_bytes(base64.b64decode(data["image/png"]))
                lines += [f"![figure]({figure.relative_to(executed.parent)})", ""]
            elif "text/markdown" in data:
                lines += [data["text/markdown"].rstrip(), ""]
            elif "text/html" in data:
                lines += [data["text/html"].rstrip(), ""]  # Markdown renders inline HTML as it is
            elif "text/plain" in data:
                lines += ["```text", data["text/plain"].rstrip(), "```", ""]
    return lines


def has_parameters_cell(path: Path) -> bool:
    notebook = nbformat.read(path, as_version=4)
    return any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)


def describe_failure(error: papermill.PapermillExecutionError, executed: Path) -> str:
    """Name the failing cell by its position in the solution notebook (from 1) and its grade_id."""
    if not executed.is_file():
        return f"{error.ename}: {error.evalue}"

    # Papermill adds error banners and the injected-parameters cell; count the notebook's own.
    skipped_tags = {"papermill-error-cell-tag", "injected-parameters"}
    cells = nbformat.read(executed, as_version=4).cells
    executed_cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    cell = executed_cells[error.cell_index]
    own_cells = [c for c in cells if not skipped_tags & set(c.metadata.get("tags", []))]
    position = next(i for i, c in enumerate(own_cells, start=1) if c is cell)

    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    label = f"cell {position} ('{grade_id}')" if grade_id else f"cell {position}"
    return f"{label}: {error.ename}: {error.evalue}"


def run_notebook(name: str, size: str, run_dir: Path, solutions_dir: Path) -> NotebookResult:
    source = solution_notebook(name, solutions_dir)
    executed = run_dir / f"{name}.ipynb"
    metrics_file = run_dir / f"{name}.metrics.json"
    work_dir = run_dir / name
    work_dir.mkdir()
    parameters = {"SIZE": size} if has_parameters_cell(source) else {}

    # The kernel inherits this process's environment: metrics go to the run folder, and the
    # venv's bin/ comes first on PATH so that subprocesses find its executables.
    os.environ[METRICS_ENV] = str(metrics_file)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(source), str(executed), parameters=parameters, cwd=str(work_dir),
            kernel_name="python3", progress_bar=True, log_output=False,
        )
    except papermill.PapermillExecutionError as failure:
        error = describe_failure(failure, executed)
    finally:
        del os.environ[METRICS_ENV]
    seconds = round(time.perf_counter() - start, 1)

    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    shown = report_outputs(executed, run_dir / f"{name}-figures")
    return NotebookResult("failed" if error else "ok", seconds, metrics, error, shown)


def write_report(results: dict[str, NotebookResult], size: str, run_dir: Path) -> None:
    report = {name: asdict(result) for name, result in results.items()}
    for entry in report.values():
        del entry["shown"]
        if entry["error"] is None:
            del entry["error"]
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    lines = [f"# Solution run ({size})", ""]
    if size == "smoke":
        lines += ["A smoke run trains tiny models for seconds to check that every cell runs. Its "
                  "perplexities, error rates and samples say nothing about what the course reaches; "
                  "`make run` (SIZE=full) measures that.", ""]
    lines += ["| notebook | status | seconds | metrics |", "|---|---|---:|---|"]
    for name, result in results.items():
        metrics = ", ".join(f"{key} = {value:.4g}" for key, value in result.metrics.items())
        lines.append(f"| [{name}]({name}.ipynb) | {result.status} | {result.seconds:.1f} | {metrics} |")

    failures = {name: result for name, result in results.items() if result.error}
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- **{name}** failed at {result.error}" for name, result in failures.items()]

    for name, result in results.items():
        if result.shown:
            lines += ["", f"## {name}", "", *result.shown]
    (run_dir / "report.md").write_text("\n".join(lines).rstrip("\n") + "\n")


def solution_run(size: str, only: list[str] | None = None, runs_dir: Path | None = None,
                 solutions_dir: Path = SOLUTIONS_DIR) -> Path:
    """Execute the solution notebooks (all, or those in `only`) and return the run folder."""
    check_run_size(size)
    names = notebook_names(solutions_dir)
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"no solution notebook named {', '.join(unknown)}; the course has {', '.join(names)}")
    names = [name for name in names if not only or name in only]

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (runs_dir or REPO_ROOT / "runs") / stamp
    suffix = 1
    while run_dir.exists():  # two runs started within the same second
        suffix += 1
        run_dir = run_dir.with_name(f"{stamp}-{suffix}")
    run_dir.mkdir(parents=True)

    results = {}
    for name in names:
        log.info("running %s (%s)", name, size)
        results[name] = run_notebook(name, size, run_dir, solutions_dir)
        result = results[name]
        if result.error:
            log.error("%s failed after %.1f s at %s", name, result.seconds, result.error)
        else:
            log.info("%s finished in %.1f s %s", name, result.seconds, result.metrics or "")
        write_report(results, size, run_dir)  # after each notebook, so a crash keeps the rest
    return run_dir
