"""Kernel side of grading: a kernel manager that starts kernels in the sandbox, and an
executor that survives kernels that hang, ignore interrupts, exit or flood their output.

`GuardedExecute` replaces nbgrader's `Execute` in ``Autograde.autograde_preprocessors``. It
keeps nbgrader's rules (a test cell with an error or stderr output scores 0) and adds:

- a cell that times out is interrupted, as nbgrader does. If the kernel ignores the
  interrupt, it is killed and the cell gets an error output. A new kernel then replays the
  cells that ran before, skipping the failed ones, and goes on with the next cell;
- a kernel that dies (``os._exit``, a crash, a resource limit) is handled the same way;
- after `max_restarts` restarts, the remaining cells are not run and get an error output;
- each cell keeps at most `output_limit` bytes of output. Error outputs are always kept, and
  a stream cut short keeps a marker of the same stream, so that stderr still scores 0;
- in a test cell whose execution failed, an error output is put first, so that nbgrader
  cannot take a partial score from an ``execute_result`` the student's code published.

Everything notable is appended to the active sandbox's `events` for the instructor's report.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any, Iterator

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode, from_dict
from traitlets import Integer

from nbgrader.preprocessors import Execute

from mytorch.course.grading.isolation import KernelSandbox

SANDBOX_SCRIPT = Path(__file__).with_name("sandbox.py")

_active_sandbox: KernelSandbox | None = None


@contextmanager
def active_sandbox(sandbox: KernelSandbox) -> Iterator[KernelSandbox]:
    """Make kernels started in this block run in `sandbox` and report into its events."""
    global _active_sandbox
    previous, _active_sandbox = _active_sandbox, sandbox
    try:
        yield sandbox
    finally:
        _active_sandbox = previous


def current_sandbox() -> KernelSandbox:
    if _active_sandbox is None:
        raise RuntimeError("no sandbox is active: start kernels inside active_sandbox()")
    return _active_sandbox


class SandboxKernelClient(AsyncKernelClient):
    """jupyter_client's client, minus a fixed wait when the kernel starts."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Wait for the kernel's kernel_info reply and one IOPub message, as jupyter_client
        8 does, without its final 0.2 s of draining IOPub: nbclient matches each output to
        its request, so stale status messages do no harm. That wait was paid per submission."""
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # IOPub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")


class SandboxKernelManager(AsyncKernelManager):
    """Start the kernel through ``sandbox.py`` with the active sandbox's spec.

    In the ``namespaces`` mode the kernel has no network, so it talks to this process over
    ZeroMQ's ``ipc`` transport: Unix sockets in the sandbox's runtime folder, which both
    sides see at the same path.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.client_factory = SandboxKernelClient
        self.sandbox = current_sandbox()
        name = self.sandbox.next_kernel_name()
        self.connection_file = str(self.sandbox.runtime_dir / f"{name}.json")
        if self.sandbox.uses_ipc:
            self.transport = "ipc"
            self.ip = str(self.sandbox.runtime_dir / name)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        spec_path = self.sandbox.write_spec(Path(self.connection_file))
        return [sys.executable, "-I", "-S", str(SANDBOX_SCRIPT), str(spec_path), "--", *command]

    async def _async_wait(self, pollinterval: float = 0.01) -> None:
        # A killed sandbox ends within milliseconds; jupyter_client polls every 0.1 s.
        await super()._async_wait(pollinterval=0.01)

    def exit_code(self) -> int | None:
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.poll()


def start_early(sandbox: KernelSandbox, kernel_name: str) -> None:
    """Start the first kernel of `sandbox` now, so that it boots while nbgrader prepares the
    notebook; `GuardedExecute` takes it instead of starting one."""
    from jupyter_core.utils import run_sync

    with active_sandbox(sandbox):
        manager = SandboxKernelManager(kernel_name=kernel_name)
        run_sync(manager.start_kernel)(cwd=str(sandbox.scratch),
                                       extra_arguments=["--HistoryManager.hist_file=:memory:"])
    sandbox.early_kernel = manager


