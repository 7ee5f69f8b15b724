"""The full nbgrader cycle on every graded notebook, on a throwaway course folder.

For each assignment: generate_assignment, then autograde three kinds of submission placed
under ``submitted/``: the solution (full marks on every graded cell), the blank release
(0 on every graded cell) and each wrong implementation kept under
``tests/fixtures/wrong/<assignment>/`` (it loses the points of exactly the cells it lists).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mytorch import registry
from mytorch.course import solution_notebook
from mytorch.course.nbgrader_cycle import ThrowawayCourse, solution_submission

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "wrong"
# Files a student hands in beside the notebook, such as a trained checkpoint that a quality
# cell grades: tests/fixtures/submitted/<assignment>/<file>. They are kept out of solutions/,
# because autograde copies every file of the source folder over the student's own.
SUBMITTED = Path(__file__).parent / "fixtures" / "submitted"
GRADED = [name for name in registry.ASSIGNMENTS if solution_notebook(name).is_file()]


def submitted_files(name: str) -> dict[str, Path]:
    """Return the files submitted with every notebook of one assignment: file name to path."""
    folder = SUBMITTED / name
    return {path.name: path for path in sorted(folder.iterdir()) if path.is_file()} if folder.is_dir() else {}


def wrong_cases(name: str) -> dict[str, dict]:
    """Load the wrong implementations of one assignment: case name to its YAML."""
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted((FIXTURES / name).glob("*.yaml"))}


@pytest.fixture(scope="module", params=GRADED)
def graded(request, tmp_path_factory):
    """Grade the solution, the blank release and every wrong case of one assignment."""
    name = request.param
    course = ThrowawayCourse(tmp_path_factory.mktemp(name), [name])
    course.generate()
    release = course.release_notebook(name)

    files = submitted_files(name)
    course.submit("solution", name, solution_submission(name, release), files)
    course.submit("blank", name, release, files)
    cases = wrong_cases(name)
    for case, spec in cases.items():
        course.submit(case, name, solution_submission(name, release, spec["replace"]), files)
    course.autograde(name)

    students = ["solution", "blank", *cases]
    return name, course, cases, {student: course.scores(name, student) for student in students}


def test_solution_full_marks(graded):
    name, _, _, scores = graded
    for cell, score in scores["solution"].items():
        assert score.max_score > 0, f"{name}: graded cell {cell} is worth no points"
        assert score.score == score.max_score, f"{name}: solution scored {score.score}/{score.max_score} on {cell}"


def test_blank_release_scores_zero(graded):
    name, _, _, scores = graded
    for cell, score in scores["blank"].items():
        assert score.score == 0, f"{name}: blank release scored {score.score} on {cell}"


def test_wrong_cases_lose_listed_cells(graded):
    name, _, cases, scores = graded
    for case, spec in cases.items():
        loses = set(spec["loses"])
        unknown = loses - set(scores[case])
        assert not unknown, f"{name}/{case}.yaml lists cells that do not exist: {sorted(unknown)}"
        for cell, score in scores[case].items():
            if cell in loses:
                assert score.score < score.max_score, f"{name}/{case}: {cell} should lose points, scored full"
            else:
                assert score.score == score.max_score, (
                    f"{name}/{case}: {cell} should keep its points, scored {score.score}/{score.max_score}"
                )


def test_export_lists_every_submission(graded):
    name, course, cases, scores = graded
    rows = [row for row in course.export() if row["assignment"] == name]
    assert {row["student_id"] for row in rows} == set(scores)
    solution = next(row for row in rows if row["student_id"] == "solution")
    assert float(solution["score"]) == float(solution["max_score"])
