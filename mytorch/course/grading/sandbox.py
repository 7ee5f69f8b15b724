"""Start one notebook kernel in a sandbox. Standard library only.

Run as ``python -I -S sandbox.py SPEC.json -- KERNEL_ARGV...``; `SandboxKernelManager` in
`mytorch.course.grading.kernel` writes the spec and builds that command line. The script must
not import anything from the course: it starts for every kernel and must start fast, and with
``-I -S`` neither the current folder nor site-packages are on ``sys.path``.

The spec's ``mode`` chooses the isolation:

- ``namespaces``: new mount, network, PID, IPC and UTS namespaces (plus a user namespace when
  not started as root). The kernel sees a new root built from the spec's mounts: read-only
  system folders, the Python installation and the student kit, a writable copy of the
  submission as its working folder, and a private ``/tmp``. It runs under an unprivileged
  user, with ``no_new_privs`` set, and is PID 2 under a small reaper that is PID 1, so
  that every process the kernel starts dies with it.
- ``user``: no namespaces; the kernel only runs under an unprivileged user.
- ``none``: the kernel runs as the caller.

In every mode the kernel gets the spec's resource limits and environment, its stdout and
stderr go to a capped log file, and an audit hook (`sys.addaudithook`) reports file,
network, process and import events of interest through a pipe into an events file.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import shutil
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

# Bytes of kernel stdout/stderr and of audit events kept; the rest is read and dropped.
LOG_LIMIT = 64 * 1024
EVENTS_LIMIT = 256 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    result = _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data))
    _check(result, f"mount {source} on {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def unmount(target: str) -> None:
    """Detach the mount on `target` (``umount -l``)."""
    _check(_libc.umount2(os.fsencode(target), MNT_DETACH), f"umount {target}")


def private_mount_namespace() -> None:
    """Give this process a mount namespace of its own, whose mounts nobody else sees."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl {option}")


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as stream:
        stream.write(text)


# --- the kernel's view of the file system -------------------------------------------------


def _preserved_flags(path: str) -> int:
    """Return the mount flags of `path` that a bind remount must keep (a user namespace
    may not clear them)."""
    flags = 0
    f_flag = os.statvfs(path).f_flag
    for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                             (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                             (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)):
        if f_flag & st_flag:
            flags |= ms_flag
    return flags


def _make_mount_point(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        open(target, "a").close()


def build_root(root: str, mounts: list[dict]) -> None:
    """Mount a fresh tmpfs on `root` and apply `mounts` inside it, in order.

    Each entry is ``{"kind": "tmpfs" | "bind" | "copy" | "symlink", "target": absolute path
    in the kernel's view, ...}``. A bind also has ``source`` and ``writable``, a tmpfs
    ``size_mb`` and ``mode``, a copy ``source``, ``size_mb`` and the owner ``uid`` and
    ``gid``, and a symlink ``source`` (the link text). Binds of missing sources are skipped.
    """
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    for entry in mounts:
        target = root + entry["target"]
        kind = entry["kind"]
        if kind == "symlink":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(entry["source"], target)
        elif kind == "tmpfs":
            os.makedirs(target, exist_ok=True)
            options = f"size={entry['size_mb']}m,mode={entry.get('mode', '755')}"
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)
        elif kind == "copy":
            # A private, size-limited copy of a folder: what the kernel writes there stays
            # in memory and dies with the namespace.
            os.makedirs(target, exist_ok=True)
            options = f"size={entry['size_mb']}m,mode=700"
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)
            shutil.copytree(entry["source"], target, symlinks=True, dirs_exist_ok=True)
            if entry.get("uid") is not None:
                for folder, dirs, files in os.walk(target):
                    os.chown(folder, entry["uid"], entry["gid"])
                    for name in files:
                        os.chown(os.path.join(folder, name), entry["uid"], entry["gid"],
                                 follow_symlinks=False)
        elif kind == "bind":
            source = entry["source"]
            if not os.path.exists(source):
                continue
            _make_mount_point(target, os.path.isdir(source))
            mount(source, target, None, MS_BIND | MS_REC)
            flags = MS_BIND | MS_REMOUNT | MS_NOSUID | _preserved_flags(source)
            if not entry.get("writable"):
                flags |= MS_RDONLY
            if entry.get("device"):
                flags &= ~MS_NODEV
            else:
                flags |= MS_NODEV
            mount(None, target, None, flags)
        else:
            raise ValueError(f"unknown mount kind {kind!r}")


# --- processes -----------------------------------------------------------------------------


