"""Runs a user's own program as a workload: times it and writes the result JSON the command target reads.

``python -m tunesmith.tools.initjob.wrap [--cwd DIR] [--metric KEY] [--metric-file PATH] -- PROGRAM ARGS...``

The program runs in ``DIR`` (where the user runs it, so its relative paths work), its output passes through,
and its exit code is ours. The result (``$TUNESMITH_RESULT``) holds ``seconds`` (wall time of the program)
and, with ``--metric KEY``, KEY read from the last JSON object on the program's stdout that holds it, or
from the JSON file ``--metric-file`` names. A run that reports no such key fails with one line saying how
to report it. ``--raw`` only runs the program (used for ``--help``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EXIT_NO_METRIC = 65  # EX_DATAERR: the program ran but reported no usable metric


def how_to_report(key: str) -> str:
    """The one-line advice for a program whose metric cannot be found."""
    return (f'print a JSON object holding it as a line on stdout, e.g. {{"{key}": 123.4}}, or write one to a file '
            f"and pass --metric-file PATH; or drop --metric to tune wall time")


def find_metric(stdout: str, key: str) -> float | None:
    """KEY's value in the last JSON object on stdout that holds it (one object per line, or all of stdout)."""
    candidates: list[Any] = []
    try:
        candidates.append(json.loads(stdout))
    except ValueError:
        pass
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                candidates.append(json.loads(line))
            except ValueError:
                continue
    for obj in candidates:
        value = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the program, pass its output through, write the result JSON; the exit code says what happened."""
    ap = argparse.ArgumentParser(prog="tunesmith-wrap")
    ap.add_argument("--cwd", default=".")
    ap.add_argument("--metric", default="seconds")
    ap.add_argument("--metric-file")
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("tunesmith-wrap: no program given", file=sys.stderr)
        return 2
    env = dict(os.environ)
    result_path = env.pop("TUNESMITH_RESULT", None)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=args.cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, text=True, errors="replace")
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    seconds = time.perf_counter() - start
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    if args.raw or proc.returncode != 0:
        return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    result: dict[str, Any] = {"seconds": seconds}
    if args.metric != "seconds":
        text = proc.stdout
        where = "stdout"
        if args.metric_file:
            path = Path(args.cwd) / args.metric_file
            where = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                print(f"metric file {path} cannot be read ({exc.strerror or exc}); fix: make the program write it "
                      "or correct --metric-file", file=sys.stderr)
                return EXIT_NO_METRIC
        value = find_metric(text, args.metric)
        if value is None:
            print(f"the program reported no number {args.metric!r} (in {where}); fix: {how_to_report(args.metric)}",
                  file=sys.stderr)
            return EXIT_NO_METRIC
        result[args.metric] = value
    if result_path:
        Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