def stop_early(sandbox: KernelSandbox) -> None:
    """Shut down the early kernel of `sandbox` if nothing took it (nbgrader failed first)."""
    from jupyter_core.utils import run_sync

    manager = getattr(sandbox, "early_kernel", None)
    sandbox.early_kernel = None
    if manager is not None:
        run_sync(manager.shutdown_kernel)(now=True)


class KernelStopped(Exception):
    """The kernel of the current cell died or had to be killed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return from_dict({
        "output_type": "error", "ename": ename, "evalue": evalue,
        "traceback": [f"{ename}: {evalue}"],
    })


def _output_size(content: dict) -> int:
    if "text" in content:
        return len(content["text"])
    if "data" in content:
        return sum(len(value) if isinstance(value, str) else len(json.dumps(value))
                   for value in content["data"].values())
    return 0


class GuardedExecute(Execute):
    """nbgrader's Execute with kernel restarts, output caps and event records (see module doc)."""

    output_limit = Integer(
        1024 * 1024, help="bytes of output kept per cell; the rest is replaced by a marker"
    ).tag(config=True)
    max_restarts = Integer(
        2, help="kernels started again after one dies or is killed, per notebook"
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self.shutdown_kernel = "immediate"

    # --- events --------------------------------------------------------------------------

    def _label(self, index: int) -> str:
        cell = self.nb.cells[index]
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        return grade_id or f"#{index + 1}"

    def _record(self, kind: str, index: int, **details: Any) -> None:
        current_sandbox().events.append({"kind": kind, "cell": self._label(index), **details})

    # --- execution -----------------------------------------------------------------------

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        from nbclient import NotebookClient

        sandbox = current_sandbox()
        early = getattr(sandbox, "early_kernel", None)
        sandbox.early_kernel = None
        NotebookClient.__init__(self, nb, km or early)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._current_index = -1
        self._replaying = False
        self._output_bytes: dict[int, int] = {}
        self._truncated: dict[int, set[str]] = {}
        self._truncation_events: dict[int, dict] = {}

        failed: set[int] = set()
        position = 0
        restarts = 0
        while position < len(self.nb.cells):
            try:
                with self.setup_kernel():
                    info = self.wait_for_reply(self.kc.kernel_info())
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                    try:
                        self._replay(position, failed)
                        while position < len(self.nb.cells):
                            self._run_cell(position)
                            position += 1
                    except KernelStopped as stopped:
                        failed.add(position)
                        self._mark_stopped(position, stopped.reason)
                        position += 1
                        restarts += 1
            finally:
                if not self.owns_km and self.km is not None and km is None:
                    # The early kernel is this executor's to stop; later ones it starts itself.
                    self._cleanup_kernel()
                    self.owns_km = True
            if position < len(self.nb.cells) and restarts > self.max_restarts:
                self._mark_not_run(position, f"the kernel was stopped {restarts} times")
                break

        self.set_widgets_metadata()
        return self.nb, self.resources

    def _run_cell(self, index: int) -> None:
        self._current_index = index
        self._reset_cell_counters(index)
        self._timeout_event: dict | None = None
        try:
            self.preprocess_cell(self.nb.cells[index], self.resources, index)
        except DeadKernelError:
            raise KernelStopped(f"{self._death_reason()} while running this cell") from None
        except CellTimeoutError:
            if self._timeout_event is None:
                self._record("kernel_died", index, reason="output stalled")
                raise KernelStopped(
                    f"the kernel sent no output for {self.iopub_timeout} s after the cell "
                    f"finished, so the grader killed it"
                ) from None
            self._timeout_event["outcome"] = "killed"
            raise KernelStopped(
                f"the cell timed out after {self.timeout} s and ignored the interrupt, so the "
                f"grader killed the kernel"
            ) from None

    def _reset_cell_counters(self, index: int) -> None:
        self._output_bytes[index] = 0
        self._truncated[index] = set()
        self._truncation_events.pop(index, None)

    def _replay(self, position: int, failed: set[int]) -> None:
        """Run the cells before `position` again in a new kernel, without keeping outputs."""
        if position == 0:
            return
        self._replaying = True
        try:
            for index in range(position):
                cell = self.nb.cells[index]
                if index in failed or cell.cell_type != "code":
                    continue
                self._current_index = index
                self._reset_cell_counters(index)
                try:
                    self.execute_cell(copy.deepcopy(cell), index, store_history=True)
                except (DeadKernelError, CellTimeoutError):
                    raise KernelStopped(
                        "the kernel stopped again while the grader re-ran the cells above "
                        "after a restart, so this cell was not run"
                    ) from None
                finally:
                    self.nb.cells[index] = cell
        finally:
            self._replaying = False

    def _death_reason(self) -> str:
        code = self.km.exit_code() if isinstance(self.km, SandboxKernelManager) else None
        if code is None:
            return "the kernel died"
        if code > 128:
            import signal

            number = code - 128
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed; memory or CPU limit)"}
            return f"the kernel was killed by {name}{hint.get(name, '')}"
        return f"the kernel exited with status {code}"

    def _mark_stopped(self, index: int, reason: str) -> None:
        cell = self.nb.cells[index]
        if "timed out" not in reason and "no output" not in reason:
            self._record("kernel_died", index, reason=reason)
        if cell.cell_type == "code":
            cell.outputs = list(cell.get("outputs", [])) + [_error_output("KernelStopped", reason)]

    def _mark_not_run(self, start: int, reason: str) -> None:
        labels = []
        for index in range(start, len(self.nb.cells)):
            cell = self.nb.cells[index]
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [_error_output("NotRun", f"not run: {reason}")]
                labels.append(self._label(index))
        current_sandbox().events.append({"kind": "not_run", "cells": labels, "reason": reason})

    # --- hooks into nbclient -------------------------------------------------------------

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None):
        if not self._replaying and cell is not None:  # None: a kernel_info request timed out
            self._record("timeout", self._current_index, seconds=timeout, outcome="interrupted")
            self._timeout_event = current_sandbox().events[-1]
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs: Any) -> None:
        cell = kwargs["cell"]
        reply = kwargs["execute_reply"]
        status = reply["content"].get("status")
        shown = any(o.output_type == "error" for o in cell.outputs)
        super().on_cell_executed(**kwargs)
        if status != "error" or self._replaying:
            return
        ename = reply["content"].get("ename", "")
        if not shown and ename != "CellTimeoutError":
            self._record("error_hidden", self._current_index, ename=ename)
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            others = [o for o in cell.outputs if o.output_type != "error"]
            cell.outputs = errors[:1] + others + errors[1:]

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int):
        msg_type = msg["msg_type"]
        content = msg["content"]
        if msg_type == "error":
            content["traceback"] = content.get("traceback", [])[-30:]
            return super().output(outs, msg, display_id, cell_index)

        used = self._output_bytes.get(cell_index, 0) + _output_size(content)
        self._output_bytes[cell_index] = used
        if used <= self.output_limit:
            return super().output(outs, msg, display_id, cell_index)

        if not self._replaying:
            event = self._truncation_events.get(cell_index)
            if event is None:
                self._record("output_truncated", cell_index, limit=self.output_limit)
                event = self._truncation_events[cell_index] = current_sandbox().events[-1]
            event["bytes"] = used

        stream = content.get("name", "stdout") if msg_type == "stream" else "stdout"
        truncated = self._truncated.setdefault(cell_index, set())
        if stream in truncated:
            return None
        truncated.add(stream)
        room = self.output_limit - (used - _output_size(content))
        if msg_type == "stream" and room > 0:
            # Keep the part of this message that still fits, then the marker.
            content["text"] = content["text"][:room]
            super().output(outs, msg, display_id, cell_index)
        marker = from_dict({
            "output_type": "stream", "name": stream,
            "text": f"\n[output cut by the grader: more than {self.output_limit} bytes]\n",
        })
        outs.append(marker)
        return marker
