"""Feedback that keeps hidden tests hidden.

nbgrader's own feedback is the autograded notebook rendered as HTML, so it shows the code of
the hidden tests and the tracebacks through them. Here the autograded notebook is first
turned into a student's view, then rendered with nbgrader's feedback template and scores:

- a test cell shows the release's code (visible tests only) and, when it failed, only the
  error's type and message, without the traceback;
- any output line that repeats a line of a hidden test (a student's code can print the code
  it was called from) is replaced by a marker, in every cell.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat.notebooknode import NotebookNode, from_dict
from traitlets.config import Config

import nbgrader
from nbgrader.preprocessors import GetGrades

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
REDACTED = "[hidden test code]"
MESSAGE_LIMIT = 600  # characters of a failed test's message shown to the student
OUTPUT_LIMIT = 20000  # characters of any other output shown
MIN_REDACTED_LENGTH = 8  # shorter hidden lines (")", "else:") are too common to redact

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_lines(source_notebook: NotebookNode) -> list[str]:
    """Return the stripped lines between the hidden-test markers of every test cell."""
    lines: list[str] = []
    for cell in source_notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith(BEGIN_HIDDEN):
                inside = True
            elif stripped.startswith(END_HIDDEN):
                inside = False
            elif inside and len(stripped) >= MIN_REDACTED_LENGTH:
                lines.append(stripped)
    return sorted(set(lines), key=len, reverse=True)


def redact(text: str, hidden: list[str]) -> str:
    text = _ANSI.sub("", text)
    for line in hidden:
        if line in text:
            text = text.replace(line, REDACTED)
    return text


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def _failure_output(outputs: list, hidden: list[str]) -> NotebookNode | None:
    """Return the test's first error as an output with its message only, or None if it passed."""
    for output in outputs:
        if output.get("output_type") == "error":
            ename = redact(str(output.get("ename", "Error")), hidden)
            evalue = _truncate(redact(str(output.get("evalue", "")), hidden), MESSAGE_LIMIT)
            return from_dict({"output_type": "error", "ename": ename, "evalue": evalue,
                              "traceback": [f"{ename}: {evalue}"]})
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = _truncate(redact(output.get("text", ""), hidden), MESSAGE_LIMIT)
            return from_dict({"output_type": "stream", "name": "stderr", "text": text})
    return None


def _clean_output(output: NotebookNode, hidden: list[str]) -> NotebookNode:
    output = from_dict(dict(output))
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = _truncate(redact(output.get("text", ""), hidden), OUTPUT_LIMIT)
    elif kind == "error":
        output["evalue"] = _truncate(redact(str(output.get("evalue", "")), hidden), MESSAGE_LIMIT)
        output["traceback"] = [_truncate(redact(line, hidden), OUTPUT_LIMIT)
                               for line in output.get("traceback", [])[-20:]]
    elif kind in ("execute_result", "display_data"):
        data = dict(output.get("data", {}))
        for mime, value in list(data.items()):
            if mime.startswith("text/") and isinstance(value, str):
                data[mime] = _truncate(redact(value, hidden), OUTPUT_LIMIT)
        output["data"] = data
    return output


def student_view(autograded: NotebookNode, release: NotebookNode,
                 hidden: list[str]) -> NotebookNode:
    """Return a copy of `autograded` with hidden tests and their traces removed."""
    visible = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in release.cells
               if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    notebook = nbformat.from_dict(autograded)
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        is_test = meta.get("grade") and not meta.get("solution") and cell.cell_type == "code"
        if is_test:
            source = visible.get(meta.get("grade_id"), "")
            if BEGIN_HIDDEN in cell.source or source != cell.source:
                source = source.rstrip() + "\n# (Hidden tests also ran here; their code is not shown.)"
            cell.source = source
            failure = _failure_output(cell.get("outputs", []), hidden)
            cell.outputs = [failure] if failure is not None else []
        elif cell.cell_type == "code":
            cell.outputs = [_clean_output(o, hidden) for o in cell.get("outputs", [])]
        else:
            cell.source = redact(cell.source, hidden)
    return notebook


class _MissingAltTextFilter(logging.Filter):
    """A log filter that drops nbconvert's warning about images without alternative text.

    Matplotlib figures in notebook outputs have none, and nbconvert (7.17) fills in a default
    text, so the warning would repeat once per student in a class run and help no instructor.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Alternative text is missing")


@functools.cache
def _exporter() -> HTMLExporter:
    """nbgrader's feedback exporter, built once per process (its templates compile slowly)."""
    package = Path(nbgrader.__file__).parent
    templates = package / "server_extensions" / "formgrader" / "templates"
    css = (package / "server_extensions" / "formgrader" / "static" / "node_modules" /
           "bootstrap" / "dist" / "css")
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(templates)]
    config.HTMLExporter.extra_template_paths = [str(css)]
    exporter = HTMLExporter(config=config)
    exporter.log.addFilter(_MissingAltTextFilter())
    exporter.register_preprocessor(GetGrades(), enabled=True)
    exporter.register_preprocessor(CSSHTMLHeaderPreprocessor(), enabled=True)
    return exporter


def write_feedback(autograded_path: Path, release: NotebookNode, hidden: list[str],
                   db_url: str, assignment: str, student: str, destination: Path) -> Path:
    """Render the student's view of one autograded notebook to `destination` (HTML)."""
    notebook_id = autograded_path.stem
    view = student_view(nbformat.read(autograded_path, as_version=4), release, hidden)
    resources = {"nbgrader": {"student": student, "assignment": assignment,
                              "notebook": notebook_id, "db_url": db_url}}
    html, _ = _exporter().from_notebook_node(view, resources=resources)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(html, encoding="utf-8")
    os.chmod(destination, 0o644)
    return destination
