"""The instructor's report of a class run: ``report.md`` and ``report.json``.

One entry per student: score, status, what the pre-flight check repaired or rejected and
why, and the cells that timed out. Each entry also has one line ("flag") for each behaviour
aimed at the grader. Flags come from the static scan, from the kernel (interrupts ignored,
exits, output floods, hidden errors) and from the sandbox's audit events (course files,
writes, network, processes, hidden imports).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class StudentReport:
    student: str
    status: str  # graded, unchanged, rejected, missing, failed
    score: float = 0.0
    max_score: float = 0.0
    notebooks: list[dict] = field(default_factory=list)  # name, status, repairs, unresolved, reason
    timeouts: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    feedback: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def repaired(self) -> list[str]:
        return [f"{n['name']}: {line}" for n in self.notebooks for line in n.get("repairs", [])]

    @property
    def rejected(self) -> list[str]:
        return [f"{n['name']}: {n['reason']}" for n in self.notebooks if n["status"] == "rejected"]

    @property
    def unresolved(self) -> list[str]:
        return [f"{n['name']}: {line}" for n in self.notebooks for line in n.get("unresolved", [])]


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} bytes"


def describe_kernel_events(events: list[dict]) -> tuple[list[str], list[str]]:
    """Turn the executor's events into (timeout lines, flag lines)."""
    timeouts, flags = [], []
    for event in events:
        kind, cell = event["kind"], event.get("cell", "?")
        if kind == "timeout" and event.get("outcome") == "killed":
            timeouts.append(f"cell '{cell}': timed out after {event['seconds']} s and ignored "
                            f"the interrupt; the kernel was killed and restarted")
            flags.append(f"cell '{cell}' ignored the grader's interrupt")
        elif kind == "timeout":
            timeouts.append(f"cell '{cell}': timed out after {event['seconds']} s; the "
                            f"interrupt stopped it")
        elif kind == "kernel_died":
            flags.append(f"the kernel stopped in cell '{cell}': {event['reason']}")
        elif kind == "output_truncated":
            flags.append(f"cell '{cell}' printed {_size(event.get('bytes', 0))}; its output "
                         f"was cut at {_size(event['limit'])}")
        elif kind == "error_hidden":
            flags.append(f"cell '{cell}' raised {event.get('ename') or 'an error'} but its error "
                         f"output was suppressed; it was scored as failed")
        elif kind == "not_run":
            flags.append(f"cells {', '.join(event['cells'])} were not run: {event['reason']}")
    return timeouts, flags


AUDIT_MESSAGES = {
    "read": "tried to read a course file, which the sandbox does not show: {}",
    "list": "tried to list a course folder, which the sandbox does not show: {}",
    "write": "tried to write outside its working folder (read-only or absent in the "
             "sandbox; nothing there outlives the submission): {}",
    "import": "imported the hidden reference module {} (grading mode refuses it)",
    "network": "tried to use the network: {}",
    "process": "started a process: {}",
    "signal": "sent a signal: {}",
}


# Programs that libraries start on their own: ctypes.util.find_library runs ldconfig (or a
# compiler), platform runs uname. Starting them is not the student's doing.
LIBRARY_HELPERS = ("ldconfig", "uname", "gcc", "cc", "ld", "objdump", "lscpu")


def _library_helper(event: dict) -> bool:
    if event["event"] != "process":
        return False
    words = event["detail"].replace("'", " ").replace('"', " ").replace(",", " ").split()
    programs = [word.rsplit("/", 1)[-1] for word in words[1:3]]
    return any(program in LIBRARY_HELPERS for program in programs)


def describe_audit_events(events: list[dict]) -> list[str]:
    return [AUDIT_MESSAGES.get(e["event"], e["event"] + ": {}").format(e["detail"])
            for e in events if not _library_helper(e)]


def write_reports(run_dir: Path, header: dict, students: list[StudentReport]) -> tuple[Path, Path]:
    """Write report.json and report.md into `run_dir`; return their paths."""
    data = {**header, "students": [asdict(s) for s in students]}
    json_path = run_dir / "report.json"
    json_path.write_text(json.dumps(data, indent=2))
    md_path = run_dir / "report.md"
    md_path.write_text(render_markdown(header, students))
    return md_path, json_path


def render_markdown(header: dict, students: list[StudentReport]) -> str:
    lines = [
        f"# Class run: {header['assignment']}",
        "",
        f"- started {header['started']}, {header['seconds']:.1f} s, {header['workers']} workers",
        f"- gradebook: `{header['gradebook']}`; grades: `{header['grades_csv']}`",
        f"- feedback: `{header['feedback_dir']}`",
        f"- graded {header['counts'].get('graded', 0)}, unchanged "
        f"{header['counts'].get('unchanged', 0)}, rejected {header['counts'].get('rejected', 0)}, "
        f"missing {header['counts'].get('missing', 0)}, failed {header['counts'].get('failed', 0)}",
        "",
        "## Isolation",
        "",
        *[f"- {line}" for line in header["isolation"]],
        "",
        "## Students",
        "",
        "| student | score | status | repaired | rejected | timed out | flags |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in students:
        lines.append(f"| {s.student} | {s.score:g} / {s.max_score:g} | {s.status} | "
                     f"{len(s.repaired) + len(s.unresolved)} | {len(s.rejected)} | "
                     f"{len(s.timeouts)} | {len(s.flags)} |")

    flagged = [(s.student, flag) for s in students for flag in s.flags]
    lines += ["", "## Flags", ""]
    lines += [f"- {student}: {flag}" for student, flag in flagged] or ["- none"]

    lines += ["", "## Details", ""]
    for s in students:
        lines.append(f"### {s.student}: {s.score:g} / {s.max_score:g} ({s.status})")
        lines.append("")
        sections = [("rejected", s.rejected), ("repaired", s.repaired),
                    ("not repaired", s.unresolved), ("timed out", s.timeouts),
                    ("flags", s.flags), ("notes", s.notes)]
        for title, entries in sections:
            for entry in entries:
                lines.append(f"- {title}: {entry}")
        if s.error:
            lines.append(f"- error: {s.error.strip().splitlines()[-1]}")
        if not any(entries for _, entries in sections) and not s.error:
            lines.append("- nothing to report")
        lines.append("")
    return "\n".join(lines)
