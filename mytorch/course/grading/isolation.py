"""What the kernel of a submission may see and do, and which isolation this machine allows.

`probe_isolation` tries the sandbox modes from the strongest down (see ``sandbox.py``). In
each it starts a small program that checks from the inside that the course files are out of
sight, that the network is out of reach and that it runs under another user.
`KernelSandbox` keeps one submission's folders and writes the spec that ``sandbox.py``
starts each kernel with.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mytorch import registry
from mytorch.course import REPO_ROOT
from mytorch.course.grading.cache import SHARED_FOLDERS

SANDBOX_SCRIPT = Path(__file__).with_name("sandbox.py")
MODES = ("namespaces", "user", "none")

# Unprivileged users the kernels run as: one per worker, so that no two kernels share a
# user (and a process limit). This range is free on Debian and Ubuntu systems; users that
# exist in /etc/passwd are skipped.
FIRST_KERNEL_UID = 64000

# Files under /etc that the kernel needs: shared library paths, certificates, name service
# and font configuration.
ETC_FILES = ("passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache", "ld.so.conf",
             "ld.so.conf.d", "localtime", "ssl", "alternatives", "mime.types", "fonts")
# Read-only caches that libraries look for (fontconfig prints an error without its own).
SHARED_CACHES = ("/var/cache/fontconfig",)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("null", "zero", "full", "random", "urandom")

# Parts of a path that mark course files a submission has no business opening.
PATH_MARKERS = ("/solutions/", "/source/", "gradebook", "/autograder/", "nbgrader_config",
                "/submitted/", "/autograded/", "/feedback/")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one kernel (``setrlimit``); None leaves a limit as inherited."""

    cpu_seconds: int | None = 1800
    memory_mb: int | None = 4096
    file_mb: int | None = 64
    processes: int | None = 256
    open_files: int | None = 1024

    def rlimits(self) -> dict[str, int | None]:
        def mebibytes(value: int | None) -> int | None:
            return None if value is None else value * 1024 * 1024

        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": mebibytes(self.memory_mb),
            "file_bytes": mebibytes(self.file_mb),
            "processes": self.processes,
            "open_files": self.open_files,
        }

    def describe(self) -> str:
        return (f"CPU {self.cpu_seconds} s per kernel, memory (heap and private writable "
                f"mappings) {self.memory_mb} MiB, files {self.file_mb} MiB, "
                f"{self.processes} processes")


@dataclass(frozen=True)
class SandboxSettings:
    """The sandbox of a class run, shared by every submission."""

    mode: str  # one of MODES
    userns: bool  # namespaces created from an unprivileged account (user namespace)
    assignment: str  # the registry assignment: grading mode and hidden modules
    kit: Path | None  # student kit mounted as the repository (namespaces mode)
    limits: Limits = field(default_factory=Limits)
    tmp_mb: int = 256  # size of the kernel's /tmp (namespaces mode)
    work_mb: int = 512  # size of the kernel's copy of the submission (namespaces mode)
    matplotlib_cache: Path | None = None

    @property
    def uses_ipc(self) -> bool:
        return self.mode == "namespaces"


def free_kernel_uid(slot: int) -> int:
    """Return an unused uid for worker `slot`, counting up from FIRST_KERNEL_UID."""
    candidates = itertools.count(FIRST_KERNEL_UID)
    free = []
    for uid in candidates:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            free.append(uid)
            if len(free) > slot:
                return free[slot]


def hidden_modules(assignment: str) -> list[str]:
    return sorted({c.module for c in registry.COMPONENTS if registry.is_hidden(c, assignment)})


def installed_mytorch() -> Path:
    """Return the folder that ``import mytorch`` loads in this environment."""
    import mytorch

    return Path(mytorch.__file__).resolve().parent


class KernelSandbox:
    """The folders of one submission's kernels, and the spec each kernel starts with.

    `cwd` is the folder nbgrader runs the notebook in (the autograded copy, which holds the
    test code); the kernel sees `scratch` there instead: a copy of `student_files`, with the
    non-notebook files of `extra_files` (the release folder) on top.
    """

    def __init__(self, settings: SandboxSettings, work_dir: Path, cwd: Path,
                 student_files: Path, extra_files: Path | None, slot: int,
                 runtime_tmpfs: bool = False):
        self.settings = settings
        self.work_dir = work_dir
        self.cwd = cwd
        self.scratch = work_dir / "scratch"
        self.runtime_dir = work_dir / "rt"
        self.root = work_dir / "root"
        self.events_file = work_dir / "events.jsonl"
        self.log_file = work_dir / "kernel.log"
        self.events: list[dict] = []
        self.early_kernel = None  # a kernel manager started before nbgrader needs it
        self._kernels = 0
        self.uid = self.gid = free_kernel_uid(slot) if settings.mode != "none" else os.getuid()

        for folder in (self.scratch, self.runtime_dir, self.root):
            folder.mkdir(parents=True, exist_ok=True)
        copy_tree(student_files, self.scratch)
        if extra_files is not None:
            # As nbgrader does with the source folder, the release's files (data, given
            # modules) replace the student's copies; its notebooks do not.
            for path in extra_files.iterdir():
                if path.suffix != ".ipynb":
                    copy_any(path, self.scratch / path.name)
        self.runtime_mounted = False
        owned = settings.mode != "none" and os.geteuid() == 0 and not settings.userns
        if owned and settings.mode == "user":
            # Without namespaces the kernel works in the scratch folder itself.
            chown_tree(self.scratch, self.uid, self.gid)
        if owned and runtime_tmpfs and settings.mode == "namespaces":
            # The kernel may write in its runtime folder (it creates its sockets there), so
            # the folder is a small tmpfs, unmounted with close(). Only a caller in a private
            # mount namespace may ask for this, or the mount would show on the host.
            from mytorch.course.grading.sandbox import mount

            mount("tmpfs", str(self.runtime_dir), "tmpfs", 0,
                  f"size=1m,mode=700,uid={self.uid},gid={self.gid}")
            self.runtime_mounted = True
        elif owned:
            os.chown(self.runtime_dir, self.uid, self.gid)
        os.chmod(self.runtime_dir, 0o700)

    @property
    def uses_ipc(self) -> bool:
        return self.settings.uses_ipc

    def close(self) -> None:
        """Unmount the runtime tmpfs, which discards what the kernel wrote there."""
        if self.runtime_mounted:
            from mytorch.course.grading.sandbox import unmount

            unmount(str(self.runtime_dir))
            self.runtime_mounted = False

    def next_kernel_name(self) -> str:
        self._kernels += 1
        return f"k{self._kernels}"

    def kernel_cwd(self) -> Path:
        """The kernel's working folder, as the kernel sees it."""
        return self.cwd if self.settings.mode == "namespaces" else self.scratch

    def home(self) -> str:
        return "/tmp" if self.settings.mode == "namespaces" else str(self.scratch)

    def environment(self) -> dict[str, str]:
        venv_bin = Path(sys.executable).parent
        home = self.home()
        env = {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp" if self.settings.mode == "namespaces" else home,
            "IPYTHONDIR": f"{home}/.ipython",
            "MPLCONFIGDIR": f"{home}/.matplotlib",
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            # One thread per kernel: the workers already use every core.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "NBGRADER_EXECUTION": "autograde",
            registry.GRADING_ENV: self.settings.assignment,
        }
        if self.settings.matplotlib_cache is not None:
            env["MYTORCH_MPL_SEED"] = str(self.settings.matplotlib_cache)
        return env

    def mounts(self) -> list[dict]:
        """Return the kernel's file system: the mounts to make, in order, on a fresh tmpfs."""
        mounts: list[dict] = []
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                mounts.append({"kind": "symlink", "source": os.readlink(path), "target": path})
            elif os.path.isdir(path):
                mounts.append({"kind": "bind", "source": path, "target": path})
        for name in ETC_FILES:
            mounts.append({"kind": "bind", "source": f"/etc/{name}", "target": f"/etc/{name}"})
        for path in SHARED_CACHES:
            mounts.append({"kind": "bind", "source": path, "target": path})

        mounts.append({"kind": "tmpfs", "target": "/dev", "size_mb": 1})
        for name in DEVICES:
            mounts.append({"kind": "bind", "source": f"/dev/{name}", "target": f"/dev/{name}",
                           "writable": True, "device": True})
        for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                           ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            mounts.append({"kind": "symlink", "source": link, "target": f"/dev/{name}"})
        mounts.append({"kind": "tmpfs", "target": "/dev/shm", "size_mb": 64, "mode": "1777"})
        mounts.append({"kind": "bind", "source": "/sys", "target": "/sys"})
        mounts.append({"kind": "tmpfs", "target": "/tmp", "size_mb": self.settings.tmp_mb,
                       "mode": "1777"})

        base_prefix = Path(sys.base_prefix).resolve()
        if not any(base_prefix.is_relative_to(d) for d in SYSTEM_DIRS if os.path.isdir(d)):
            mounts.append({"kind": "bind", "source": str(base_prefix), "target": str(base_prefix)})
        kit = self.settings.kit
        if kit is not None:
            mounts.append({"kind": "bind", "source": str(kit), "target": str(REPO_ROOT)})
            for name in SHARED_FOLDERS:
                mounts.append({"kind": "bind", "source": str(REPO_ROOT / name),
                               "target": str(REPO_ROOT / name)})
        prefix = Path(sys.prefix)
        mounts.append({"kind": "bind", "source": str(prefix), "target": str(prefix)})
        library = installed_mytorch()
        if kit is not None and not library.is_relative_to(REPO_ROOT):
            # A non-editable install: put the kit's library over the installed one.
            mounts.append({"kind": "bind", "source": str(kit / "mytorch"), "target": str(library)})
        if self.settings.matplotlib_cache is not None:
            cache = str(self.settings.matplotlib_cache)
            mounts.append({"kind": "bind", "source": cache, "target": cache})
        mounts.append({"kind": "bind", "source": str(self.runtime_dir),
                       "target": str(self.runtime_dir), "writable": True})
        owner = None if self.settings.userns else self.uid
        mounts.append({"kind": "copy", "source": str(self.scratch), "target": str(self.cwd),
                       "size_mb": self.settings.work_mb, "uid": owner, "gid": owner})
        return mounts

    def protected_paths(self) -> list[str]:
        """Folders a write into is flagged even where they lie under a writable one like /tmp.

        A checkout or a venv under /tmp is mounted read-only over the kernel's private /tmp,
        so a write there fails, but it is still an attempt the instructor must hear about.
        """
        folders = {str(Path(sys.prefix)), str(Path(sys.base_prefix).resolve()), str(REPO_ROOT)}
        if self.settings.kit is not None:
            folders.add(str(self.settings.kit))
        if self.settings.mode == "namespaces":
            folders.update(m["target"] for m in self.mounts()
                           if m["kind"] == "bind" and not m.get("writable"))
        return sorted(folder.rstrip("/") + "/" for folder in folders)

    def spec(self) -> dict:
        settings = self.settings
        cwd = str(self.kernel_cwd())
        return {
            "mode": settings.mode,
            "userns": settings.userns,
            "uid": self.uid if not settings.userns else 1000,
            "gid": self.gid if not settings.userns else 1000,
            "root": str(self.root),
            "cwd": cwd,
            "runtime": str(self.runtime_dir),
            "mounts": self.mounts() if settings.mode == "namespaces" else [],
            "limits": settings.limits.rlimits(),
            "env": self.environment(),
            "events_file": str(self.events_file),
            "log_file": str(self.log_file),
            "audit": {
                "path_markers": list(PATH_MARKERS),
                "writable": [cwd + "/", "/tmp/", "/dev/", self.home() + "/"],
                "protected": self.protected_paths(),
                "hidden_modules": hidden_modules(settings.assignment),
            },
        }

    def write_spec(self, connection_file: Path | None) -> Path:
        path = self.work_dir / f"spec-{self._kernels}.json"
        path.write_text(json.dumps(self.spec(), indent=1))
        if connection_file is not None and self.settings.mode != "none" and not self.settings.userns:
            os.chown(connection_file, self.uid, self.gid)
        return path

    def read_events(self) -> list[dict]:
        """Return the audit events the kernels reported, deduplicated, in order."""
        if not self.events_file.is_file():
            return []
        events, seen = [], set()
        for line in self.events_file.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            key = (str(event.get("event")), str(event.get("detail")))
            if key not in seen:
                seen.add(key)
                events.append({"event": key[0], "detail": key[1][:300]})
        return events


def _skip_links(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if os.path.islink(os.path.join(folder, name))]


def copy_any(source: Path, destination: Path) -> None:
    """Copy a file or folder, leaving out symbolic links: a link in a submission could
    point at a course file, which a copy would hand to the kernel."""
    if source.is_symlink():
        return
    if source.is_dir():
        shutil.copytree(source, destination, ignore=_skip_links, dirs_exist_ok=True)
    elif source.is_file():
        shutil.copy2(source, destination)


def copy_tree(source: Path, destination: Path) -> None:
    for path in source.iterdir():
        copy_any(path, destination / path.name)


def chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


# --- probing -------------------------------------------------------------------------------

PROBE_CODE = r'''
import json, os, socket, sys
checks = {"uid": os.getuid()}
secret, repo, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    open(secret).read()
    checks["secret_readable"] = True
except OSError:
    checks["secret_readable"] = False
checks["solutions_visible"] = os.path.exists(os.path.join(repo, "solutions"))
try:
    with open(os.path.join(repo, ".probe-write"), "w"):
        pass
    os.remove(os.path.join(repo, ".probe-write"))
    checks["repo_writable"] = True
except OSError:
    checks["repo_writable"] = False
try:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        checks["network"] = True
except OSError:
    checks["network"] = False
checks["pid"] = os.getpid()
print("PROBE " + json.dumps(checks))
'''


