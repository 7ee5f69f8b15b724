"""Benchmark: the grade command against plain sequential ``nbgrader autograde``.

Builds a class of submissions (by default 40: right, partly wrong and blank, in a fixed
mix) for the synthetic assignment of `mytorch.course.grading.synthetic`, or for a course
notebook with ``--assignment``, and grades the same class twice in one run:

1. ``nbgrader autograde ASSIGNMENT`` on a throwaway course (after an untimed
   ``generate_assignment``): one submission after another, no sandbox;
2. ``python -m mytorch.course grade ASSIGNMENT`` on another throwaway course, with all of
   its work (template, probe, pre-flight, sandboxed parallel autograding, merge, feedback,
   CSV and report) inside the timing.

It prints both times (each of --rounds alternating rounds), the ratio of their medians and
the machine, and fails if any cell's score differs.
The student kit and the empty gradebook are built before timing: the command caches them
between runs (`mytorch.course.grading.cache`).

Run from the repository root: ``.venv/bin/python benchmarks/grade_class.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from mytorch.course import REPO_ROOT, solution_notebook
from mytorch.course.grading import cache, gradebook, synthetic
from mytorch.course.grading.run import DEFAULT_CONFIG, load_config

# Wrong answers of the synthetic assignment, one per function.
WRONG = {
    "softmax": "def softmax(x):\n    return np.exp(x) / np.exp(x).sum()",
    "relu": "def relu(x):\n    return np.abs(x)",
    "normalize": "def normalize(x):\n    return x / np.abs(x).sum(axis=-1, keepdims=True)",
}


def environment() -> dict[str, str]:
    """Environment for nbgrader: `alembic` and the kernels' `python` from this venv."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def make_course(root: Path, assignment: str) -> None:
    if assignment == synthetic.DEFAULT_ASSIGNMENT:
        synthetic.write_course(root, assignment)
    else:
        shutil.copytree(solution_notebook(assignment).parent, root / "solutions" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.pt"))


def make_release(work: Path, assignment: str) -> nbformat.NotebookNode:
    root = work / "release"
    make_course(root, assignment)
    shutil.copy2(cache.empty_gradebook(), root / "release.db")
    gradebook.generate_assignment(root, assignment, f"sqlite:///{root / 'release.db'}",
                                  load_config(DEFAULT_CONFIG))
    return nbformat.read(root / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)


def make_class(release: nbformat.NotebookNode, assignment: str, students: int) -> dict[str, str]:
    """Return notebook text by student: 2 in 5 right, 2 in 5 with one answer wrong, 1 in 5 blank."""
    answers = {}
    if assignment == synthetic.DEFAULT_ASSIGNMENT:
        answers = dict(synthetic.SOLUTIONS)
    else:
        source = nbformat.read(solution_notebook(assignment), as_version=4)
        answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    wrong_ids = sorted(WRONG) if assignment == synthetic.DEFAULT_ASSIGNMENT else []

    submissions = {}
    for number in range(students):
        notebook = nbformat.from_dict(release)
        kind = ("right", "right", "wrong", "wrong", "blank")[number % 5]
        if kind != "blank":
            for cell in notebook.cells:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                    cell.source = answers[grade_id]
            if kind == "wrong" and wrong_ids:
                target = wrong_ids[number % len(wrong_ids)]
                for cell in notebook.cells:
                    if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == target:
                        cell.source = WRONG[target]
        submissions[f"student{number:02d}"] = nbformat.writes(notebook)
    return submissions


def cell_scores(db_url: str, assignment: str) -> dict[str, dict[str, float | None]]:
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(db_url) as book:
        for submission in book.find_assignment(assignment).submissions:
            scores[submission.student.id] = {
                f"{notebook.name}/{grade.name}": grade.score
                for notebook in submission.notebooks for grade in notebook.grades}
    return scores


def run_baseline(work: Path, assignment: str, submissions: dict[str, str]) -> tuple[float, dict]:
    root = work / "baseline"
    shutil.rmtree(root, ignore_errors=True)
    make_course(root, assignment)
    common = [f"--CourseDirectory.root={root}",
              f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}"]
    shutil.copy2(cache.empty_gradebook(), root / "gradebook.db")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbgrader, "generate_assignment", assignment, "--force", *common],
                   cwd=REPO_ROOT / "autograder", env=environment(), check=True,
                   capture_output=True)
    for student, text in submissions.items():
        folder = root / "autograder" / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(text)

    started = time.perf_counter()
    result = subprocess.run([*nbgrader, "autograde", assignment, "--force", *common],
                            cwd=REPO_ROOT / "autograder", env=environment(), capture_output=True,
                            text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"nbgrader autograde failed:\n{result.stderr[-3000:]}")
    return seconds, cell_scores(f"sqlite:///{root / 'gradebook.db'}", assignment)


def run_command(work: Path, assignment: str, submissions: dict[str, str],
                workers: int | None) -> tuple[float, dict]:
    root = work / "command"
    shutil.rmtree(root, ignore_errors=True)
    make_course(root, assignment)
    incoming = work / "incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    for student, text in submissions.items():
        (incoming / student).mkdir(parents=True, exist_ok=True)
        (incoming / student / f"{assignment}.ipynb").write_text(text)
    command = [sys.executable, "-m", "mytorch.course", "grade", assignment,
               "--submissions", str(incoming), "--course-root", str(root)]
    if workers:
        command += ["--workers", str(workers)]

    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, env=environment(), capture_output=True,
                            text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"the grade command failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return seconds, cell_scores(f"sqlite:///{root / 'gradebook.db'}", assignment)


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{len(os.sched_getaffinity(0))} cores ({model}), {memory:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=40, help="class size (default: 40)")
    parser.add_argument("--workers", type=int, help="workers of the command (default: cores)")
    parser.add_argument("--assignment", default=synthetic.DEFAULT_ASSIGNMENT,
                        help="a course notebook to grade instead of the synthetic assignment")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure both sides this many times, alternating, and report the "
                             "medians, so that a load change on a shared machine affects both "
                             "alike (default: 1)")
    args = parser.parse_args()

    baseline_times, command_times, differing = [], [], set()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as scratch:
        work = Path(scratch)
        release = make_release(work, args.assignment)
        submissions = make_class(release, args.assignment, args.students)
        cache.student_kit(args.assignment)

        for _ in range(args.rounds):
            seconds, baseline = run_baseline(work, args.assignment, submissions)
            baseline_times.append(seconds)
            seconds, ours = run_command(work, args.assignment, submissions, args.workers)
            command_times.append(seconds)
            differing |= {s for s in set(baseline) | set(ours) if baseline.get(s) != ours.get(s)}
    load_after = os.getloadavg()

    baseline_median = statistics.median(baseline_times)
    command_median = statistics.median(command_times)
    summary = {
        "assignment": args.assignment,
        "students": args.students,
        "workers": args.workers or len(os.sched_getaffinity(0)),
        "rounds": args.rounds,
        "nbgrader_autograde_seconds": [round(t, 1) for t in baseline_times],
        "grade_command_seconds": [round(t, 1) for t in command_times],
        "ratio_of_medians": round(command_median / baseline_median, 3),
        "identical_scores": not differing,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    print(json.dumps(summary, indent=2))
    if differing:
        print(f"scores differ for: {', '.join(sorted(differing))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
