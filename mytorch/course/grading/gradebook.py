"""The real gradebook: only the parent process of a class run writes it.

Workers grade in throwaway gradebooks, and `merge_scores` copies one student's auto scores
and comments into the real one. It keeps nbgrader's rule that a cell with a manual score
needs review again when its auto score changes.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from traitlets.config import Config

log = logging.getLogger(__name__)


def generate_assignment(course: Path, assignment: str, db_url: str, config: Config) -> None:
    """Run nbgrader's GenerateAssignment in this process: release and gradebook cells.

    `course` holds ``solutions/<assignment>/``; the release goes to ``notebooks/``.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = Config(config)
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.source_directory = "solutions"
    config.CourseDirectory.release_directory = "notebooks"
    config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    converter.start()


def assignment_cells(db_url: str, assignment: str) -> dict | None:
    """Return what grading depends on for `assignment` in a gradebook, or None if it is absent."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gradebook:
        try:
            found = gradebook.find_assignment(assignment)
        except MissingEntry:
            return None
        return {
            notebook.name: {
                "grade": sorted((c.name, float(c.max_score)) for c in notebook.grade_cells),
                "source": sorted((c.name, c.checksum or "", c.source) for c in notebook.source_cells),
            }
            for notebook in found.notebooks
        }


def merge_scores(book, assignment: str, student: str, roster: dict[str, str],
                 notebooks: dict[str, dict], timestamp: str | None, flagged: bool) -> None:
    """Write one student's autograde results into the open gradebook `book`.

    `notebooks` maps a notebook name to ``{"scores": {grade_id: score}, "comments":
    {grade_id: comment}}``; a notebook left out (missing or rejected) scores 0 on every cell,
    as nbgrader scores a missing notebook.
    """
    # NOTE: late-submission penalties are not computed here. nbgrader's default plugin
    # applies none; a course that configures a LateSubmissionPlugin must add it.
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        # nbgrader's add_submission makes SQLAlchemy warn about autoflush; it is harmless.
        warnings.simplefilter("ignore", SAWarning)
        book.update_or_create_student(student, **roster)
        extra = {"timestamp": timestamp} if timestamp else {}
        submission = book.update_or_create_submission(assignment, student, **extra)
        for notebook in submission.notebooks:
            result = notebooks.get(notebook.name)
            scores = result["scores"] if result else {}
            comments = result["comments"] if result else {}
            for grade in notebook.grades:
                score = scores.get(grade.name, 0.0) if result else 0.0
                grade.auto_score = score
                grade.needs_manual_grade = grade.manual_score is not None or score is None
            for comment in notebook.comments:
                comment.auto_comment = comments.get(comment.name)
            notebook.flagged = flagged
        book.db.commit()


def has_scores(book, assignment: str, student: str) -> bool:
    """Tell whether the open gradebook `book` has scores for this student's submission."""
    from nbgrader.api import MissingEntry

    try:
        submission = book.find_submission(assignment, student)
    except MissingEntry:
        return False
    return all(grade.auto_score is not None or grade.manual_score is not None
               for notebook in submission.notebooks for grade in notebook.grades)


def export_csv(book, assignment: str, destination: Path) -> Path:
    """Write nbgrader's CSV export of `assignment` (every student) to `destination`."""
    from nbgrader.plugins import CsvExportPlugin

    CsvExportPlugin(to=str(destination), assignment=[assignment]).export(book)
    return destination


class GradingState:
    """Content hashes of the submissions last graded, with their reports, per gradebook.

    Kept in ``grading-state.json`` in the class-runs folder, under the gradebook's path. A
    submission counts as unchanged only if its hash matches and the gradebook still has
    its scores (`has_scores`), so that a replaced gradebook gets everything graded again.
    """

    def __init__(self, folder: Path, gradebook_path: Path):
        self.path = folder / "grading-state.json"
        self.key = str(gradebook_path)
        self.data: dict = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                log.warning("ignoring unreadable grading state %s; every submission is graded",
                            self.path)

    def entry(self, assignment: str, student: str) -> dict | None:
        return self.data.get(self.key, {}).get(assignment, {}).get(student)

    def record(self, assignment: str, student: str, digest: str, report: dict) -> None:
        students = self.data.setdefault(self.key, {}).setdefault(assignment, {})
        students[student] = {"hash": digest, "report": report}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        temporary.replace(self.path)
