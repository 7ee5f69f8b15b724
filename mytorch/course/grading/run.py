"""One command for a class: intake, pre-flight, parallel isolated autograding, merge, report.

`grade_class` is what ``python -m mytorch.course grade`` runs. The parent process does the
intake, the pre-flight check, the change detection and every write to the real gradebook.
A pool of worker processes (`worker.grade`) autogrades the submissions that changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

# Light imports only: the worker pool starts before the heavy ones (nbformat, IPython,
# nbgrader), which the methods below import when they need them.
from mytorch import registry
from mytorch.course import AUTOGRADER_DIR, REPO_ROOT
from mytorch.course.grading import cache, gradebook, intake, isolation, worker
from mytorch.course.grading.report import (StudentReport, describe_audit_events,
                                           describe_kernel_events, write_reports)

log = logging.getLogger(__name__)

DEFAULT_CONFIG = AUTOGRADER_DIR / "nbgrader_config.py"


@dataclass
class ClassRunOptions:
    assignment: str
    submissions: Path  # a folder with a folder per student, or an LMS zip
    roster: Path | None = None
    workers: int | None = None  # default: the number of cores this process may use
    force: bool = False  # grade every submission, changed or not
    config_file: Path = DEFAULT_CONFIG
    course_root: Path | None = None  # default: from the configuration
    gradebook: Path | None = None  # default: from the configuration, or course_root/gradebook.db
    output_dir: Path | None = None  # default: <autograder>/class-runs
    cell_timeout: int | None = None  # seconds per cell; default: the configuration's Execute.timeout
    interrupt_grace: int = 5  # seconds a timed-out cell gets to stop after the interrupt
    output_limit: int = 1024 * 1024  # bytes of output kept per cell
    max_restarts: int = 2
    limits: isolation.Limits = field(default_factory=isolation.Limits)
    isolation: str = "auto"  # auto or one of isolation.MODES
    zip_regexp: str | None = None
    keep_work: bool = False


@dataclass
class ClassRun:
    run_dir: Path
    report_md: Path
    report_json: Path
    grades_csv: Path
    students: list[StudentReport]
    isolation: list[str]


@dataclass(frozen=True)
class Course:
    root: Path
    source: Path
    release: Path
    submitted: Path
    autograded: Path
    feedback: Path
    gradebook: Path

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.gradebook}"


def load_config(path: Path) -> Config:
    if not path.is_file():
        raise FileNotFoundError(f"nbgrader configuration {path} not found; pass --config")
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def _plain(value):
    """Turn a traitlets Config into plain dicts, so that it pickles into the workers."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def resolve_course(options: ClassRunOptions, config: Config) -> Course:
    directory = config.get("CourseDirectory", {})
    root = Path(options.course_root or directory.get("root") or options.config_file.parent)
    root = root.resolve()

    def folder(name: str, default: str) -> Path:
        return root / directory.get(name, default)

    if options.gradebook is not None:
        gradebook_path = options.gradebook
    elif options.course_root is None and str(directory.get("db_url", "")).startswith("sqlite:///"):
        gradebook_path = Path(directory["db_url"][len("sqlite:///"):])
    else:
        gradebook_path = root / "gradebook.db"
    return Course(root, folder("source_directory", "source"), folder("release_directory", "release"),
                  folder("submitted_directory", "submitted"),
                  folder("autograded_directory", "autograded"),
                  folder("feedback_directory", "feedback"), gradebook_path.resolve())


