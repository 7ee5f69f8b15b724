"""Command line of the course tooling: ``python -m mytorch.course COMMAND``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mytorch import registry
from mytorch.runtime import RUN_SIZES


def command_build(args: argparse.Namespace) -> int:
    from mytorch.course.build import BuildError, build

    try:
        stale = build(check=args.check)
    except BuildError as error:
        print(f"Build failed, {error}", file=sys.stderr)
        return 1
    if args.check and stale:
        print("Generated files are stale; run `make build` and commit the result:", file=sys.stderr)
        for line in stale:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("Generated files are up to date." if not stale else f"Rebuilt {len(stale)} files or cells.")
    return 0


def command_kit(args: argparse.Namespace) -> int:
    from mytorch.course.kit import build_kit

    destination = args.output or Path("dist") / f"kit-{args.assignment}"
    print(f"Student kit of {args.assignment} written to {build_kit(args.assignment, destination)}")
    return 0


def command_run(args: argparse.Namespace) -> int:
    from mytorch.course.solution_run import solution_run

    run_dir = solution_run(args.size, only=args.notebooks or None)
    print(f"Report written to {run_dir / 'report.md'} and {run_dir / 'report.json'}")
    return 0


def command_grade(args: argparse.Namespace) -> int:
    from mytorch.course.grading.cli import run_grade

    return run_grade(args)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mytorch.course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="copy reference components into the solution "
                                "notebooks and regenerate notebooks/ with nbgrader")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 and name every stale file and cell")
    build.set_defaults(handler=command_build)

    kit = commands.add_parser("kit", help="build the student kit of one assignment")
    kit.add_argument("assignment", choices=registry.ASSIGNMENTS)
    kit.add_argument("--output", type=Path, help="kit folder (default: dist/kit-ASSIGNMENT)")
    kit.set_defaults(handler=command_kit)

    run = commands.add_parser("run", help="execute the solution notebooks and write a report "
                              "under runs/<timestamp>/")
    run.add_argument("--size", choices=RUN_SIZES, default="full",
                     help="smoke: seconds per notebook; full: the real training runs")
    run.add_argument("notebooks", nargs="*", help="only these notebooks (default: all, in order)")
    run.set_defaults(handler=command_run)

    from mytorch.course.grading.cli import add_grade_parser

    add_grade_parser(commands, command_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = make_parser().parse_args(argv)
    return args.handler(args)
