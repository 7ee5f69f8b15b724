"""Autograde one submission in a throwaway course; runs in a worker process.

The parent hands each worker a `Task`: the student's checked notebooks and files. The worker
builds a course under its own folder: the template gradebook, which contains the assignment's
cells and hidden tests, and ``submitted/<student>/<assignment>/``. It runs nbgrader's
``Autograde`` converter there with `GuardedExecute` in place of ``Execute``, and returns the
scores read from that throwaway gradebook, the kernel's events and the paths of the
autograded notebooks. It never opens the real gradebook: the parent merges the scores and
then renders the feedback from the real gradebook.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mytorch.course.grading.isolation import KernelSandbox, SandboxSettings, copy_any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradingSettings:
    """Settings every worker needs, the same for the whole class run."""

    assignment: str
    template: Path  # throwaway course with solutions/, notebooks/ and gradebook.db
    work_root: Path  # the workers' folders go below this
    nbgrader_config: dict  # the course's nbgrader configuration, as a plain dict
    sandbox: SandboxSettings
    cell_timeout: int
    interrupt_grace: int
    output_limit: int
    max_restarts: int

    @property
    def release_dir(self) -> Path:
        return self.template / "notebooks" / self.assignment

    @property
    def source_dir(self) -> Path:
        return self.template / "solutions" / self.assignment


@dataclass(frozen=True)
class Task:
    number: int
    student: str
    notebooks: dict[str, Path]  # notebook name -> checked notebook to grade
    files: Path | None  # the student's other files (data, modules), copied beside them
    timestamp: str | None


@dataclass
class NotebookScores:
    scores: dict[str, float | None]  # grade_id -> auto score
    max_scores: dict[str, float]
    comments: dict[str, str | None]  # grade_id -> auto comment ("No response.")
    autograded: str | None = None  # path of the autograded notebook


@dataclass
class Result:
    number: int
    student: str
    notebooks: dict[str, NotebookScores] = field(default_factory=dict)
    kernel_events: list[dict] = field(default_factory=list)
    audit_events: list[dict] = field(default_factory=list)
    timestamp: str | None = None
    error: str | None = None
    log_file: str | None = None
    seconds: float = 0.0
    slot: int = 0


_slot = 0
_private_mounts = False  # this worker has a mount namespace of its own


def init_worker(slots) -> None:
    """Pool initializer: take this worker's slot (it picks the kernel's uid), and as root,
    a mount namespace of its own for the kernels' runtime tmpfs mounts."""
    global _slot, _private_mounts
    _slot = slots.get()
    if os.geteuid() == 0:
        from mytorch.course.grading.sandbox import private_mount_namespace

        try:
            private_mount_namespace()
            _private_mounts = True
        except OSError as error:
            logging.getLogger(__name__).warning(
                "no private mount namespace for worker %d (%s); kernels write their "
                "sockets into a folder on disk", _slot, error)
    # nbgrader's add_submission makes SQLAlchemy warn about autoflush; it is harmless, and a
    # worker's stderr is the terminal of the class run.
    warnings.filterwarnings("ignore", message=".*not in session.*")
    # nbgrader and nbclient log to "traitlets"; each task attaches its own log file, and
    # nothing should reach the terminal from a worker.
    logger = logging.getLogger("traitlets")
    logger.setLevel(logging.INFO)
    logger.propagate = False


def warm_up() -> int:
    """Import what grading needs; submitting this makes the pool start its workers early."""
    import nbgrader.converters  # noqa: F401 (imported for its import time)

    import mytorch.course.grading.feedback  # noqa: F401 (the parent renders feedback)
    import mytorch.course.grading.kernel  # noqa: F401

    return os.getpid()


