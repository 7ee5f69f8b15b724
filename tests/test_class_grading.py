"""The grade command on a class of hostile and broken submissions.

A throwaway course gets the synthetic assignment (`mytorch.course.grading.synthetic`: three
functions, 4 points) and one submission per fixture in ``tests/fixtures/class/``. Each fixture
names its expected score and the lines the instructor's report must contain for it. The whole
class is graded once, with short timeouts, by two workers. The tests then check every score,
the report, the gradebook, the feedback and that nothing outside a submission changed.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4.nbbase import random_cell_id

from mytorch.course import REPO_ROOT
from mytorch.course.grading import cache, gradebook, synthetic
from mytorch.course.grading.feedback import hidden_lines
from mytorch.course.grading.run import DEFAULT_CONFIG, ClassRunOptions, grade_class, load_config

pytestmark = pytest.mark.slow

ASSIGNMENT = synthetic.DEFAULT_ASSIGNMENT
FIXTURES = Path(__file__).parent / "fixtures" / "class"
CASES = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(FIXTURES.glob("*.yaml"))}
CELL_TIMEOUT = 8  # seconds; short for the loop fixtures, long for a busy machine
INTERRUPT_GRACE = 3


def make_release(root: Path) -> nbformat.NotebookNode:
    """Generate the synthetic assignment's release under `root` and return its notebook."""
    synthetic.write_course(root)
    shutil.copy2(cache.empty_gradebook(), root / "release.db")
    gradebook.generate_assignment(root, ASSIGNMENT, f"sqlite:///{root / 'release.db'}",
                                  load_config(DEFAULT_CONFIG))
    return nbformat.read(root / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(notebook, grade_id: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if _grade_id(cell) == grade_id)


def build_submission(spec: dict, release: nbformat.NotebookNode) -> str:
    """Return the text of the notebook file that fixture `spec` describes."""
    if "raw" in spec:
        return spec["raw"]
    notebook = copy.deepcopy(release)
    if not spec.get("blank"):
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = synthetic.SOLUTIONS[_grade_id(cell)]
    for grade_id, source in spec.get("replace", {}).items():
        notebook.cells[_index(notebook, grade_id)].source = source.rstrip()
    for grade_id, source in spec.get("duplicate", {}).items():
        index = _index(notebook, grade_id)
        twin = copy.deepcopy(notebook.cells[index])
        twin.id = random_cell_id()
        twin.source = source.rstrip()
        notebook.cells.insert(index + 1, twin)
    for grade_id, source in spec.get("insert_after", {}).items():
        index = _index(notebook, grade_id)
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source.rstrip()))
    for grade_id in spec.get("delete", []):
        del notebook.cells[_index(notebook, grade_id)]
    if spec.get("strip_metadata"):
        for cell in notebook.cells:
            cell.metadata = {}
    return nbformat.writes(notebook)


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    release = make_release(tmp_path_factory.mktemp("release"))
    synthetic.write_course(root)
    incoming = root / "incoming"
    for case, spec in CASES.items():
        folder = incoming / case
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(build_submission(spec, release))
    roster = root / "roster.csv"
    roster.write_text("id,first_name,last_name\n" + "".join(f"{c},{c},Student\n" for c in CASES)
                      + "absent,Absent,Student\n")

    # Only the course's own source: other people may edit the repository meanwhile.
    before = tree_digest(root / "solutions")
    run = grade_class(ClassRunOptions(
        assignment=ASSIGNMENT, submissions=incoming, roster=roster, course_root=root,
        workers=2, cell_timeout=CELL_TIMEOUT, interrupt_grace=INTERRUPT_GRACE))
    after = tree_digest(root / "solutions")
    reports = {s.student: s for s in run.students}
    return {"root": root, "run": run, "reports": reports, "before": before, "after": after,
            "release": release}


