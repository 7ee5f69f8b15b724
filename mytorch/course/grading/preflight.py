"""Pre-flight check and repair of a submitted notebook against the release.

nbgrader needs every graded cell of the release in the submission, once, with its
``grade_id``; otherwise it fails the notebook or grades the wrong cell. `check_notebook`
brings a submission into that shape and reports what it changed:

- a notebook that does not parse is rejected;
- of cells that share a ``grade_id``, the last keeps it and the others become ordinary
  cells, as nbgrader's DeduplicateIds does;
- a ``grade_id`` the release does not have is removed;
- cells whose nbgrader metadata was stripped (some editors and Colab round trips do that)
  get it back where the match is unambiguous: a locked or test cell by its source, identical
  to the release's; an answer cell by position, as the only code cell between its matched
  neighbours, or the only one there that defines the names the release's cell defines;
- a graded cell still missing is put back from the release after its predecessor, so its
  tests run (nbgrader replaces the test code by the instructor's, hidden tests included);
- the nbgrader metadata of every graded cell is set to the release's.

The student's code is never changed: an unmatched cell still runs, in place, as an
ordinary cell.
"""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4.nbbase import random_cell_id


@dataclass
class PreflightResult:
    """The outcome for one notebook: `status` is ok, repaired, rejected or missing."""

    notebook: str
    status: str
    repairs: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    reason: str = ""
    repaired: nbformat.NotebookNode | None = None


def _grade_id(cell: dict) -> str | None:
    nbgrader = cell.get("metadata", {}).get("nbgrader")
    if isinstance(nbgrader, dict):
        value = nbgrader.get("grade_id")
        return value if isinstance(value, str) and value else None
    return None


def _kind(cell: dict) -> str:
    meta = cell["metadata"]["nbgrader"]
    if meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test"
    return "locked"


def _normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _label(position: int, cell: dict) -> str:
    grade_id = _grade_id(cell)
    return f"cell {position + 1} ('{grade_id}')" if grade_id else f"cell {position + 1}"


# Larger notebook files are rejected unread: outputs and images of a course notebook stay
# well below this, and nbgrader would hold the whole file in memory several times.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024


def read_submission(path: Path) -> nbformat.NotebookNode:
    """Parse a submitted notebook; raise ValueError naming what is wrong with it."""
    if path.is_symlink():
        raise ValueError("a symbolic link, not a notebook file")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"too large: {size} bytes, the limit is {MAX_NOTEBOOK_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at line {error.lineno}, column "
                         f"{error.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError("not a notebook: no list of cells")
    if not isinstance(data.get("metadata", {}), dict):
        raise ValueError(f"invalid notebook metadata: a JSON object is expected, found "
                         f"{type(data['metadata']).__name__}. Submit the notebook as Jupyter saved it")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises several kinds on malformed notebooks
        raise ValueError(f"not a valid notebook ({type(error).__name__}: {error})") from None
    for position, cell in enumerate(notebook.cells):
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"cell {position + 1} has an invalid cell_type {cell.get('cell_type')!r}")
        if not isinstance(cell.get("source", ""), str):
            raise ValueError(f"cell {position + 1} has no text source")
        cell.setdefault("metadata", {})
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return notebook


def check_notebook(name: str, path: Path | None,
                   release: nbformat.NotebookNode) -> PreflightResult:
    """Check and repair the submitted notebook `path` against `release` (see module doc)."""
    if path is None or not path.is_file():
        return PreflightResult(name, "missing", reason="no such notebook in the submission")
    try:
        notebook = read_submission(path)
    except ValueError as error:
        return PreflightResult(name, "rejected", reason=str(error))

    result = PreflightResult(name, "ok")
    graded = [cell for cell in release.cells if _grade_id(cell)]
    release_ids = {_grade_id(cell): cell for cell in graded}
    cells = notebook.cells

    _drop_duplicates_and_unknown(cells, release_ids, result)
    positions = {_grade_id(cell): i for i, cell in enumerate(cells) if _grade_id(cell)}
    matched = {grade_id: cells[i] for grade_id, i in positions.items()}

    missing = [cell for cell in graded if _grade_id(cell) not in matched]
    if missing:
        _match_stripped(cells, graded, matched, result)

    _restore_missing(cells, graded, matched, result)
    for grade_id, cell in matched.items():
        _set_release_metadata(cell, release_ids[grade_id], result)
    _ensure_cell_ids(notebook)

    if result.repairs or result.unresolved:
        result.status = "repaired"
    result.repaired = notebook
    return result


def _drop_duplicates_and_unknown(cells: list, release_ids: dict, result: PreflightResult) -> None:
    seen: dict[str, list[int]] = {}
    for position, cell in enumerate(cells):
        grade_id = _grade_id(cell)
        if grade_id is None:
            if "nbgrader" in cell.metadata:
                # Metadata without a grade_id would only make nbgrader's schema check fail.
                del cell.metadata["nbgrader"]
            continue
        if grade_id not in release_ids:
            del cell.metadata["nbgrader"]
            result.repairs.append(f"cell {position + 1} has grade_id '{grade_id}', which the "
                                  f"release does not have; it runs as an ordinary cell")
            continue
        seen.setdefault(grade_id, []).append(position)

    for grade_id, places in seen.items():
        if len(places) < 2:
            continue
        for position in places[:-1]:
            del cells[position].metadata["nbgrader"]
        listed = ", ".join(str(p + 1) for p in places)
        result.repairs.append(
            f"grade_id '{grade_id}' is duplicated in cells {listed}: cell {places[-1] + 1} is "
            f"graded as '{grade_id}', the others run as ordinary cells"
        )