def _autograde_config(settings: GradingSettings, course: Path):
    from nbgrader.converters import Autograde
    from traitlets.config import Config
    from nbgrader.preprocessors import Execute

    from mytorch.course.grading.kernel import GuardedExecute

    config = Config(settings.nbgrader_config)
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.source_directory = str(settings.template / "solutions")
    config.CourseDirectory.release_directory = str(settings.template / "notebooks")
    config.CourseDirectory.submitted_directory = "submitted"
    config.CourseDirectory.autograded_directory = "autograded"
    config.CourseDirectory.feedback_directory = "feedback"
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    # The pre-flight check has put back every missing cell. nbgrader's own way of doing it
    # fails when the predecessor of a missing cell is a read-only cell.
    config.OverwriteCells.add_missing_cells = False

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        GuardedExecute if preprocessor is Execute else preprocessor for preprocessor in default
    ]
    config.GuardedExecute.timeout = settings.cell_timeout
    config.GuardedExecute.iopub_timeout = settings.interrupt_grace
    config.GuardedExecute.output_limit = settings.output_limit
    config.GuardedExecute.max_restarts = settings.max_restarts
    config.GuardedExecute.kernel_name = "python3"
    return config


def _read_scores(db_url: str, assignment: str, student: str) -> tuple[dict, str | None]:
    from nbgrader.api import Gradebook

    notebooks = {}
    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        for notebook in submission.notebooks:
            notebooks[notebook.name] = NotebookScores(
                scores={g.name: g.auto_score for g in notebook.grades},
                max_scores={g.name: float(g.max_score) for g in notebook.grades},
                comments={c.name: c.auto_comment for c in notebook.comments},
            )
    return notebooks, timestamp


def grade(task: Task, settings: GradingSettings) -> Result:
    """Autograde one submission; an Exception goes into the result's `error`, not up."""
    started = time.perf_counter()
    work = settings.work_root / f"s{task.number}"
    result = Result(task.number, task.student, slot=_slot)
    log_file = work / "nbgrader.log"
    handler = None
    try:
        work.mkdir(parents=True)
        os.chmod(work, 0o700)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logging.getLogger("traitlets").addHandler(handler)
        result.log_file = str(log_file)
        _grade(task, settings, work, result)
    except Exception:
        result.error = traceback.format_exc(limit=8)
    finally:
        if handler is not None:
            logging.getLogger("traitlets").removeHandler(handler)
            handler.close()
        result.seconds = time.perf_counter() - started
    return result


def _grade(task: Task, settings: GradingSettings, work: Path, result: Result) -> None:
    course = work / "c"
    submitted = course / "submitted" / task.student / settings.assignment
    submitted.mkdir(parents=True)
    shutil.copy2(settings.template / "gradebook.db", course / "gradebook.db")
    if task.files is not None:
        for path in task.files.iterdir():
            if path.suffix != ".ipynb":
                copy_any(path, submitted / path.name)
    for name, path in task.notebooks.items():
        shutil.copy2(path, submitted / f"{name}.ipynb")
    if task.timestamp:
        (submitted / "timestamp.txt").write_text(task.timestamp)

    # The kernel's own copy of the submission: the student's files and the release's data.
    kernel_files = work / "files"
    shutil.copytree(submitted, kernel_files, ignore=shutil.ignore_patterns("timestamp.txt"))
    autograded = course / "autograded" / task.student / settings.assignment
    sandbox = KernelSandbox(settings.sandbox, work / "k", autograded, kernel_files,
                            settings.release_dir, slot=_slot, runtime_tmpfs=_private_mounts)
    try:
        _autograde(task, settings, course, autograded, sandbox, result)
    finally:
        sandbox.close()


def _autograde(task: Task, settings: GradingSettings, course: Path, autograded: Path,
               sandbox: KernelSandbox, result: Result) -> None:
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    from mytorch.course.grading.kernel import active_sandbox, start_early, stop_early

    start_early(sandbox, "python3")

    config = _autograde_config(settings, course)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = settings.assignment
    coursedir.student_id = task.student
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    converter.create_student = True
    with active_sandbox(sandbox):
        try:
            converter.start()
        except Exception as error:  # nbgrader reports a failed notebook with NbGraderException
            result.error = (f"nbgrader autograde failed: {error}; see "
                            f"{course.parent / 'nbgrader.log'}")
        finally:
            stop_early(sandbox)
            result.kernel_events = list(sandbox.events)
            result.audit_events = sandbox.read_events()

    db_url = config.CourseDirectory.db_url
    result.notebooks, result.timestamp = _read_scores(db_url, settings.assignment, task.student)
    for name, scores in result.notebooks.items():
        path = autograded / f"{name}.ipynb"
        if path.is_file():
            scores.autograded = str(path)