def report_lines(report) -> list[str]:
    return (report.flags + report.timeouts + report.notes + report.repaired + report.rejected
            + report.unresolved)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_score(graded_class, case):
    report = graded_class["reports"][case]
    assert report.max_score == synthetic.MAX_SCORE
    assert report.score == CASES[case]["score"], (
        f"{case}: scored {report.score}, expected {CASES[case]['score']}; report: {report}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_report_lines(graded_class, case):
    report = graded_class["reports"][case]
    lines = report_lines(report)
    for expected in CASES[case].get("expect", []):
        assert any(expected in line for line in lines), (
            f"{case}: no report line contains {expected!r}; lines: {lines}")
    assert report.status == CASES[case].get("status", "graded"), report


def test_honest_submissions_not_flagged(graded_class):
    for case in ("correct", "blank", "partly_wrong"):
        report = graded_class["reports"][case]
        assert report.flags == [], f"{case}: {report.flags}"
        assert report.timeouts == [], f"{case}: {report.timeouts}"


def test_gradebook_holds_report_scores(graded_class):
    from nbgrader.api import Gradebook

    root = graded_class["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        for case, spec in CASES.items():
            submission = book.find_submission(ASSIGNMENT, case)
            assert submission.score == spec["score"], f"{case}: gradebook has {submission.score}"
        student = book.find_student("absent")
        assert student.first_name == "Absent"


def test_grades_csv_lists_class(graded_class):
    with graded_class["run"].grades_csv.open(newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    assert set(rows) == set(CASES) | {"absent"}
    for case, spec in CASES.items():
        assert float(rows[case]["score"]) == spec["score"], case
    assert float(rows["absent"]["score"]) == 0


def test_absent_student_reported_missing(graded_class):
    report = graded_class["reports"]["absent"]
    assert report.status == "missing"
    assert report.score == 0


def test_report_files_name_every_student(graded_class):
    run = graded_class["run"]
    markdown = run.report_md.read_text()
    data = json.loads(run.report_json.read_text())
    assert {s["student"] for s in data["students"]} == set(CASES) | {"absent"}
    for case in CASES:
        assert f"| {case} |" in markdown
    assert any("namespace" in line or "NO ISOLATION" in line for line in data["isolation"])
    for case, spec in CASES.items():
        for expected in spec.get("expect", []):
            if "cell '" not in expected:
                assert expected in markdown, f"{case}: {expected!r} missing from report.md"


def test_feedback_hides_hidden_tests(graded_class):
    root = graded_class["root"]
    source = nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    hidden = hidden_lines(source)
    assert hidden, "the synthetic assignment has hidden tests"
    pages = sorted((root / "autograder" / "feedback").rglob("*.html"))
    assert len(pages) == len(CASES) - 1  # every fixture but the rejected one
    for page in pages:
        html = page.read_text()
        for line in hidden:
            assert line not in html, f"{page}: shows hidden test code {line!r}"
        assert "### BEGIN HIDDEN TESTS" not in html, page
    partly_wrong = (root / "autograder" / "feedback" / "partly_wrong" / ASSIGNMENT /
                    f"{ASSIGNMENT}.html").read_text()
    assert "relu of a vector" in partly_wrong  # the failed test's message is shown


def test_nothing_outside_submission_changed(graded_class):
    assert graded_class["before"] == graded_class["after"]
    assert not list((REPO_ROOT / "solutions").rglob("planted.py"))
    assert "planted" not in (REPO_ROOT / "mytorch" / "testing.py").read_text()
    numpy_folder = Path(__import__("numpy").__file__).parent
    assert not (numpy_folder / "planted.py").exists()
    assert "planted" not in (numpy_folder / "__init__.py").read_text()
    kit = cache.student_kit(ASSIGNMENT)
    assert "planted" not in (kit / "mytorch" / "testing.py").read_text()


def test_writes_to_source_reported_as_writes(graded_class):
    flags = graded_class["reports"]["write_source"].flags
    planted = [line for line in flags if "/t/solutions/01_attention_numpy/planted.py" in line]
    assert planted, flags
    assert "tried to write" in planted[0]


def test_autograded_copies_in_course(graded_class):
    root = graded_class["root"]
    for case in CASES:
        submitted = root / "autograder" / "submitted" / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert submitted.is_file(), case
    autograded = root / "autograder" / "autograded" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert autograded.is_file()


# --- re-runs, forcing and zip intake, on a class of two ----------------------------------


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    release = make_release(tmp_path_factory.mktemp("small-release"))
    synthetic.write_course(root)
    archive = root / "export.zip"
    with zipfile.ZipFile(archive, "w") as stream:
        stream.writestr(f"alice_12345_{ASSIGNMENT}.ipynb", build_submission(CASES["correct"], release))
        stream.writestr(f"bob/{ASSIGNMENT}.ipynb", build_submission(CASES["partly_wrong"], release))
    return root, release, archive


def _grade_small(root: Path, submissions: Path, force: bool = False):
    run = grade_class(ClassRunOptions(
        assignment=ASSIGNMENT, submissions=submissions, course_root=root, workers=2,
        force=force, cell_timeout=CELL_TIMEOUT, interrupt_grace=INTERRUPT_GRACE))
    return {s.student: s for s in run.students}


def test_zip_rerun_and_force(small_class):
    root, release, archive = small_class

    first = _grade_small(root, archive)
    assert {name: r.score for name, r in first.items()} == {"alice": 4, "bob": 3}
    assert {r.status for r in first.values()} == {"graded"}

    again = _grade_small(root, archive)
    assert {name: r.status for name, r in again.items()} == {"alice": "unchanged", "bob": "unchanged"}
    assert {name: r.score for name, r in again.items()} == {"alice": 4, "bob": 3}

    changed = root / "changed"
    for student, case in (("alice", "correct"), ("bob", "correct")):
        (changed / student).mkdir(parents=True)
        (changed / student / f"{ASSIGNMENT}.ipynb").write_text(build_submission(CASES[case], release))
    third = _grade_small(root, changed)
    assert third["alice"].status == "unchanged"
    assert third["bob"].status == "graded"
    assert third["bob"].score == 4

    forced = _grade_small(root, changed, force=True)
    assert {name: r.status for name, r in forced.items()} == {"alice": "graded", "bob": "graded"}


# --- a real notebook of the course ---------------------------------------------------------

REAL = "02_positions_and_masks"


@pytest.mark.skipif(not (REPO_ROOT / "notebooks" / REAL).is_dir(),
                    reason=f"notebooks/{REAL} does not exist yet")
def test_real_notebook_solution_full_marks(tmp_path):
    from mytorch.course.nbgrader_cycle import solution_submission

    root = tmp_path / "course"
    shutil.copytree(REPO_ROOT / "solutions" / REAL, root / "solutions" / REAL,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.pt"))
    release = nbformat.read(REPO_ROOT / "notebooks" / REAL / f"{REAL}.ipynb", as_version=4)
    folder = tmp_path / "incoming" / "carol"
    folder.mkdir(parents=True)
    nbformat.write(solution_submission(REAL, release), folder / f"{REAL}.ipynb")

    run = grade_class(ClassRunOptions(assignment=REAL, submissions=tmp_path / "incoming",
                                      course_root=root, workers=1))
    report = run.students[0]
    assert report.status == "graded", report
    assert report.max_score > 0
    assert report.score == report.max_score, report
    assert report.flags == [], report.flags
