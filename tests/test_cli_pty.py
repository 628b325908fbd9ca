"""`tune` on a terminal, as a person runs it: through a pseudo-terminal (the live view is on), reading the
screen's text and the exit code. The plain (pipe) runs of the same commands are in test_cli.py."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.test_cli import make_job, study_status

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class Terminal:
    """A `tune` process on a 120x40 pseudo-terminal; ``text`` is what was written to the screen, escapes removed."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "LANGSMITH_TRACING": "false", "TERM": "xterm-256color", "COLUMNS": "120",
               "LINES": "40"}
        env.pop("NO_COLOR", None)
        env.pop("TERM_PROGRAM", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal is its stdin, stdout, stderr and controlling tty
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [sys.executable, "-m", "tunesmith.agents.frontends.cli", *args], env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.raw = b""
        self.code: int | None = None

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace")).replace("\r", "")

    def read_until(self, needle: str, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while needle not in self.text:
            if time.time() > deadline or not self._read(deadline - time.time()):
                pytest.fail(f"{needle!r} never appeared on the terminal:\n{self.text[-3000:]}")

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = 600) -> int:
        deadline = time.time() + timeout
        while self._read(max(0.0, deadline - time.time())):
            pass
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                os.close(self.fd)
                return self.code
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        pytest.fail(f"tune did not exit in time:\n{self.text[-3000:]}")

    def _read(self, timeout: float) -> bool:
        """Read what is there; False at end of output (the process closed the terminal) or timeout."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: every process holding the terminal is gone
            return False
        self.raw += chunk
        return bool(chunk)


def test_run_status_and_report_on_a_terminal(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=4)
    run = Terminal("run", str(job), "--llm", "off", cwd=tmp_path)
    assert run.wait() == 0, run.text[-3000:]
    screen = run.text
    assert "internal error" not in screen and "Traceback" not in screen
    assert "budget: " in screen and "agents" in screen  # the live view was on
    assert "stopped: trial budget spent (4/4)" in screen
    assert re.search(r"best config \(trial #\d+\): \{", screen)
    assert re.search(r"speedup over the default: \d+\.\d{3}x \(95% interval", screen)
    assert "report: .tunesmith/reports/toy.md" in screen
    assert study_status(tmp_path) == "finished"

    status = Terminal("status", "toy", cwd=tmp_path)
    assert status.wait() == 0, status.text
    assert "toy (finished)" in status.text and "baseline" in status.text and "best vs default:" in status.text

    listing = Terminal("list", cwd=tmp_path)
    assert listing.wait() == 0 and re.search(r"toy\s*│\s*command\s*│\s*finished\s*│\s*4", listing.text), listing.text

    report = Terminal("report", "toy", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert report.wait() == 0, report.text
    assert "wrote " in report.text and (tmp_path / "out" / "toy.md").exists()


def test_ctrl_c_on_a_terminal_stops_resumably(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=4, sleep=1.0)
    run = Terminal("run", str(job), "--llm", "off", cwd=tmp_path)
    run.read_until("trial #1:")
    run.type(b"\x03")  # Ctrl-C, as a person presses it
    assert run.wait() == 130, run.text[-3000:]
    assert "interrupted: finished trials are stored; run the same command to resume" in run.text
    assert "Traceback" not in run.text and "internal error" not in run.text
    assert study_status(tmp_path) == "interrupted"
    again = Terminal("run", str(job), "--llm", "off", cwd=tmp_path)
    assert again.wait() == 0, again.text[-3000:]
    assert "resuming study 'toy'" in again.text or "resuming" in again.text
    assert "speedup over the default:" in again.text and study_status(tmp_path) == "finished"


def test_errors_on_a_terminal_are_one_line(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=2)
    bad = Terminal("run", str(job), "--trials", "0", cwd=tmp_path)
    assert bad.wait() == 2
    lines = [ln for ln in bad.text.splitlines() if ln.strip()]
    assert lines == ["error: --trials 0: the trial budget must be at least 1; fix: pass --trials 1 or more"]
    missing = Terminal("status", "nope", cwd=tmp_path)
    assert missing.wait() == 2 and "no studies in" in missing.text  # nothing stored by the refused run
