"""The solution run: every notebook executed in order, a report for people and one for tools."""

from __future__ import annotations

import json

import nbformat
import pytest

from mytorch.course import notebook_names
from mytorch.course.cells import answer, code, new_notebook, parameters
from mytorch.course.solution_run import report_outputs, solution_run

pytestmark = pytest.mark.slow


PLOT = """
import matplotlib.pyplot as plt
plt.plot([3, 2, 1])
plt.show()
"""


def write_notebook(folder, name, cells):
    (folder / name).mkdir(parents=True)
    nbformat.write(new_notebook(cells), folder / name / f"{name}.ipynb")


def test_failure_reported_and_run_goes_on(tmp_path):
    solutions = tmp_path / "solutions"
    write_notebook(solutions, "01_broken", [
        parameters('SIZE = "full"'),
        answer("broken_cell", "raise ValueError('the model diverged')"),
    ])
    write_notebook(solutions, "02_fine", [
        parameters('SIZE = "full"'),
        code("from mytorch.runtime import record_metric\nrecord_metric('size_is_smoke', SIZE == 'smoke')"),
        code("print('sample: in the beginning')", tags=["report"]),
        code(PLOT, tags=["report"]),
        code("print('not in the report')"),
    ])

    run_dir = solution_run("smoke", runs_dir=tmp_path / "runs", solutions_dir=solutions)

    report = json.loads((run_dir / "report.json").read_text())
    assert report["01_broken"]["status"] == "failed"
    assert "'broken_cell'" in report["01_broken"]["error"]
    assert "ValueError: the model diverged" in report["01_broken"]["error"]
    assert report["02_fine"] == {"status": "ok", "seconds": report["02_fine"]["seconds"],
                                 "metrics": {"size_is_smoke": 1.0}}
    assert (run_dir / "01_broken.ipynb").is_file() and (run_dir / "02_fine.ipynb").is_file()

    markdown = (run_dir / "report.md").read_text()
    assert "| [02_fine](02_fine.ipynb) | ok |" in markdown
    assert "say nothing about what the course reaches" in markdown
    assert "**01_broken** failed at cell 2 ('broken_cell')" in markdown
    assert "## 02_fine" in markdown
    assert "sample: in the beginning" in markdown
    assert "not in the report" not in markdown
    assert "![figure](02_fine-figures/2-1.png)" in markdown
    assert (run_dir / "02_fine-figures" / "2-1.png").read_bytes().startswith(b"\x89PNG")


def test_unknown_notebook_rejected(tmp_path):
    with pytest.raises(ValueError, match="no solution notebook named 99_missing"):
        solution_run("smoke", only=["99_missing"], runs_dir=tmp_path)


def test_smoke_run_of_every_solution_notebook(tmp_path):
    run_dir = solution_run("smoke", runs_dir=tmp_path)
    report = json.loads((run_dir / "report.json").read_text())
    assert list(report) == notebook_names()
    failed = {name: entry.get("error") for name, entry in report.items() if entry["status"] != "ok"}
    assert not failed


def test_report_skips_widgets_keeps_html(tmp_path):
    cell = nbformat.v4.new_code_cell("", metadata={"tags": ["report"]})
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "0"},
            "text/plain": "features:   0%|          | 0/400",
        }),
        nbformat.v4.new_output("stream", name="stdout", text="test: 400 utterances\n"),
        nbformat.v4.new_output("display_data", data={"text/html": "<b>hypothesis</b>", "text/plain": "<HTML>"}),
    ]
    untagged = nbformat.v4.new_code_cell("")
    untagged.outputs = [nbformat.v4.new_output("stream", name="stdout", text="not in the report\n")]
    executed = tmp_path / "run.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell, untagged]), executed)

    report = "\n".join(report_outputs(executed, tmp_path / "figures"))

    assert "features" not in report
    assert "test: 400 utterances" in report
    assert "<b>hypothesis</b>" in report
    assert "<HTML>" not in report
    assert "not in the report" not in report
