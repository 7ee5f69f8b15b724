"""Where a notebook runs: whether a person can use its widgets."""

from __future__ import annotations

import pytest

from mytorch import runtime


class FakeCmdline:
    """A stand-in for Path("/proc/<parent>/cmdline"), whose arguments are separated by NUL bytes."""

    def __init__(self, command: bytes):
        self.command = command

    def __call__(self, path: str) -> FakeCmdline:
        return self

    def read_bytes(self) -> bytes:
        return self.command


@pytest.fixture
def plain_environment(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(runtime.METRICS_ENV, raising=False)


def test_no_frontend_under_nbgrader(plain_environment, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.runs_without_frontend()


def test_no_frontend_in_solution_run(plain_environment, monkeypatch, tmp_path):
    monkeypatch.setenv(runtime.METRICS_ENV, str(tmp_path / "metrics.json"))
    assert runtime.runs_without_frontend()


@pytest.mark.parametrize("runner", [b"papermill", b"jupyter-nbconvert", b"nbclient"])
def test_no_frontend_under_notebook_runner(plain_environment, monkeypatch, runner):
    monkeypatch.setattr(runtime, "Path", FakeCmdline(b"/usr/bin/python3\0" + runner + b"\0run.ipynb\0"))
    assert runtime.runs_without_frontend()


def test_frontend_in_jupyterlab_kernel(plain_environment, monkeypatch):
    monkeypatch.setattr(runtime, "Path", FakeCmdline(b"/usr/bin/python3\0-m\0jupyterlab\0"))
    assert not runtime.runs_without_frontend()
