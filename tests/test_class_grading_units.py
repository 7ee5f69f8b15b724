"""Pieces of the class grader that run without a kernel: pre-flight repair, the static scan,
feedback redaction, intake, report lines and the isolation probe."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from pathlib import Path

import nbformat
import pytest

from mytorch.course.grading import intake, synthetic
from mytorch.course.grading.feedback import REDACTED, _exporter, hidden_lines, redact, student_view
from mytorch.course.grading.isolation import Limits, hidden_modules, probe_isolation
from mytorch.course.grading.preflight import check_notebook
from mytorch.course.grading.report import describe_audit_events, describe_kernel_events
from mytorch.course.grading.scan import scan_notebook

ASSIGNMENT = synthetic.DEFAULT_ASSIGNMENT


@pytest.fixture()
def release():
    """Use the synthetic solution notebook as the release: it has the same cells and metadata."""
    return synthetic.solution_notebook()


def grade_ids(notebook) -> list[str | None]:
    return [cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") for cell in notebook.cells]


def write(tmp_path: Path, notebook) -> Path:
    path = tmp_path / "submission.ipynb"
    nbformat.write(notebook, path)
    return path


# --- pre-flight ------------------------------------------------------------------------------


def test_preflight_untouched_notebook_ok(tmp_path, release):
    result = check_notebook("nb", write(tmp_path, release), release)
    assert result.status == "ok"
    assert result.repairs == []
    assert result.unresolved == []


def test_preflight_stripped_metadata_restored(tmp_path, release):
    stripped = copy.deepcopy(release)
    for cell in stripped.cells:
        cell.metadata = {}
    result = check_notebook("nb", write(tmp_path, stripped), release)
    assert result.status == "repaired"
    assert grade_ids(result.repaired) == grade_ids(release)
    assert any("matched to the release" in line for line in result.repairs)
    assert result.unresolved == []


def test_preflight_ambiguous_answer_reported(tmp_path, release):
    stripped = copy.deepcopy(release)
    index = grade_ids(stripped).index("relu")
    stripped.cells.insert(index + 1, nbformat.v4.new_code_cell("def relu(x):\n    return x"))
    for cell in stripped.cells:
        cell.metadata = {}
    result = check_notebook("nb", write(tmp_path, stripped), release)
    relu_lines = [line for line in result.unresolved if "answer cell 'relu'" in line]
    assert relu_lines
    assert "could be any of cells" in relu_lines[0]
    ids = grade_ids(result.repaired)
    assert ids.count("relu") == 1
    # The release's empty cell goes before the student's cells, so theirs run last.
    students = [i for i, cell in enumerate(result.repaired.cells)
                if cell.source.startswith("def relu") and ids[i] is None]
    assert len(students) == 2
    assert ids.index("relu") < min(students)
    assert max(students) < ids.index("test_relu")


def test_preflight_scratch_cell_does_not_hide_answer(tmp_path, release):
    stripped = copy.deepcopy(release)
    index = grade_ids(stripped).index("relu")
    stripped.cells.insert(index + 1, nbformat.v4.new_code_cell("print(relu(np.ones(2)))"))
    for cell in stripped.cells:
        cell.metadata = {}
    result = check_notebook("nb", write(tmp_path, stripped), release)
    assert result.unresolved == []
    ids = grade_ids(result.repaired)
    assert result.repaired.cells[ids.index("relu")].source.startswith("def relu")


def test_preflight_duplicate_keeps_last(tmp_path, release):
    notebook = copy.deepcopy(release)
    index = grade_ids(notebook).index("softmax")
    twin = copy.deepcopy(notebook.cells[index])
    twin.id = "twin"
    twin.source = "def softmax(x):\n    return x  # the copy"
    notebook.cells.insert(index + 1, twin)
    result = check_notebook("nb", write(tmp_path, notebook), release)
    ids = grade_ids(result.repaired)
    assert ids.count("softmax") == 1
    assert result.repaired.cells[ids.index("softmax")].source.endswith("# the copy")
    assert any("duplicated in cells" in line for line in result.repairs)


def test_preflight_deleted_test_restored_in_place(tmp_path, release):
    notebook = copy.deepcopy(release)
    del notebook.cells[grade_ids(notebook).index("test_relu")]
    result = check_notebook("nb", write(tmp_path, notebook), release)
    ids = grade_ids(result.repaired)
    assert ids.index("test_relu") == ids.index("relu") + 1
    assert "test cell 'test_relu' was missing; put back from the release" in result.repairs


def test_preflight_tampered_points_reset(tmp_path, release):
    notebook = copy.deepcopy(release)
    test = notebook.cells[grade_ids(notebook).index("test_relu")]
    test.metadata["nbgrader"]["points"] = 100
    result = check_notebook("nb", write(tmp_path, notebook), release)
    restored = result.repaired.cells[grade_ids(result.repaired).index("test_relu")]
    assert restored.metadata["nbgrader"]["points"] == synthetic.POINTS["test_relu"]
    assert any("differed from the release (points)" in line for line in result.repairs)


def test_preflight_unknown_grade_id_dropped(tmp_path, release):
    notebook = copy.deepcopy(release)
    extra = nbformat.v4.new_code_cell("x = 1")
    extra.metadata["nbgrader"] = {"grade_id": "bonus", "grade": True, "points": 50,
                                  "solution": False, "locked": False, "schema_version": 3}
    notebook.cells.append(extra)
    result = check_notebook("nb", write(tmp_path, notebook), release)
    assert "bonus" not in grade_ids(result.repaired)
    assert any("'bonus'" in line for line in result.repairs)


@pytest.mark.parametrize("text, reason", [
    ('{"cells": [', "not valid JSON"),
    ('[1, 2]', "no list of cells"),
    ('{"cells": [], "metadata": ["broken"], "nbformat": 4, "nbformat_minor": 4}', "invalid notebook metadata"),
    ('{"cells": [{"cell_type": "spreadsheet", "metadata": {}, "source": ""}], '
     '"metadata": {}, "nbformat": 4, "nbformat_minor": 4}', "spreadsheet"),
])
def test_preflight_rejects_broken_files(tmp_path, release, text, reason):
    path = tmp_path / "broken.ipynb"
    path.write_text(text)
    result = check_notebook("nb", path, release)
    assert result.status == "rejected"
    assert reason in result.reason


def test_preflight_missing_notebook(tmp_path, release):
    assert check_notebook("nb", tmp_path / "absent.ipynb", release).status == "missing"


# --- static scan ----------------------------------------------------------------------------


def scan(source: str) -> list[str]:
    notebook = synthetic.solution_notebook()
    notebook.cells[grade_ids(notebook).index("softmax")].source = source
    return [finding.message for finding in scan_notebook(notebook, ASSIGNMENT)]


@pytest.mark.parametrize("source, expected", [
    ("np.allclose = lambda *a, **k: True", "monkeypatches numpy.allclose"),
    ("import torch\ntorch.allclose = lambda *a: True", "monkeypatches torch.allclose"),
    ("setattr(np.testing, 'assert_allclose', print)", "monkeypatches numpy.testing with setattr"),
    ("import os\nos._exit(0)", "calls os._exit"),
    ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)", "calls signal.signal"),
    ("class A:\n    def __eq__(self, other):\n        return True", "defines __eq__ that always returns True"),
    ("from mytorch.nn.softmax import Softmax", "imports the hidden reference module mytorch.nn.softmax"),
    ("from mytorch.nn import Softmax", "imports the hidden reference Softmax"),
    ("open('../../../solutions/a/a.ipynb')", "refers to course files"),
    ("import os\nos.environ['MYTORCH_GRADING'] = ''", "refers to the grading-mode variable"),
    ("get_ipython().showtraceback = None", "hides errors from the grader"),
    ("code = In[3]", "reads IPython's history"),
    ("import sys\nframe = sys._getframe(1)", "can read the code of executed cells"),
    ("!curl http://example.org", "runs shell commands"),
    ("assert_close = print", "rebinds 'assert_close'"),
])
def test_scan_finds(source, expected):
    findings = scan(source)
    assert any(expected in message for message in findings), findings


def test_scan_quiet_on_honest_code():
    honest = synthetic.SOLUTIONS["softmax"] + "\nimport torch\ntorch.backends.cudnn.deterministic = True"
    assert scan(honest) == []


# --- feedback -------------------------------------------------------------------------------


def test_student_view_hides_hidden_tests():
    source = synthetic.solution_notebook()
    hidden = hidden_lines(source)
    autograded = copy.deepcopy(source)
    test = autograded.cells[grade_ids(autograded).index("test_softmax")]
    test.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="softmax of large logits: largest difference 1",
        traceback=[line for line in test.source.splitlines()])]
    answer = autograded.cells[grade_ids(autograded).index("relu")]
    leaked = next(line for line in hidden if "relu" in line)
    answer.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"caught: {leaked}\n")]

    release = copy.deepcopy(source)
    for cell in release.cells:
        cell.source = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", cell.source,
                             flags=re.DOTALL)
    view = student_view(autograded, release, hidden)
    text = json.dumps(view)
    for line in hidden:
        assert line not in text
    shown = view.cells[grade_ids(view).index("test_softmax")]
    assert [o.output_type for o in shown.outputs] == ["error"]
    assert shown.outputs[0].evalue.startswith("softmax of large logits")
    assert REDACTED in view.cells[grade_ids(view).index("relu")].outputs[0].text


def test_redact_strips_ansi_colours():
    assert redact("\x1b[0;31massert_close(x, y)\x1b[0m", ["assert_close(x, y)"]) == REDACTED


# --- intake ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path, student", [
    ("export/alice_12345_nb.ipynb", "alice"),
    ("export/bob/nb.ipynb", "bob"),
    ("carol/nb.ipynb", "carol"),
    ("dave_attempt_2024_nb.ipynb", "dave"),
])
def test_zip_regexp_finds_student(path, student):
    pattern = intake.default_zip_regexp(Path("/x/extracted"), ["nb"])
    match = re.match(pattern, f"/x/extracted/{path}")
    assert match is not None
    assert match.group("student_id") == student
    assert match.group("file_id") == "nb.ipynb"


def test_zip_regexp_skips_renamed_notebook():
    pattern = intake.default_zip_regexp(Path("/x/extracted"), ["nb"])
    assert re.match(pattern, "/x/extracted/eve/Untitled.ipynb") is None


def test_collect_folder_layouts(tmp_path):
    (tmp_path / "alice" / "a").mkdir(parents=True)
    (tmp_path / "alice" / "a" / "nb.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "my copy.ipynb").write_text("{}")
    (tmp_path / "bad id!").mkdir()
    (tmp_path / "notes.txt").write_text("")
    submissions, skipped = intake.collect_folder(tmp_path, "a", ["nb"])
    found = {s.student: s for s in submissions}
    assert set(found) == {"alice", "bob"}
    assert found["alice"].notebooks["nb"] == tmp_path / "alice" / "a" / "nb.ipynb"
    assert found["bob"].notebooks["nb"].name == "my copy.ipynb"
    assert any("graded as nb.ipynb" in note for note in found["bob"].notes)
    assert any(line.startswith("bad id!") for line in skipped)
    assert any(line.startswith("notes.txt") for line in skipped)


def test_roster_needs_id_column(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email\nAlice,a@example.org\n")
    with pytest.raises(ValueError, match="needs a column 'id'"):
        intake.read_roster(roster)
    roster.write_text("id,first_name,email\nalice,Alice,a@example.org\n")
    assert intake.read_roster(roster) == {"alice": {"first_name": "Alice", "email": "a@example.org"}}


# --- report lines ---------------------------------------------------------------------------


def test_kernel_events_described():
    timeouts, flags = describe_kernel_events([
        {"kind": "timeout", "cell": "test_a", "seconds": 5, "outcome": "interrupted"},
        {"kind": "timeout", "cell": "test_b", "seconds": 5, "outcome": "killed"},
        {"kind": "output_truncated", "cell": "a", "limit": 1024, "bytes": 3 * 1024 * 1024},
    ])
    assert timeouts == [
        "cell 'test_a': timed out after 5 s; the interrupt stopped it",
        "cell 'test_b': timed out after 5 s and ignored the interrupt; the kernel was killed "
        "and restarted",
    ]
    assert "cell 'test_b' ignored the grader's interrupt" in flags
    assert "cell 'a' printed 3.0 MiB; its output was cut at 1.0 KiB" in flags


def test_library_helper_processes_not_flagged():
    events = [{"event": "process", "detail": "subprocess.Popen ('/sbin/ldconfig', ['/sbin/ldconfig', '-p'])"},
              {"event": "process", "detail": "subprocess.Popen ('curl', ['curl', 'x'])"}]
    assert describe_audit_events(events) == ["started a process: subprocess.Popen ('curl', ['curl', 'x'])"]


# --- isolation ------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces probe as root")
def test_probe_finds_namespaces_as_root(tmp_path):
    from mytorch.course.grading import cache

    kit = cache.student_kit(ASSIGNMENT)
    for module in hidden_modules(ASSIGNMENT):
        stub = kit / Path(*module.split(".")).with_suffix(".py")
        if stub.is_file():
            assert "### BEGIN SOLUTION" not in stub.read_text(), stub
    probe, attempts = probe_isolation("auto", ASSIGNMENT, kit, Limits())
    assert probe.mode == "namespaces", attempts
    assert probe.checks["uid"] != 0
    assert probe.checks["network"] is False
    assert probe.checks["secret_readable"] is False


def test_feedback_exporter_drops_alt_text_warning(caplog):
    log = _exporter().log
    with caplog.at_level(logging.WARNING):
        log.warning("Alternative text is missing on %s image(s).", 2)
        log.warning("Template not found")
    assert [record.getMessage() for record in caplog.records] == ["Template not found"]
