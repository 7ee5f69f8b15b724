"""Cells with the nbgrader metadata the course uses, for writing solution notebooks in code.

A solution notebook is the source of its prose and tests; these helpers only spare an author
the metadata when creating or extending one with nbformat.
"""

from __future__ import annotations

import nbformat


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool,
              points: float | None = None) -> dict:
    metadata = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        metadata["points"] = points
    return {"nbgrader": metadata}


def markdown(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source.strip())


def code(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source.strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


def parameters(source: str) -> nbformat.NotebookNode:
    """The cell papermill injects the run size into (tagged ``parameters``)."""
    return code(source, tags=["parameters"])


def answer(grade_id: str, source: str = "") -> nbformat.NotebookNode:
    """An autograded answer cell; for a registered component the build fills in its source."""
    cell = code(source or "# Filled in by `make build` from the reference in mytorch.")
    cell.metadata.update(_nbgrader(grade_id, grade=False, solution=True, locked=False))
    return cell


def tests(grade_id: str, points: float, source: str) -> nbformat.NotebookNode:
    """A locked test cell worth `points`; hidden tests go between the HIDDEN TESTS markers."""
    cell = code(source)
    cell.metadata.update(_nbgrader(grade_id, grade=True, solution=False, locked=True, points=points))
    return cell


def readonly(grade_id: str, source: str, kind: str = "code") -> nbformat.NotebookNode:
    """A locked cell that autograding restores from the source (imports, given helpers, prose)."""
    cell = code(source) if kind == "code" else markdown(source)
    cell.metadata.update(_nbgrader(grade_id, grade=False, solution=False, locked=True))
    return cell


def new_notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook
