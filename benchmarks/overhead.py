"""tunesmith's own time per trial: the gap between the end of one run and the start of the next.

Each study is fresh (a new temporary folder, ``--state-dir`` inside it, ``--llm off``) and tunes a
``command`` job whose workload returns at once: one ``bash -c`` that reads five integer knobs 0..9 from the
environment (100,000 distinct configs, so random search never runs short of untried ones even at 10,000
trials), writes ``{"seconds": ...}`` (a deterministic function of the knobs, so new bests appear now and
then and the judge's re-measure path runs too) and appends two stamps, its first and its last instant
(``$EPOCHREALTIME``, microseconds, no extra process), to a file named by ``$OVERHEAD_STAMPS``.
Strategy ``random``, ``repeats = 1``, ``warmup = 0``, ``remeasure`` on unless ``--remeasure off``.

The timed quantity is measured outside tunesmith: gap i = start of trial i+1's run - end of trial i's run,
over the trials of the tuning loop (first runs and re-measures; the end-of-study re-measure of the best
config against the default, origin "final", is reported apart as its run count and time).
It is everything tunesmith does between two runs (store writes, graph nodes, checkpoints, the strategy,
the view) plus the cost of spawning the next process, which is not tunesmith's: the "spawn floor" column
is the same gap for the same command launched back to back by ``subprocess.run`` with nothing in between.
Reported per study: the median gap of each tenth of the study (decile 1 = its first 10 % of gaps), the
whole study's wall time, the sum of the workload's own run times (stamp to stamp) and of the runs as
the store records them (``wall_s``, spawn and result parsing included), and the CPU time of tune and
everything it ran per workload invocation ("cpu ms/run": on a machine shared with other work the gaps
include waiting for a CPU, the CPU time does not). The JSON also records the load average.

    python benchmarks/overhead.py                         # 100 and 1,000 trials, plain and live
    python benchmarks/overhead.py --trials 100 1000 10000 --modes plain
    python benchmarks/overhead.py --big                   # adds 10,000 trials (long)

"plain" runs ``tune run ... --plain`` with output to a pipe; "live" runs it on a pseudo-terminal of 150x45
(the rich live view). Prints a table and writes JSON to ``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import resource
import select
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "overhead.json"
PARAMS = ("p1", "p2", "p3", "p4", "p5")
DECILES = 10
TERM_SIZE = (45, 150)  # rows, columns of the live view's pseudo-terminal
TRIAL_DIR = re.compile(r"trial-(\d+)")  # each trial runs in scratch/<study>/trial-NNNN/run-K

# The workload: stamps its start, writes the metric, stamps its end. No braces around variable names:
# the command target reads {name} as a placeholder. LC_ALL=C keeps the decimal point in EPOCHREALTIME.
SCRIPT = (
    "s=$EPOCHREALTIME; x=$((P1 + P2 + P3 + P4 + P5 + 1)); "
    "printf '{\"seconds\": 0.%03d}' $x > \"$TUNESMITH_RESULT\"; "
    "echo \"$s $EPOCHREALTIME $PWD\" >> \"$OVERHEAD_STAMPS\""
)


def job_toml(trials: int, stamps: Path, remeasure: bool) -> str:
    """The job file of one overhead study."""
    params = "".join(
        f'[workload.params.{p}]\nkind = "int"\nlow = 0\nhigh = 9\ndefault = 9\napply = "env"\n' for p in PARAMS
    )
    return (
        'name = "overhead"\ntarget = "command"\n'
        f"[workload]\ncommand = {json.dumps(['bash', '-c', SCRIPT])}\ndrop_caches = false\n{params}"
        '[objective]\nmetric = "seconds"\ndirection = "minimize"\nmin_effect = 0.02\n'
        f"[budget]\ntrials = {trials}\n"
        f"[measure]\nrepeats = 1\nwarmup = 0\nremeasure = {str(remeasure).lower()}\n"
        f"[runner]\ntimeout_s = 60\n[runner.env]\nLC_ALL = \"C\"\nOVERHEAD_STAMPS = {json.dumps(str(stamps))}\n"
        '[strategy]\nname = "random"\n'
    )


# -- running one study --------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "LANGSMITH_TRACING": "false", "LC_ALL": "C"}


def run_plain(cmd: list[str], cwd: Path, timeout: float | None) -> tuple[int, str]:
    """``tune run --plain`` with output to a pipe; (exit code, the output's tail)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, text=True, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out[-2000:]
    return proc.returncode, proc.stdout[-2000:]


def run_live(cmd: list[str], cwd: Path, timeout: float | None) -> tuple[int, str]:
    """``tune run`` on a pseudo-terminal of TERM_SIZE (the live view), its output read and dropped."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", TERM_SIZE[0], TERM_SIZE[1], 0, 0))
    env = {**_env(), "TERM": "xterm-256color", "LINES": str(TERM_SIZE[0]), "COLUMNS": str(TERM_SIZE[1])}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    tail = b""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return 124, tail.decode(errors="replace")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                tail = (tail + chunk)[-4000:]
            elif proc.poll() is not None:
                break
        return proc.wait(), tail.decode(errors="replace")
    finally:
        os.close(master)


def read_stamps(path: Path) -> list[tuple[float, float, int]]:
    """(start, end, trial number) of every workload invocation, in start order."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            found = TRIAL_DIR.search(parts[2])
            rows.append((float(parts[0]), float(parts[1]), int(found.group(1)) if found else -1))
    return sorted(rows)


def store_summary(db: Path) -> dict[str, Any]:
    """Per stored trial its origin; the run time the store recorded (sum of measurement wall_s)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT number, candidate, measurement FROM trials").fetchall()
    finally:
        con.close()
    wall = 0.0
    origins: dict[int, str] = {}
    for number, cand, meas in rows:
        origins[int(number)] = json.loads(cand).get("origin", "")
        if meas and origins[int(number)] != "final":
            wall += float(json.loads(meas).get("wall_s") or 0.0)
    return {"stored_trials": sum(o != "final" for o in origins.values()),
            "remeasure_trials": sum(o == "remeasure" for o in origins.values()),
            "final_trials": sum(o == "final" for o in origins.values()),
            "store_wall_s": wall, "origins": origins}


def gaps_of(stamps: list[tuple[float, float, int]]) -> list[float]:
    """Seconds between the end of one trial's (last) run and the start of the next trial's first run."""
    gaps = []
    for prev, nxt in zip(stamps, stamps[1:], strict=False):
        if nxt[2] != prev[2]:  # runs of one trial (repeats) follow each other inside the target
            gaps.append(nxt[0] - prev[1])
    return gaps


def decile_medians(gaps: list[float]) -> list[float | None]:
    """Median gap (ms) of each tenth of the study, in order; None for an empty tenth."""
    out: list[float | None] = []
    n = len(gaps)
    for d in range(DECILES):
        part = gaps[d * n // DECILES:(d + 1) * n // DECILES]
        out.append(statistics.median(part) * 1000 if part else None)
    return out


def run_study(trials: int, mode: str, *, remeasure: bool, timeout: float | None, keep: bool) -> dict[str, Any]:
    """One fresh study of ``trials`` trials in ``mode``; its gaps by decile and its totals."""
    work = Path(tempfile.mkdtemp(prefix=f"overhead-{trials}-{mode}-"))
    try:
        stamps = work / "stamps.txt"
        job = work / "job.toml"
        job.write_text(job_toml(trials, stamps, remeasure))
        cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--llm", "off",
               "--state-dir", str(work / "state")]
        runner = run_plain if mode == "plain" else run_live
        if mode == "plain":
            cmd.append("--plain")
        t0, wall0, cpu0 = time.perf_counter(), time.time(), _children_cpu()
        rc, tail = runner(cmd, work, timeout)
        wall, wall1, cpu = time.perf_counter() - t0, time.time(), _children_cpu() - cpu0
        every = read_stamps(stamps)
        db = work / "state" / "tunesmith.db"
        stored = store_summary(db) if db.exists() else {"stored_trials": 0, "remeasure_trials": 0,
                                                        "final_trials": 0, "store_wall_s": 0.0, "origins": {}}
        origins = stored.pop("origins")
        st = [x for x in every if origins.get(x[2]) != "final"]  # the tuning loop's runs
        final = [x for x in every if origins.get(x[2]) == "final"]
        gaps = gaps_of(st)
        result = {
            "trials": trials, "mode": mode, "remeasure": remeasure, "exit_code": rc,
            "invocations": len(st), "decile_median_gap_ms": decile_medians(gaps),
            "median_gap_ms": statistics.median(gaps) * 1000 if gaps else None,
            "max_gap_ms": max(gaps) * 1000 if gaps else None,
            "gap_sum_s": sum(gaps), "wall_s": wall,
            "cpu_s": cpu, "cpu_ms_per_invocation": cpu / max(len(every), 1) * 1000,
            "load_avg_1min_end": os.getloadavg()[0],
            "run_sum_s": sum(e - s for s, e, _ in st),
            "startup_s": st[0][0] - wall0 if st else None,  # launch to the first run's start
            "loop_end_to_exit_s": wall1 - st[-1][1] if st else None,  # final re-measure and report included
            "final_runs": len(final), "final_span_s": final[-1][1] - final[0][0] if final else 0.0,
            **stored,
        }
        if rc != 0:
            result["output_tail"] = tail[-1500:]
        if keep:
            result["workdir"] = str(work)
        return result
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished children: tune and every process it ran and reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn_floor(count: int = 50) -> float:
    """Median gap (ms) of the same workload launched back to back by ``subprocess.run`` alone."""
    work = Path(tempfile.mkdtemp(prefix="overhead-floor-"))
    try:
        stamps = work / "stamps.txt"
        env = {**_env(), "OVERHEAD_STAMPS": str(stamps), "TUNESMITH_RESULT": str(work / "result.json"),
               **{p.upper(): "1" for p in PARAMS}}
        for _ in range(count):
            subprocess.run(["bash", "-c", SCRIPT], env=env, cwd=work, check=True)
        runs = [(a, b, i) for i, (a, b, _) in enumerate(read_stamps(stamps))]  # each launch its own "trial"
        return statistics.median(gaps_of(runs)) * 1000
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- output ---------------------------------------------------------------------------------------------
def commit() -> str:
    """The measured tree's commit (with "+dirty" when it has uncommitted changes)."""
    try:
        head = subprocess.run(["git", "log", "--oneline", "-1"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return (head[:80] + (" +dirty" if dirty else "")) or "unknown"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def table(results: list[dict[str, Any]], floor_ms: float) -> Table:
    """One row per study: median gap (ms) of each decile, then the totals."""
    t = Table(title=f"tunesmith's own time between two runs (median gap ms per tenth of the study; "
                    f"spawn floor {floor_ms:.1f} ms)")
    for col in ("trials", "mode", *[f"d{i + 1}" for i in range(DECILES)], "wall s", "runs s", "store runs s",
                "gaps s", "start s", "end s", "cpu ms/run", "rc"):
        t.add_column(col, justify="right")
    for r in results:
        cells = [f"{v:.1f}" if v is not None else "–" for v in r["decile_median_gap_ms"]]
        t.add_row(str(r["trials"]), r["mode"], *cells, f"{r['wall_s']:.1f}", f"{r['run_sum_s']:.2f}",
                  f"{r['store_wall_s']:.1f}", f"{r['gap_sum_s']:.1f}", _s(r["startup_s"]), _s(r["loop_end_to_exit_s"]),
                  f"{r['cpu_ms_per_invocation']:.1f}", str(r["exit_code"]))
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 1000], help="trial budgets (default 100 1000)")
    ap.add_argument("--big", action="store_true", help="add a 10,000-trial study (long)")
    ap.add_argument("--modes", nargs="+", choices=("plain", "live"), default=["plain", "live"])
    ap.add_argument("--remeasure", choices=("on", "off"), default="on", help="[measure] remeasure (default on)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per study (default: none)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to write")
    ap.add_argument("--keep", action="store_true", help="keep each study's temporary folder")
    args = ap.parse_args(argv)
    budgets = sorted(set(args.trials + ([10_000] if args.big else [])))
    if any(n < 2 for n in budgets):
        print("error: --trials: a study needs at least 2 trials to have a gap; fix: pass 2 or more", file=sys.stderr)
        return 2
    if shutil.which("bash") is None:
        print("error: bash not found; fix: install bash (the workload uses $EPOCHREALTIME)", file=sys.stderr)
        return 2
    console = Console(width=170)
    floor = spawn_floor()
    results = []
    for n in budgets:
        for mode in args.modes:
            console.print(f"running {n} trials, {mode} …", highlight=False)
            r = run_study(n, mode, remeasure=args.remeasure == "on", timeout=args.timeout, keep=args.keep)
            results.append(r)
            if r["exit_code"] != 0:
                console.print(f"  exit code {r['exit_code']}: {r.get('output_tail', '')[-400:]}", markup=False)
    console.print(table(results, floor))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"commit": commit(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
               "load_avg": os.getloadavg(), "spawn_floor_ms": floor, "remeasure": args.remeasure == "on",
               "workload": SCRIPT, "results": results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}", highlight=False)
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