def set_limits(limits: dict) -> None:
    names = {
        "cpu_seconds": resource.RLIMIT_CPU,
        # RLIMIT_DATA counts the heap and private writable mappings. RLIMIT_AS would count
        # the address space that libraries reserve: PyTorch with matplotlib passes 3 GiB
        # while using 0.6 GiB.
        "memory_bytes": resource.RLIMIT_DATA,
        "file_bytes": resource.RLIMIT_FSIZE,
        "processes": resource.RLIMIT_NPROC,
        "open_files": resource.RLIMIT_NOFILE,
    }
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in limits.items():
        if value is None:
            continue
        soft = hard = int(value)
        if name == "cpu_seconds":
            # SIGXCPU at the soft limit, SIGKILL at the hard one even if SIGXCPU is caught.
            hard = soft + 2
        resource.setrlimit(names[name], (soft, hard))


def drop_privileges(spec: dict) -> None:
    mode = spec["mode"]
    if mode == "none":
        return
    if spec.get("userns"):
        # Started unprivileged: become a non-root user of a nested user namespace, which
        # owns none of the mounts and so can change none of them.
        unshare(CLONE_NEWUSER)
        _write_file("/proc/self/setgroups", "deny")
        _write_file("/proc/self/uid_map", f"{spec['uid']} 0 1")
        _write_file("/proc/self/gid_map", f"{spec['gid']} 0 1")
    else:
        os.setgroups([])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def exec_kernel(spec: dict, argv: list[str], events_fd: int, log_fd: int) -> None:
    """Turn this process into the kernel: chroot, limits, user, file descriptors, exec."""
    if spec["mode"] == "namespaces":
        os.chroot(spec["root"])
    os.chdir(spec["cwd"])
    set_limits(spec["limits"])
    drop_privileges(spec)

    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    keep = events_fd
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    os.set_inheritable(keep, True)

    env = dict(spec["env"])
    env["MYTORCH_AUDIT_FD"] = str(keep)
    env["MYTORCH_AUDIT_CONFIG"] = json.dumps(spec.get("audit", {}))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.execve(argv[0], kernel_argv(argv), env)
    except OSError as error:
        raise OSError(error.errno, f"cannot start {argv[0]} as uid {os.getuid()}: "
                      f"{error.strerror}") from None


def kernel_argv(argv: list[str]) -> list[str]:
    """Replace ``-m ipykernel_launcher`` by the bootstrap that installs the audit hook."""
    if len(argv) >= 3 and argv[1:3] == ["-m", "ipykernel_launcher"]:
        return [argv[0], "-s", "-c", BOOTSTRAP, *argv[3:]]
    return argv


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def reaper(spec: dict, argv: list[str], events_fd: int, log_fd: int) -> None:
    """PID 1 of the new PID namespace: mount /proc, start the kernel, reap, exit with its status."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.makedirs(spec["root"] + "/proc", exist_ok=True)
    mount("proc", spec["root"] + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    kernel = os.fork()
    if kernel == 0:
        exec_kernel(spec, argv, events_fd, log_fd)
    os.close(events_fd)
    os.close(log_fd)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == kernel:
            os._exit(exit_status(status))


def relay(events_read: int, log_read: int, spec: dict) -> None:
    """Copy the kernel's audit events and output into their files, up to the limits, until EOF."""
    sinks = {
        events_read: [open(spec["events_file"], "ab"), EVENTS_LIMIT],
        log_read: [open(spec["log_file"], "ab"), LOG_LIMIT],
    }
    open_fds = set(sinks)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            sink = sinks[fd]
            if sink[1] > 0:
                sink[0].write(chunk[: sink[1]])
                sink[0].flush()
                sink[1] -= len(chunk)
    for stream, _ in sinks.values():
        stream.close()


