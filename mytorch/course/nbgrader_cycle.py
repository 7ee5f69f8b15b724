"""The nbgrader command-line cycle on a throwaway course folder.

generate_assignment, submissions placed under ``autograder/submitted/``, autograde and
export, each run as the nbgrader command an instructor would type, with the course's
``autograder/nbgrader_config.py``. Used by the tests of every notebook, and by anyone who
wants to see how a notebook grades without touching the real gradebook.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mytorch.course import AUTOGRADER_DIR, solution_notebook
from mytorch.course.build import grade_id, read_notebook


@dataclass(frozen=True)
class CellScore:
    score: float
    max_score: float


class ThrowawayCourse:
    """An nbgrader course under `root` holding copies of the solution folders named."""

    def __init__(self, root: Path, assignments: list[str]):
        self.root = Path(root)
        self.assignments = list(assignments)
        for name in self.assignments:
            shutil.copytree(solution_notebook(name).parent, self.root / "solutions" / name)

    def nbgrader(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run one nbgrader command on this course; raise with its output if it fails."""
        command = [
            sys.executable, "-m", "nbgrader", *args,
            f"--CourseDirectory.root={self.root}",
            f"--CourseDirectory.db_url=sqlite:///{self.root / 'gradebook.db'}",
        ]
        # nbgrader runs `alembic` from PATH the first time it creates a gradebook.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.pop("MYTORCH_GRADING", None)  # each notebook's setup cell switches grading mode on
        result = subprocess.run(command, cwd=AUTOGRADER_DIR, env=env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def generate(self) -> None:
        for name in self.assignments:
            self.nbgrader("generate_assignment", name, "--force")

    def release_notebook(self, name: str) -> nbformat.NotebookNode:
        return read_notebook(self.root / "notebooks" / name / f"{name}.ipynb")

    def submit(self, student: str, name: str, notebook: nbformat.NotebookNode,
               extra_files: dict[str, Path] | None = None) -> Path:
        """Place a submission where ``nbgrader autograde`` looks for it."""
        folder = self.root / "autograder" / "submitted" / student / name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / f"{name}.ipynb")
        for filename, source in (extra_files or {}).items():
            shutil.copy2(source, folder / filename)
        return folder

    def autograde(self, name: str) -> None:
        self.nbgrader("autograde", name, "--force")

    def scores(self, name: str, student: str) -> dict[str, CellScore]:
        """Return the score of every graded cell of one student's notebook, by grade_id."""
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gradebook:
            notebook = gradebook.find_submission_notebook(name, name, student)
            return {
                grade.name: CellScore(float(grade.score), float(grade.max_score))
                for grade in notebook.grades
            }

    def export(self) -> list[dict[str, str]]:
        """Run ``nbgrader export`` and return the rows of its CSV."""
        output = self.root / "grades.csv"
        self.nbgrader("export", f"--to={output}")
        with output.open(newline="") as stream:
            return list(csv.DictReader(stream))


def solution_submission(name: str, release: nbformat.NotebookNode,
                        replacements: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Return the release notebook with every answer cell filled in as a student would.

    Answers come from the solution notebook, except the cells named in `replacements`
    (grade_id to source), which get that source instead.
    """
    replacements = dict(replacements or {})
    answers = {grade_id(cell): cell.source for cell in read_notebook(solution_notebook(name)).cells
               if grade_id(cell)}
    submission = nbformat.from_dict(release)
    for cell in submission.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = replacements.pop(meta["grade_id"], answers[meta["grade_id"]])
    if replacements:
        raise KeyError(f"{name} has no answer cell named {', '.join(replacements)}")
    return submission
