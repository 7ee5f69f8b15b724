"""The one-source build: reference components -> solution notebooks -> student release.

1. Each graded component's source is copied from its module in `mytorch` into the answer
   cell with its ``grade_id`` in ``solutions/<assignment>/<assignment>.ipynb``, and every
   solution notebook gets the standard setup cell (`mytorch.course.setup_cell`) first.
2. ``nbgrader generate_assignment`` turns each solution folder into its release under
   ``notebooks/``, with the solutions stripped and the hidden tests removed.

With ``check=True`` nothing is written; every generated file that differs from what the build
would write is reported, with the cell that differs.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from mytorch import registry
from mytorch.course import AUTOGRADER_DIR, RELEASE_DIR, notebook_names, solution_notebook
from mytorch.course.setup_cell import SETUP_GRADE_ID, setup_cell
from mytorch.course.sources import component_source

log = logging.getLogger(__name__)

NOTEBOOK_VERSION = 4


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=NOTEBOOK_VERSION)


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    """Serialise a notebook exactly as `nbformat.write` does, so that text comparison is exact."""
    return nbformat.writes(notebook, version=NOTEBOOK_VERSION) + "\n"


def render_solution(name: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """Return solution notebook `name` with its generated cells brought up to date.

    The second value lists the cells that changed, as ``"<file>: cell '<grade_id>'"``.
    """
    path = solution_notebook(name)
    notebook = read_notebook(path)
    changed = []

    expected_setup = setup_cell(name)
    first = notebook.cells[0] if notebook.cells else None
    if first is None or grade_id(first) != SETUP_GRADE_ID:
        notebook.cells.insert(0, expected_setup)
        changed.append(f"{path}: cell '{SETUP_GRADE_ID}' (missing)")
    elif first.source != expected_setup.source or first.metadata != expected_setup.metadata:
        notebook.cells[0] = expected_setup
        changed.append(f"{path}: cell '{SETUP_GRADE_ID}'")

    cells = {grade_id(cell): cell for cell in notebook.cells if grade_id(cell)}
    components = registry.components_of(name) if name in registry.ASSIGNMENTS else ()
    for component in components:
        cell = cells.get(component.grade_id)
        if cell is None:
            raise ValueError(
                f"{path}: no cell with grade_id '{component.grade_id}' for {component.name}; "
                f"add an autograded answer cell with that grade_id"
            )
        source = component_source(component)
        if cell.source != source:
            cell.source = source
            changed.append(f"{path}: cell '{component.grade_id}' ({component.name})")
    return notebook, changed


class BuildError(RuntimeError):
    """Raised after the build has done what it could, listing every notebook it could not build."""


def sync_solutions(check: bool, errors: list[str]) -> list[str]:
    """Bring every solution notebook's generated cells up to date; return what was stale.

    A notebook that cannot be rendered (a reference without a solution region, a missing
    answer cell) is added to `errors` and skipped, so one broken notebook blocks no other.
    """
    stale = []
    for name in notebook_names():
        try:
            notebook, changed = render_solution(name)
        except (ValueError, FileNotFoundError, SyntaxError) as error:
            errors.append(f"{name}: {error}")
            continue
        stale.extend(changed)
        if changed and not check:
            solution_notebook(name).write_text(notebook_text(notebook), encoding="utf-8")
            log.info("updated %s", solution_notebook(name))
    return stale


def generate_release(name: str, course_root: Path) -> Path:
    """Run ``nbgrader generate_assignment`` for `name` in `course_root`; return the release folder.

    `course_root` must hold ``solutions/<name>/``. No gradebook is written.
    """
    command = [
        sys.executable, "-m", "nbgrader", "generate_assignment", name,
        "--force", "--no-db", "--log-level=WARN",
        f"--CourseDirectory.root={course_root}",
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=AUTOGRADER_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result.stderr}")
    return course_root / "notebooks" / name


def diff_cells(expected: Path, actual: Path) -> list[str]:
    """Name the cells that differ between two notebooks, by grade_id where they have one."""
    expected_nb, actual_nb = read_notebook(expected), read_notebook(actual)
    if len(expected_nb.cells) != len(actual_nb.cells):
        return [f"{actual}: {len(actual_nb.cells)} cells, the build writes {len(expected_nb.cells)}"]

    differences = []
    for index, (want, have) in enumerate(zip(expected_nb.cells, actual_nb.cells)):
        if want != have:
            label = grade_id(want) or f"#{index}"
            differences.append(f"{actual}: cell '{label}'")
    return differences or [f"{actual}: notebook metadata or formatting"]


def compare_trees(built: Path, committed: Path) -> list[str]:
    """List the files under `committed` that differ from, lack or add to those under `built`."""
    built_files = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    committed_files = (
        {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
        if committed.is_dir() else set()
    )

    stale = []
    for relative in sorted(built_files | committed_files):
        mine, theirs = built / relative, committed / relative
        if relative not in committed_files:
            stale.append(f"{theirs}: missing")
        elif relative not in built_files:
            stale.append(f"{theirs}: not produced by the build")
        elif not filecmp.cmp(mine, theirs, shallow=False):
            if relative.suffix == ".ipynb":
                stale.extend(diff_cells(mine, theirs))
            else:
                stale.append(f"{theirs}: differs")
    return stale


def build_releases(check: bool, errors: list[str]) -> list[str]:
    """Regenerate ``notebooks/`` from ``solutions/``; return what was stale."""
    stale = []
    with tempfile.TemporaryDirectory(prefix="course-build-") as scratch:
        course_root = Path(scratch)
        solutions = course_root / "solutions"
        solutions.mkdir()

        for name in notebook_names():
            source = solution_notebook(name).parent
            shutil.copytree(source, solutions / name, ignore=_ignore_outputs)
            try:
                if check:
                    # The solution notebook as the build would write it, stale or not.
                    notebook, _ = render_solution(name)
                    (solutions / name / f"{name}.ipynb").write_text(notebook_text(notebook))
                built = generate_release(name, course_root)
            except (ValueError, FileNotFoundError, SyntaxError, RuntimeError) as error:
                if not any(line.startswith(f"{name}: ") for line in errors):
                    errors.append(f"{name}: {error}")
                continue

            committed = RELEASE_DIR / name
            differences = compare_trees(built, committed)
            stale.extend(differences)

            if differences and not check:
                shutil.rmtree(committed, ignore_errors=True)
                shutil.copytree(built, committed)
                log.info("regenerated %s", committed)

        for folder in sorted(RELEASE_DIR.iterdir()) if RELEASE_DIR.is_dir() else []:
            if folder.is_dir() and folder.name not in notebook_names():
                stale.append(f"{folder}: release of a notebook that solutions/ no longer has")
                if not check:
                    shutil.rmtree(folder)
    return stale


def _ignore_outputs(folder: str, names: list[str]) -> list[str]:
    """Leave out what a local run leaves behind in a solution folder."""
    return [n for n in names if n in {".ipynb_checkpoints", "__pycache__"} or n.endswith(".pt")]


def build(check: bool = False) -> list[str]:
    """Run the whole build (or, with `check`, only compare); return every stale file and cell.

    Raises BuildError naming every notebook that could not be built, after building the rest.
    """
    errors: list[str] = []
    stale = sync_solutions(check, errors)
    stale.extend(build_releases(check, errors))
    if errors:
        raise BuildError("could not build:\n" + "\n".join(f"  {line}" for line in errors))
    return stale
