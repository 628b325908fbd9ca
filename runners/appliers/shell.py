"""Running the outside tools appliers use (lfs, lctl, gluster, blockdev, juicefs), one error line each."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from ..errors import InfrastructureError


class ApplyError(InfrastructureError):
    """A setting could not be read, applied or restored (the tool failed or is missing)."""


def is_root() -> bool:
    """Whether this process may change kernel tunables and file-system daemons."""
    return os.geteuid() == 0


def run_tool(argv: Sequence[str], *, timeout_s: float = 60.0, input_text: str | None = None) -> str:
    """Run ``argv`` and return its standard output; ``ApplyError`` with the last error line if it fails."""
    argv = [str(a) for a in argv]
    if shutil.which(argv[0]) is None:
        raise ApplyError(f"{argv[0]} is not installed here (needed for {shlex.join(argv)})",
                         f"install {argv[0]} or remove the setting from the job")
    try:
        done = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ApplyError(f"{shlex.join(argv)} timed out after {timeout_s:g} s", "check that the service is up") from None
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["no error output"]
        raise ApplyError(f"{shlex.join(argv)} exited {done.returncode}: {lines[-1].strip()}",
                         "check the setting's name and value")
    return done.stdout