def launch(spec: dict, argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are the kernel's (process group)
    if spec["mode"] == "namespaces":
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        if spec.get("userns"):
            uid, gid = os.getuid(), os.getgid()
            unshare(flags | CLONE_NEWUSER)
            _write_file("/proc/self/setgroups", "deny")
            _write_file("/proc/self/uid_map", f"0 {uid} 1")
            _write_file("/proc/self/gid_map", f"0 {gid} 1")
        else:
            unshare(flags)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        build_root(spec["root"], spec["mounts"])

    events_read, events_write = os.pipe()
    log_read, log_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(events_read)
        os.close(log_read)
        try:
            if spec["mode"] == "namespaces":
                reaper(spec, argv, events_write, log_write)
            else:
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                exec_kernel(spec, argv, events_write, log_write)
        except BaseException as error:  # the child must never return into the launcher
            message = f"sandbox: {error!r}\n".encode()
            for fd in (log_write, 2):  # after exec_kernel's dup2, fd 2 is the log
                try:
                    os.write(fd, message)
                    break
                except OSError:
                    continue
            os._exit(125)
    os.close(events_write)
    os.close(log_write)
    relay(events_read, log_read, spec)
    _, status = os.waitpid(child, 0)
    return exit_status(status)


# The kernel's first code: install the audit hook, then start ipykernel as
# ``python -m ipykernel_launcher`` would. Everything the hook uses is bound here, so that
# patching modules later changes nothing, and the hook cannot be removed.
BOOTSTRAP = r'''
import os, sys

def _install_audit_hook():
    import json
    fd = int(os.environ.pop("MYTORCH_AUDIT_FD", "-1"))
    config = json.loads(os.environ.pop("MYTORCH_AUDIT_CONFIG", "{}"))
    if fd < 0:
        return None
    write, dumps, fsdecode = os.write, json.dumps, os.fsdecode
    getcwd, isabs, join, normpath = os.getcwd, os.path.isabs, os.path.join, os.path.normpath
    markers = tuple(config.get("path_markers", ()))
    writable = tuple(config.get("writable", ()))
    protected = tuple(config.get("protected", ()))
    hidden = frozenset(config.get("hidden_modules", ()))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    processes = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty", "pty.spawn"}
    network = {"socket.connect", "socket.sendto", "socket.getaddrinfo", "socket.bind"}
    seen = set()
    budget = [300]
    state = {"armed": False, "cwd": ""}

    def arm():
        state["cwd"] = getcwd()
        state["armed"] = True

    def emit(kind, detail):
        key = (kind, detail)
        if not state["armed"] or key in seen or budget[0] <= 0:
            return
        seen.add(key)
        budget[0] -= 1
        try:
            write(fd, (dumps({"event": kind, "detail": detail}) + "\n").encode())
        except Exception:
            pass

    def as_path(value):
        if not isinstance(value, (str, bytes)):
            return None
        path = fsdecode(value)
        return path if isabs(path) else normpath(join(getcwd(), path))

    def own(path):
        """Tell whether `path` is the kernel's working folder or inside it."""
        cwd = state["cwd"]
        return path == cwd or path.startswith(cwd + "/")

    def hook(event, args):
        if not state["armed"]:
            return
        if event == "open":
            path = as_path(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            course_file = not own(path) and any(marker in path for marker in markers)
            outside = not path.startswith(writable) or (path.startswith(protected) and not own(path))
            if writing and (course_file or outside):
                emit("write", path)
            elif course_file:
                emit("read", path)
        elif event in ("os.listdir", "os.scandir", "glob.glob"):
            path = as_path(args[0] if args else ".")
            if path and not own(path) and any(marker in path for marker in markers):
                emit("list", path)
        elif event == "import":
            name = args[0]
            if name in hidden:
                emit("import", name)
        elif event in network:
            emit("network", f"{event} {str(args[1:] if len(args) > 1 else args)[:200]}")
        elif event in processes:
            emit("process", f"{event} {str(args[:2])[:200]}")
        elif event in ("os.kill", "os.killpg"):
            emit("signal", f"{event} {args}")

    sys.addaudithook(hook)
    return arm

def _seed_matplotlib_cache():
    seed = os.environ.pop("MYTORCH_MPL_SEED", None)
    target = os.environ.get("MPLCONFIGDIR")
    if seed and target and os.path.isdir(seed):
        import shutil
        shutil.copytree(seed, target, dirs_exist_ok=True)

_arm_audit_hook = _install_audit_hook()
_seed_matplotlib_cache()
del _install_audit_hook, _seed_matplotlib_cache
if sys.path and sys.path[0] == "":
    del sys.path[0]
sys.argv[0] = "ipykernel_launcher"
from ipykernel.kernelapp import IPKernelApp as _IPKernelApp
_app = _IPKernelApp.instance()
_app.initialize()
# Events of the kernel's own start-up are not the student's: record from here on.
if _arm_audit_hook is not None:
    _arm_audit_hook()
del _arm_audit_hook
_app.start()
'''


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -I -S sandbox.py SPEC.json -- KERNEL_ARGV...", file=sys.stderr)
        return 2
    with open(argv[0]) as stream:
        spec = json.load(stream)
    return launch(spec, argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