def _new_run_dir(base: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in [""] + [f"-{n}" for n in range(2, 100)]:
        path = base / f"{stamp}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"too many class runs started at {stamp} in {base}")


def _work_root() -> Path:
    """Create a short, private folder outside the repository (the kernel's sockets go below it)."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 40 or base.resolve().is_relative_to(REPO_ROOT):
        base = Path("/tmp")
    work = Path(tempfile.mkdtemp(prefix="mtg-", dir=base))
    os.chmod(work, 0o711)
    return work


def _copy_folder(source: Path, destination: Path) -> None:
    if source.resolve() == destination.resolve():
        return
    if destination.exists():
        shutil.rmtree(destination)
    checkpoints = shutil.ignore_patterns(".ipynb_checkpoints")

    def ignore(folder: str, names: list[str]) -> set[str]:
        links = {n for n in names if os.path.islink(os.path.join(folder, n))}
        return links | set(checkpoints(folder, names))

    shutil.copytree(source, destination, ignore=ignore)


@contextmanager
def _quiet(name: str, level: int = logging.WARNING):
    """Show only messages of `level` and above from logger `name` in this block (nbgrader
    is chatty, and warns that it replaces the release it generates)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _digest(submission: intake.Submission, context: str) -> str:
    """Hash the student's files together with what else decides the scores (`context`)."""
    hasher = hashlib.sha256(context.encode())
    for path in sorted(submission.folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and ".ipynb_checkpoints" not in path.parts:
            hasher.update(str(path.relative_to(submission.folder)).encode() + b"\0")
            hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()


class ClassGrader:
    """The state of one class run; `run` does the work (see the module doc)."""

    def __init__(self, options: ClassRunOptions):
        self.options = options
        self.config = load_config(options.config_file)
        self.course = resolve_course(options, self.config)
        self.assignment = options.assignment
        self.registered = options.assignment in registry.ASSIGNMENTS
        self.workers = options.workers or len(os.sched_getaffinity(0))
        execute = self.config.get("Execute", {})
        self.cell_timeout = options.cell_timeout or int(execute.get("timeout", 300))
        base = options.output_dir or (
            AUTOGRADER_DIR / "class-runs" if options.course_root is None
            else self.course.root / "autograder" / "class-runs")
        self.run_dir = _new_run_dir(base)
        self.work = _work_root()
        self.reports: dict[str, StudentReport] = {}
        self.started = time.time()

    def lap(self, step: str) -> None:
        now = time.time()
        log.info("%s: %.1f s", step, now - getattr(self, "_lap", self.started))
        self._lap = now

    # --- set-up -------------------------------------------------------------------------

    def prepare_template(self) -> Path:
        source = self.course.source / self.assignment
        if not source.is_dir():
            raise FileNotFoundError(f"assignment {self.assignment} not found: {source} does not exist")
        template = self.work / "t"
        shutil.copytree(source, template / "solutions" / self.assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        empty = cache.empty_gradebook()
        shutil.copy2(empty, template / "gradebook.db")
        if not self.course.gradebook.exists():
            self.course.gradebook.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(empty, self.course.gradebook)
        with _quiet("traitlets", logging.ERROR):
            gradebook.generate_assignment(template, self.assignment,
                                          f"sqlite:///{template / 'gradebook.db'}", self.config)
        wanted = gradebook.assignment_cells(f"sqlite:///{template / 'gradebook.db'}", self.assignment)
        current = gradebook.assignment_cells(self.course.db_url, self.assignment)
        if current != wanted:
            # The real gradebook lacks the assignment or has older cells: write them there too.
            with _quiet("traitlets", logging.ERROR):
                gradebook.generate_assignment(template, self.assignment, self.course.db_url,
                                              self.config)
        return template

    def prepare_kit(self) -> Path:
        kit_assignment = self.assignment if self.registered else registry.ASSIGNMENTS[0]
        return cache.student_kit(kit_assignment)

    def matplotlib_cache(self, release_dir: Path) -> Path | None:
        """Build matplotlib's font cache once, if the notebooks use matplotlib."""
        if not any("matplotlib" in p.read_text(errors="replace") for p in release_dir.glob("*.ipynb")):
            return None
        cache = self.work / "mpl"
        cache.mkdir()
        env = {**os.environ, "MPLCONFIGDIR": str(cache)}
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                       capture_output=True, check=False)
        for folder, dirs, files in os.walk(cache):
            for name in dirs + files:
                os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
        os.chmod(cache, 0o755)
        return cache

    def make_pool(self) -> ProcessPoolExecutor:
        """Start the workers by forking this process once it has imported what they need,
        so that they start at once instead of each importing nbgrader again.

        The fork must come before this process runs threads. The workers end with os._exit,
        so they never close the database connection they may inherit.
        """
        worker.warm_up()
        context = multiprocessing.get_context("fork")
        slots = context.Queue()
        for slot in range(self.workers):
            slots.put(slot)
        return ProcessPoolExecutor(self.workers, mp_context=context,
                                   initializer=worker.init_worker, initargs=(slots,))

    # --- the run --------------------------------------------------------------------------

    def run(self) -> ClassRun:
        options = self.options
        self.pool = self.make_pool()
        self.lap("worker pool")
        from nbgrader.api import Gradebook

        try:
            template = self.prepare_template()
            self.lap("template and gradebook")
            release_dir = template / "notebooks" / self.assignment
            kit = self.prepare_kit()
            self.lap("student kit")
            probe, attempts = isolation.probe_isolation(
                options.isolation, self.assignment if self.registered else registry.ASSIGNMENTS[0],
                kit, options.limits)
            self.isolation_lines = probe.lines(options.limits) + [
                "probe: " + line for line in isolation.describe_attempts(attempts)]
            for line in self.isolation_lines:
                log.info("isolation: %s", line)
            self.lap("isolation probe")
            sandbox = isolation.SandboxSettings(
                mode=probe.mode, userns=probe.userns,
                assignment=self.assignment if self.registered else "",
                kit=kit if probe.mode == "namespaces" else None, limits=options.limits,
                matplotlib_cache=self.matplotlib_cache(release_dir))
            settings = worker.GradingSettings(
                assignment=self.assignment, template=template, work_root=self.work,
                nbgrader_config=_plain(self.config), sandbox=sandbox,
                cell_timeout=self.cell_timeout, interrupt_grace=options.interrupt_grace,
                output_limit=options.output_limit, max_restarts=options.max_restarts)
            # Only this process writes the real gradebook, through this one connection.
            self.book = Gradebook(self.course.db_url)
            tasks, submissions = self.intake_and_check(template, release_dir)
            self.lap("intake and pre-flight")
            self.grade_all(tasks, settings, submissions)
            self.lap(f"grading {len(tasks)} submissions")
            result = self.finish()
            self.lap("grades and report")
            return result
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            if getattr(self, "book", None) is not None:
                self.book.close()
            if options.keep_work:
                log.info("kept the work folder %s", self.work)
            else:
                shutil.rmtree(self.work, ignore_errors=True)

    def intake_and_check(self, template: Path, release_dir: Path):
        import nbformat

        options = self.options
        names = sorted(p.stem for p in release_dir.glob("*.ipynb"))
        from mytorch.course.grading.feedback import hidden_lines

        releases = {name: nbformat.read(release_dir / f"{name}.ipynb", as_version=4) for name in names}
        source_dir = template / "solutions" / self.assignment
        self.feedback_sources = {
            name: (releases[name],
                   hidden_lines(nbformat.read(source_dir / f"{name}.ipynb", as_version=4)))
            for name in names}
        self.max_scores = {
            name: sum(score for _, score in cells["grade"])
            for name, cells in gradebook.assignment_cells(
                f"sqlite:///{template / 'gradebook.db'}", self.assignment).items()}

        folder = options.submissions
        if folder.is_file():
            folder = intake.collect_zip(folder, self.assignment, release_dir, self.work,
                                        options.zip_regexp)
        elif not folder.is_dir():
            raise FileNotFoundError(f"submissions {folder} not found: give a folder or a zip file")
        submissions, skipped = intake.collect_folder(folder, self.assignment, names)
        for line in skipped:
            log.warning("skipped %s", line)
        self.skipped = skipped

        self.roster = intake.read_roster(options.roster) if options.roster else {}
        self.state = gradebook.GradingState(self.run_dir.parent, self.course.gradebook)
        source_text = "".join(p.read_text() for p in sorted(
            (template / "solutions" / self.assignment).glob("*.ipynb")))
        context = json.dumps({
            "source": hashlib.sha256(source_text.encode()).hexdigest(),
            "timeout": self.cell_timeout, "output": options.output_limit,
            "restarts": options.max_restarts, "limits": str(options.limits),
        }, sort_keys=True)

        tasks = []
        by_student = {}
        for number, submission in enumerate(submissions):
            by_student[submission.student] = submission
            digest = _digest(submission, context)
            previous = self.state.entry(self.assignment, submission.student)
            unchanged = (not options.force and previous is not None and previous["hash"] == digest
                         and gradebook.has_scores(self.book, self.assignment, submission.student))
            if unchanged:
                if submission.student in self.roster:
                    self.ensure_student(submission.student)
                report = StudentReport(**previous["report"])
                report.status = "unchanged"
                report.notes = ["not graded again: the submission has not changed"] + [
                    n for n in report.notes if not n.startswith("not graded again")]
                self.reports[submission.student] = report
                continue

            task, report = self.check_submission(number, submission, releases)
            report.notes = submission.notes + report.notes
            self.reports[submission.student] = report
            submission.digest = digest
            if task is None:
                self.merge(submission.student, {}, submission.timestamp, flagged=True)
                self.keep_submission(submission)
                self.record(submission, report)
            else:
                tasks.append(task)

        for student in sorted(set(self.roster) - set(by_student)):
            self.reports[student] = StudentReport(student, "missing",
                                                  max_score=sum(self.max_scores.values()),
                                                  notes=["no submission"])
            self.ensure_student(student)
        return tasks, by_student

    def check_submission(self, number: int, submission: intake.Submission, releases: dict):
        from mytorch.course.grading.preflight import check_notebook, write_notebook
        from mytorch.course.grading.scan import scan_notebook

        report = StudentReport(submission.student, "graded", max_score=sum(self.max_scores.values()))
        checked: dict[str, Path] = {}
        folder = self.work / "pre" / str(number)
        folder.mkdir(parents=True)
        for name, release in releases.items():
            result = check_notebook(name, submission.notebooks.get(name), release)
            report.notebooks.append({"name": name, "status": result.status,
                                     "repairs": result.repairs, "unresolved": result.unresolved,
                                     "reason": result.reason})
            if result.repaired is None:
                continue
            path = folder / f"{name}.ipynb"
            write_notebook(result.repaired, path)
            checked[name] = path
            for finding in scan_notebook(result.repaired, self.assignment if self.registered
                                         else registry.ASSIGNMENTS[0]):
                report.flags.append(f"code in {name} {finding.line()}")
        if not checked:
            report.status = "rejected"
            reasons = "; ".join(f"{n['name']}: {n['reason'] or n['status']}" for n in report.notebooks)
            print(f"{submission.student}: rejected, scores 0 ({reasons})", flush=True)
            return None, report
        task = worker.Task(number, submission.student, checked, submission.folder,
                           submission.timestamp)
        return task, report

    def grade_all(self, tasks: list, settings, submissions) -> None:
        pending = {task.number: task for task in tasks}
        retried: set[int] = set()
        total = len(tasks)
        while pending:
            futures = {self.pool.submit(worker.grade, task, settings): task
                       for task in pending.values()}
            try:
                for future in as_completed(futures):
                    task = futures[future]
                    result = future.result()
                    self.handle(result, submissions[task.student], len(pending), total)
                    del pending[task.number]
            except BrokenProcessPool:
                log.error("a worker process died; starting new workers for the %d submissions "
                          "left", len(pending))
                self.pool.shutdown(wait=True, cancel_futures=True)
                for number in [n for n in pending if n in retried]:
                    task = pending.pop(number)
                    failed = worker.Result(number, task.student,
                                           error="the worker process grading it died twice")
                    self.handle(failed, submissions[task.student], len(pending) + 1, total)
                retried.update(pending)
                self.pool = self.make_pool()

    # --- results ------------------------------------------------------------------------

    def ensure_student(self, student: str) -> None:
        self.book.update_or_create_student(student, **self.roster.get(student, {}))

    def merge(self, student: str, notebooks: dict, timestamp: str | None, flagged: bool) -> None:
        gradebook.merge_scores(self.book, self.assignment, student,
                               self.roster.get(student, {}), notebooks, timestamp, flagged)

    def record(self, submission: intake.Submission, report: StudentReport) -> None:
        report.score = round(report.score, 6)
        self.state.record(self.assignment, submission.student, submission.digest,
                          report.__dict__.copy())
        self.state.save()

    def handle(self, result: worker.Result, submission: intake.Submission, left: int,
               total: int) -> None:
        report = self.reports[result.student]
        timeouts, flags = describe_kernel_events(result.kernel_events)
        report.timeouts += timeouts
        report.flags += flags + [f"sandbox: {line}" for line in describe_audit_events(result.audit_events)]
        report.seconds = round(result.seconds, 2)

        notebooks = {}
        checked = [n["name"] for n in report.notebooks if n["status"] in ("ok", "repaired")]
        for name, scores in result.notebooks.items():
            if name in checked:  # a rejected or missing notebook scores 0
                notebooks[name] = {"scores": scores.scores, "comments": scores.comments}
                report.score += sum(s or 0.0 for s in scores.scores.values())
        if result.error:
            report.error = result.error
            report.status = "failed" if not notebooks else report.status
        flagged = bool(report.flags or report.repaired or report.unresolved or report.rejected
                       or result.error)
        self.merge(result.student, notebooks, result.timestamp or submission.timestamp, flagged)
        for name in notebooks:
            self.publish(result.student, name, result.notebooks[name])
        self.keep_submission(submission)
        self.keep_logs(result)
        self.record(submission, report)
        done = total - left + 1
        print(f"[{done}/{total}] {result.student}: {report.score:g} / {report.max_score:g}"
              f"{' (' + report.status + ')' if report.status != 'graded' else ''}"
              f"{', ' + str(len(report.flags)) + ' flags' if report.flags else ''}", flush=True)

    def keep_submission(self, submission: intake.Submission) -> None:
        """Copy the submission as handed in into the course's submitted folder."""
        _copy_folder(submission.folder, self.course.submitted / submission.student / self.assignment)

    def publish(self, student: str, name: str, scores: worker.NotebookScores) -> None:
        """Copy the autograded notebook into the course and render its feedback there.

        The feedback reads the scores from the real gradebook, after the merge, so that it
        shows an instructor's manual scores too, as ``nbgrader generate_feedback`` would.
        Rendering here, while the workers grade on, keeps it off their path.
        """
        from mytorch.course.grading.feedback import write_feedback

        if not scores.autograded:
            return
        autograded = self.course.autograded / student / self.assignment / f"{name}.ipynb"
        autograded.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(scores.autograded, autograded)
        html = self.course.feedback / student / self.assignment / f"{name}.html"
        release, hidden = self.feedback_sources[name]
        write_feedback(autograded, release, hidden, self.course.db_url, self.assignment,
                       student, html)
        self.reports[student].feedback.append(str(html))

    def keep_logs(self, result: worker.Result) -> None:
        folder = self.run_dir / "logs" / result.student
        folder.mkdir(parents=True, exist_ok=True)
        work = self.work / f"s{result.number}"
        for source, name in ((work / "nbgrader.log", "nbgrader.log"),
                             (work / "k" / "kernel.log", "kernel.log")):
            if source.is_file():
                shutil.copy2(source, folder / name)
        if result.error:
            (folder / "error.txt").write_text(result.error)

    def finish(self) -> ClassRun:
        with _quiet("traitlets"):
            grades_csv = gradebook.export_csv(self.book, self.assignment,
                                              self.run_dir / "grades.csv")
        students = [self.reports[s] for s in sorted(self.reports)]
        counts: dict[str, int] = {}
        for report in students:
            counts[report.status] = counts.get(report.status, 0) + 1
        header = {
            "assignment": self.assignment,
            "started": datetime.fromtimestamp(self.started).isoformat(timespec="seconds"),
            "seconds": time.time() - self.started,
            "workers": self.workers,
            "gradebook": str(self.course.gradebook),
            "grades_csv": str(grades_csv),
            "feedback_dir": str(self.course.feedback),
            "isolation": self.isolation_lines,
            "cell_timeout": self.cell_timeout,
            "skipped": self.skipped,
            "counts": counts,
        }
        md, js = write_reports(self.run_dir, header, students)
        return ClassRun(self.run_dir, md, js, grades_csv, students, self.isolation_lines)


def grade_class(options: ClassRunOptions) -> ClassRun:
    """Grade every submission of `options.assignment` (see the module doc)."""
    return ClassGrader(options).run()