@dataclass
class ProbeResult:
    mode: str
    userns: bool
    ok: bool
    checks: dict
    error: str = ""

    def lines(self, limits: Limits) -> list[str]:
        """Describe the isolation in the instructor's terms."""
        if self.mode == "namespaces":
            user = "a user namespace" if self.userns else f"uid {self.checks.get('uid')}"
            return [
                "private mount namespace: the kernel sees the student kit in place of the "
                "repository, the Python installation (read-only) and its own copy of the "
                "submission; no source notebook, gradebook or other submission",
                "network: new network namespace with no interface up",
                f"user: unprivileged ({user}), no_new_privs set",
                "PID namespace: every process the kernel starts dies with it",
                f"limits: {limits.describe()}",
            ]
        if self.mode == "user":
            return [
                f"user: unprivileged (uid {self.checks.get('uid')}); NO private mount "
                "namespace: the kernel can read world-readable files, including the "
                "instructor's source notebooks if their permissions allow",
                "network: NOT isolated (no network namespace on this machine)",
                "library: the instructor's mytorch, not the student kit; grading mode hides "
                "the references, but the kernel can switch it off",
                f"limits: {limits.describe()}",
            ]
        return [
            "NO ISOLATION: the kernel runs with the grader's rights and can read the source "
            "notebooks and the gradebook",
            "network: NOT isolated",
            "library: the instructor's mytorch, not the student kit; grading mode hides the "
            "references, but the kernel can switch it off",
            f"limits: {limits.describe()}",
        ]


