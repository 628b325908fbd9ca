"""LocalRunner's fixed cost per run: back-to-back runs of a command that does nothing (``true``).

The process first imports torch (as a tune process may, e.g. for the kernel target), because what a run
costs depends on how big the parent is: a fork of a large process is slow, a vfork/exec is not. For each
setting it runs ``--runs`` runs of ``true`` through ``LocalRunner.run`` and reports runs per second and
the median time of one run; "subprocess.run" is the same command launched bare, the spawn floor. Then it
runs the workload of ``benchmarks/overhead.py`` (a bash script that stamps its first and last instant)
``--runs`` times back to back and reports the median gap between one run's end and the next one's start:
the runner's own share of the gap that benchmark measures for whole studies.

    python benchmarks/runner_spawn.py                 # torch imported, cgroup and no-cgroup runners
    python benchmarks/runner_spawn.py --no-torch --runs 500

Prints a table and writes JSON to ``benchmarks/results/runner_spawn.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from overhead import PARAMS, SCRIPT, gaps_of, read_stamps  # noqa: E402 - a sibling script, not a package

DEFAULT_OUT = HERE / "results" / "runner_spawn.json"


def _timed(fn: Any, runs: int) -> dict[str, float]:
    times = []
    start = time.perf_counter()
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    return {"runs": runs, "runs_per_s": runs / total, "median_ms": statistics.median(times) * 1000,
            "p90_ms": sorted(times)[int(0.9 * (runs - 1))] * 1000}


def measure(runs: int, with_torch: bool) -> dict[str, Any]:
    """Runs per second of bare subprocess.run and of LocalRunner.run (with and without a cgroup)."""
    imported = 0.0
    if with_torch:
        t = time.perf_counter()
        import torch  # noqa: F401 - the point: a large parent process

        imported = time.perf_counter() - t
    from tunesmith.runners.base import RunSpec
    from tunesmith.runners.local import LocalRunner

    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="runner-spawn-") as tmp:
        spec = RunSpec(argv=["true"], cwd=Path(tmp) / "run", timeout_s=30)
        stamps = Path(tmp) / "stamps.txt"
        env = {"OVERHEAD_STAMPS": str(stamps), "LC_ALL": "C", **{p.upper(): "1" for p in PARAMS}}
        stamped = RunSpec(argv=["bash", "-c", SCRIPT], cwd=Path(tmp) / "run", timeout_s=30, env=env)
        stamped.cwd.mkdir()

        def bare() -> None:
            subprocess.run(["true"], check=True)

        def bare_stamped() -> None:
            subprocess.run(stamped.argv, check=True, cwd=stamped.cwd,
                           env={**os.environ, **env, "TUNESMITH_RESULT": str(stamped.result_path)})

        settings: list[tuple[str, Any, Any]] = [("subprocess.run", bare, bare_stamped)]
        for name, runner in (("LocalRunner cgroup", LocalRunner(cgroups=True)),
                             ("LocalRunner no cgroup", LocalRunner(cgroups=False))):
            def once(r: LocalRunner = runner, s: RunSpec = spec, what: str = name) -> None:
                res = r.run(s)
                if res.returncode != 0:
                    raise SystemExit(f"error: {s.argv[0]} failed under {what}: {res.launch_error or res.stderr_tail}")
            settings.append((name, once, lambda once=once: once(s=stamped)))
        for name, plain, with_stamps in settings:
            plain()  # warm: libc, the launcher probe, the cgroup folders
            rows[name] = _timed(plain, runs)
            stamps.unlink(missing_ok=True)
            for _ in range(runs):
                with_stamps()
            marks = [(a, b, i) for i, (a, b, _) in enumerate(read_stamps(stamps))]  # each run its own "trial"
            rows[name]["gap_ms"] = statistics.median(gaps_of(marks)) * 1000
    return {"torch_imported": with_torch, "torch_import_s": imported, "python": platform.python_version(),
            "results": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per setting (default 200)")
    ap.add_argument("--no-torch", action="store_true", help="do not import torch first")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    args = ap.parse_args(argv)
    if args.runs < 1:
        print("error: --runs must be at least 1; fix: pass a positive count", file=sys.stderr)
        return 2
    data = measure(args.runs, not args.no_torch)
    print(f"torch imported: {data['torch_imported']} ({data['torch_import_s']:.1f} s)")
    print(f"{'setting':<24}{'runs/s':>10}{'median ms':>12}{'p90 ms':>10}{'gap ms':>10}")
    for name, row in data["results"].items():
        print(f"{name:<24}{row['runs_per_s']:>10.1f}{row['median_ms']:>12.2f}{row['p90_ms']:>10.2f}"
              f"{row['gap_ms']:>10.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