def _match_stripped(cells: list, graded: list, matched: dict, result: PreflightResult) -> None:
    """Give cells without nbgrader metadata the grade_id of the release cell they match."""
    free = {i for i, cell in enumerate(cells) if _grade_id(cell) is None}
    position_of = {id(cell): i for i, cell in enumerate(cells)}
    repaired: list[str] = []

    # Locked and test cells: identical source, unique among the free cells.
    for cell in graded:
        grade_id = _grade_id(cell)
        if grade_id in matched or _kind(cell) == "answer":
            continue
        wanted = _normalized(cell.source)
        candidates = [i for i in sorted(free)
                      if cells[i].cell_type == cell.cell_type and _normalized(cells[i].source) == wanted]
        if len(candidates) == 1:
            matched[grade_id] = cells[candidates[0]]
            free.discard(candidates[0])
            repaired.append(grade_id)
        elif len(candidates) > 1:
            listed = ", ".join(str(i + 1) for i in candidates)
            result.unresolved.append(f"'{grade_id}' has no metadata and cells {listed} all "
                                     f"match it, so none of them was taken")

    # Answer cells: the free code cells between the matched neighbours.
    for index, cell in enumerate(graded):
        grade_id = _grade_id(cell)
        if grade_id in matched or _kind(cell) != "answer":
            continue
        before = [position_of[id(matched[_grade_id(c)])] for c in graded[:index]
                  if _grade_id(c) in matched]
        after = [position_of[id(matched[_grade_id(c)])] for c in graded[index + 1:]
                 if _grade_id(c) in matched]
        low = max(before) if before else -1
        high = min(after) if after else len(cells)
        candidates = [i for i in sorted(free) if low < i < high and cells[i].cell_type == "code"]
        if len(candidates) > 1:
            names = _defined_names(cell.source)
            defining = [i for i in candidates if names and names <= _defined_names(cells[i].source)]
            if len(defining) == 1:
                candidates = defining
        if len(candidates) == 1:
            matched[grade_id] = cells[candidates[0]]
            free.discard(candidates[0])
            repaired.append(grade_id)
        elif candidates:
            listed = ", ".join(str(i + 1) for i in candidates)
            result.unresolved.append(
                f"answer cell '{grade_id}' has no metadata and could be any of cells {listed}; "
                f"their code still runs in order, and the release's empty cell was put back "
                f"before them"
            )

    if repaired:
        result.repairs.append(
            f"nbgrader metadata was missing; matched to the release: {', '.join(repaired)}"
        )


def _restore_missing(cells: list, graded: list, matched: dict, result: PreflightResult) -> None:
    for index, cell in enumerate(graded):
        grade_id = _grade_id(cell)
        if grade_id in matched:
            continue
        restored = copy.deepcopy(cell)
        restored.id = random_cell_id()
        if restored.cell_type == "code":
            restored.outputs = []
            restored.execution_count = None
        previous = [matched[_grade_id(c)] for c in graded[:index] if _grade_id(c) in matched]
        position = 0
        if previous:
            position = next(i for i, c in enumerate(cells) if c is previous[-1]) + 1
        cells.insert(position, restored)
        matched[grade_id] = restored
        kind = {"answer": "answer cell", "test": "test cell", "locked": "read-only cell"}[_kind(cell)]
        result.repairs.append(f"{kind} '{grade_id}' was missing; put back from the release")


def _set_release_metadata(cell: dict, release_cell: dict, result: PreflightResult) -> None:
    wanted = copy.deepcopy(release_cell.metadata["nbgrader"])
    current = cell.metadata.get("nbgrader")
    if current is not None and current != wanted:
        keys = ("grade", "solution", "locked", "points", "task")
        changed = [k for k in keys if current.get(k) != wanted.get(k)]
        if changed:
            result.repairs.append(
                f"nbgrader metadata of '{wanted['grade_id']}' differed from the release "
                f"({', '.join(changed)}); set to the release's"
            )
    cell.metadata["nbgrader"] = wanted
    for key in ("editable", "deletable"):
        if key in release_cell.metadata:
            cell.metadata[key] = release_cell.metadata[key]


def _ensure_cell_ids(notebook: nbformat.NotebookNode) -> None:
    """Give every cell a unique id (nbformat 4.5), as mixing cells from the release needs."""
    seen: set[str] = set()
    for cell in notebook.cells:
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            cell["id"] = random_cell_id()
        seen.add(cell["id"])
    if (notebook.nbformat, notebook.nbformat_minor) < (4, 5):
        notebook.nbformat_minor = 5


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    nbformat.write(notebook, path)
