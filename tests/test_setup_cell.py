"""The first cell of every notebook: nothing in JupyterLab, set-up on Colab, grading mode under nbgrader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from mytorch.course.setup_cell import setup_cell

# Runs the cell with `subprocess.run` recorded instead of executed, and prints what it did.
HARNESS = textwrap.dedent("""
    import json, os, subprocess, sys, types
    calls = []
    subprocess.run = lambda command, **kwargs: calls.append(command)
    if os.environ.get("FAKE_COLAB"):
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    exec(open(sys.argv[1]).read())
    print(json.dumps({"calls": calls, "grading": os.environ.get("MYTORCH_GRADING")}))
""")


def run_cell(tmp_path, assignment: str, **env: str) -> dict:
    cell = tmp_path / "cell.py"
    cell.write_text(setup_cell(assignment).source)
    result = subprocess.run([sys.executable, "-c", HARNESS, str(cell)], env={"PATH": "/usr/bin:/bin", **env},
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_does_nothing_in_jupyterlab(tmp_path):
    assert run_cell(tmp_path, "02_positions_and_masks") == {"calls": [], "grading": None}


def test_colab_installs_without_touching_torch(tmp_path):
    calls = run_cell(tmp_path, "02_positions_and_masks", FAKE_COLAB="1")["calls"]
    assert calls[0][:3] == ["git", "clone", "--depth=1"]
    install_course = calls[1]
    assert "--no-deps" in install_course and "-e" in install_course
    assert not any("torch" in argument for command in calls for argument in command)


def test_grading_mode_under_nbgrader(tmp_path):
    result = run_cell(tmp_path, "02_positions_and_masks", NBGRADER_EXECUTION="autograde", FAKE_COLAB="1")
    assert result == {"calls": [], "grading": "02_positions_and_masks"}


def test_ungraded_notebook_sets_no_grading_mode(tmp_path):
    assert run_cell(tmp_path, "00_setup", NBGRADER_EXECUTION="validate")["grading"] is None


def test_cell_is_locked_for_autograde():
    metadata = setup_cell("01_attention_numpy").metadata["nbgrader"]
    assert metadata["locked"] is True
    assert metadata["grade"] is False and metadata["solution"] is False
