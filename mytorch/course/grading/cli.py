"""The ``grade`` subcommand: its options, and the call into `run.grade_class`.

Kept free of heavy imports: `mytorch.course.cli` builds this parser for every command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

GRADE_HELP = "grade a class: isolated, parallel nbgrader autograding with a report"

GRADE_DESCRIPTION = """\
Grade every submission of ASSIGNMENT with nbgrader, in parallel, each kernel in a sandbox
(namespaces, an unprivileged user, no network, resource limits, the student kit in place of
the reference library). Merges the scores into the gradebook, writes each student's
feedback without hidden tests, exports grades.csv, and writes report.md and report.json
under the class-runs folder. A submission graded before is graded again only if its files,
the assignment or the grading settings changed, unless --force is given.
"""


def add_grade_parser(commands, handler) -> argparse.ArgumentParser:
    grade = commands.add_parser("grade", help=GRADE_HELP, description=GRADE_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    # What to grade.
    grade.add_argument("assignment", help="the assignment (folder name under the source folder)")
    grade.add_argument("--submissions", type=Path, required=True,
                       help="folder with one folder per student, or the zip file an LMS exports "
                            "(unpacked with nbgrader zip_collect)")
    grade.add_argument("--roster", type=Path,
                       help="CSV with a column id (or student_id) and optional first_name, "
                            "last_name, email; listed students without a submission score 0")

    # How to grade.
    grade.add_argument("--workers", type=int,
                       help="submissions graded at once (default: the number of cores)")
    grade.add_argument("--force", action="store_true",
                       help="grade every submission, including unchanged ones")

    # The course.
    grade.add_argument("--config", type=Path,
                       help="nbgrader configuration (default: autograder/nbgrader_config.py)")
    grade.add_argument("--course-root", type=Path,
                       help="course folder (default: CourseDirectory.root of the configuration)")
    grade.add_argument("--gradebook", type=Path,
                       help="gradebook file (default: the configuration's; with --course-root, "
                            "COURSE_ROOT/gradebook.db)")
    grade.add_argument("--output", type=Path,
                       help="folder for the run folders (default: autograder/class-runs)")

    # Limits of each kernel.
    grade.add_argument("--cell-timeout", type=int, metavar="SECONDS",
                       help="seconds a cell may run (default: the configuration's Execute.timeout)")
    grade.add_argument("--interrupt-grace", type=int, default=5, metavar="SECONDS",
                       help="seconds a timed-out cell gets to stop after the interrupt before "
                            "the kernel is killed (default: 5)")
    grade.add_argument("--output-limit", type=int, default=1024, metavar="KIB",
                       help="KiB of output kept per cell (default: 1024)")
    grade.add_argument("--cpu-seconds", type=int, default=1800,
                       help="CPU time limit of each kernel in seconds (default: 1800)")
    grade.add_argument("--memory-mb", type=int, default=4096,
                       help="memory limit of each kernel (RLIMIT_DATA: heap and private "
                            "writable mappings) in MiB (default: 4096)")
    grade.add_argument("--file-mb", type=int, default=64,
                       help="largest file a kernel may write, in MiB (default: 64)")

    # Sandbox, intake and debugging.
    grade.add_argument("--isolation", choices=("auto", "namespaces", "user", "none"),
                       default="auto",
                       help="sandbox of the kernels: auto takes the strongest that works here "
                            "(default: auto)")
    grade.add_argument("--zip-regexp",
                       help="with a zip: regular expression with student_id and file_id groups, "
                            "matched against each extracted file's path (nbgrader's "
                            "FileNameCollectorPlugin.named_regexp)")
    grade.add_argument("--keep-work", action="store_true",
                       help="keep the throwaway courses of the workers (for debugging)")

    grade.set_defaults(handler=handler)
    return grade


def run_grade(args: argparse.Namespace) -> int:
    from mytorch.course.grading.isolation import Limits
    from mytorch.course.grading.run import DEFAULT_CONFIG, ClassRunOptions, grade_class

    if args.workers is not None and args.workers < 1:
        print(f"invalid --workers {args.workers}: give 1 or more", file=sys.stderr)
        return 2
    options = ClassRunOptions(
        assignment=args.assignment,
        submissions=args.submissions,
        roster=args.roster,
        workers=args.workers,
        force=args.force,
        config_file=args.config or DEFAULT_CONFIG,
        course_root=args.course_root,
        gradebook=args.gradebook,
        output_dir=args.output,
        cell_timeout=args.cell_timeout,
        interrupt_grace=args.interrupt_grace,
        output_limit=args.output_limit * 1024,
        limits=Limits(cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb,
                      file_mb=args.file_mb),
        isolation=args.isolation,
        zip_regexp=args.zip_regexp,
        keep_work=args.keep_work,
    )
    try:
        run = grade_class(options)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"grade failed: {error}", file=sys.stderr)
        return 1

    print("Isolation:")
    for line in run.isolation:
        print(f"  {line}")
    flagged = sum(1 for s in run.students if s.flags)
    print(f"{len(run.students)} students; {flagged} with flags. Report: {run.report_md}")
    print(f"Grades: {run.grades_csv}")
    return 0