def _probe_once(mode: str, userns: bool, assignment: str, kit: Path | None,
                limits: Limits) -> ProbeResult:
    with tempfile.TemporaryDirectory(prefix="mtg-probe-") as scratch:
        work = Path(scratch)
        os.chmod(work, 0o700)
        secret = work / "secret.txt"
        secret.write_text("the kernel must not read this")
        files = work / "files"
        files.mkdir()
        settings = SandboxSettings(mode=mode, userns=userns, assignment=assignment, kit=kit,
                                   limits=limits)
        cwd = work / "course" / "autograded" / "probe"
        cwd.mkdir(parents=True)
        sandbox = KernelSandbox(settings, work / "sandbox", cwd, files, None, slot=0)
        sandbox.next_kernel_name()
        spec_path = sandbox.write_spec(None)

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        command = [sys.executable, "-I", "-S", str(SANDBOX_SCRIPT), str(spec_path), "--",
                   sys.executable, "-c", PROBE_CODE, str(secret), str(REPO_ROOT), str(port)]
        try:
            result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return ProbeResult(mode, userns, False, {}, "the probe timed out")
        finally:
            listener.close()
        log = sandbox.log_file.read_text(errors="replace") if sandbox.log_file.exists() else ""
        for line in log.splitlines():
            if line.startswith("PROBE "):
                checks = json.loads(line[len("PROBE "):])
                return ProbeResult(mode, userns, _isolated(mode, checks), checks)
        detail = (log + result.stderr).strip()[-500:] or f"exit status {result.returncode}"
        return ProbeResult(mode, userns, False, {}, detail)


def _isolated(mode: str, checks: dict) -> bool:
    """Tell whether the probe's checks show the isolation that `mode` promises."""
    if mode == "namespaces":
        return (not checks["secret_readable"] and not checks["solutions_visible"]
                and not checks["repo_writable"] and not checks["network"]
                and checks["pid"] <= 3)
    if mode == "user":
        return not checks["secret_readable"] and checks["uid"] != 0
    return True


def probe_isolation(requested: str, assignment: str, kit: Path | None,
                    limits: Limits) -> tuple[ProbeResult, list[ProbeResult]]:
    """Return the strongest mode that works (or `requested`, checked) and every attempt.

    `requested` is ``auto`` or one of MODES. Raises RuntimeError if a requested mode fails.
    """
    root = os.geteuid() == 0
    candidates: list[tuple[str, bool]] = []
    if requested in ("auto", "namespaces"):
        candidates.append(("namespaces", not root))
    if requested in ("auto", "user") and root:
        candidates.append(("user", False))
    if requested in ("auto", "none"):
        candidates.append(("none", False))
    if not candidates:
        raise RuntimeError(f"isolation mode {requested!r} needs root; run as root or use "
                           f"--isolation namespaces (user namespaces) or none")

    attempts = []
    for mode, userns in candidates:
        result = _probe_once(mode, userns, assignment, kit if mode == "namespaces" else None,
                             limits)
        attempts.append(result)
        if result.ok:
            return result, attempts
    failures = "; ".join(f"{a.mode}: {a.error or a.checks}" for a in attempts)
    if requested != "auto":
        raise RuntimeError(f"isolation mode {requested!r} does not work on this machine "
                           f"({failures}); try --isolation auto")
    raise RuntimeError(f"no sandbox mode works on this machine ({failures})")


def describe_attempts(attempts: list[ProbeResult]) -> list[str]:
    return [f"{a.mode}{' (user namespace)' if a.userns else ''}: "
            f"{'works' if a.ok else 'unavailable: ' + (a.error or json.dumps(a.checks))}"
            for a in attempts]


def settings_dict(settings: SandboxSettings) -> dict:
    data = asdict(settings)
    return {key: str(value) if isinstance(value, Path) else value for key, value in data.items()}
