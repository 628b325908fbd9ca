"""I/O tuning against exhaustive sweeps: workload x file system pairs (local disk, GlusterFS, JuiceFS).

For each pair, a small space of the workload's knobs (and the file system's own options, applied through
the change ledger) is swept exhaustively on this machine, in interleaved rounds, and recorded as a replay
table under ``benchmarks/data/io_<pair>.json``. Then:

* **tunesmith live**: the real ``tune run`` loop (offline planner, ``--llm off``, the example job's
  observers, so the I/O trace can order the first attempts) with a 5-trial budget, once per pair, on the
  same file system;
* **replays**: the offline planner, Optuna TPE and random search on the recorded table, budgets 5 and 20,
  ``--repeats`` seeds each (measurements resampled from the recorded samples). The planner is told its
  budget, as a study tells it, so at 5 trials it takes the guided start (``agents/strategies/guided_start.py``);
  the recorded tables carry no trace, so the replays guide from the parameters' names and help only.

With ``--head-to-head ROUNDS`` the live run's best config (by its own medians) and the sweep's optimum
then run again on the same file system, interleaved, ``ROUNDS`` runs each (column ``live_now``: the
fraction at the live run's own machine load, with the judge's bootstrap verdict on it). On a shared
machine the load moves the timings by several times between a sweep and a live run (the JSON records the
load average, the sweep's ``spread`` and how many configs are ``tied_with_optimum``), so a recorded table
alone cannot say whether a live run missed the optimum or the load moved it. ``--keep DIR`` keeps the
live study for ``tune status``.

Each run scores the fraction of the sweep's optimum it reached: the recorded median of the best config it
tried against the best recorded median (``optimum / found`` when minimising, ``found / optimum`` when
maximising), so a live run and a replay are valued on the same numbers. Prints a table and writes
``benchmarks/results/io.json``.

    python benchmarks/io.py                       # sweep (if no table yet), live run, replays
    python benchmarks/io.py --replay-only         # only the replays of the recorded tables
    python benchmarks/io.py --pair metadata-local --resweep
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from strategies import simulate  # noqa: E402  (benchmarks/strategies.py: the loop on a replayed sweep)

from tunesmith.runners.stats import median  # noqa: E402

WB = "performance.write-behind"
PAIRS: dict[str, dict[str, Any]] = {
    "metadata-local": {
        "job": "examples/io/metadata/job.toml", "fs": "local",
        "space": {"fanout": {"values": [1, 16, 128]}, "stats": {"values": [2]}, "size_bytes": {"values": [512]},
                  "fsync": {"values": ["each", "dir", "end"]}},
    },
    "metadata-gluster": {
        "job": "examples/io/metadata/job.toml", "fs": "gluster",
        "space": {"fanout": {"values": [1, 16]}, "stats": {"values": [2]}, "size_bytes": {"values": [512]},
                  "fsync": {"values": ["each", "end"]}},
        "fs_params": {"write_behind": (WB, {"kind": "bool", "default": True})},
    },
    "ior-local": {
        "job": "examples/io/ior_mpiio/job.toml", "fs": "local",
        "space": {"layout": {"values": ["shared", "fpp"]}, "transfer_kib": {"values": [4, 64, 1024]},
                  "romio_cb_write": {"values": ["automatic"]}, "cb_buffer_size": {"values": [16777216]},
                  "romio_ds_write": {"values": ["automatic", "disable"]}},
    },
    "hdf5-juicefs": {
        "job": "examples/io/hdf5_writer/job.toml", "fs": "juicefs",
        "space": {"rows_per_write": {"values": [8, 64, 512]}, "chunk_rows": {"values": [0, 16, 256]},
                  "alignment_kib": {"values": [0, 1024]}, "meta_block_kib": {"values": [2]}, "cache_mib": {"values": [1]}},
        "fs_params": {"writeback": ("writeback", {"kind": "bool", "default": False})},
    },
    "checkpoint-gluster": {
        "job": "examples/checkpoint_io/job.toml", "fs": "gluster", "workload": {"size_mb": 32},
        "space": {"fsync": {"values": ["per_chunk", "per_file", "end_syncfs"]}, "chunk_kib": {"values": [64, 1024, 16384]},
                  "threads": {"values": [1, 4]}, "layout": {"values": ["single"]}},
    },
}
STRATEGIES = ("offline_planner", "tpe", "random")
BUDGETS = (5, 20)


# -- job files -----------------------------------------------------------------------------------------
def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_dump(data: dict[str, Any], prefix: str = "") -> str:
    """A TOML document of scalars, lists and nested tables (what job files hold)."""
    scalars = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    text = (f"[{prefix}]\n" if prefix and scalars else "") + "".join(s + "\n" for s in scalars)
    for k, v in data.items():
        if isinstance(v, dict):
            text += "\n" + toml_dump(v, f"{prefix}.{k}" if prefix else k)
    return text


def fs_option_docs(kind: str) -> dict[str, Any]:
    """The file system's documented options, from its own help output (``runners/filesystems/options.py``)."""
    from tunesmith.runners.filesystems import options
    from tunesmith.runners.filesystems.juicefs import juicefs_bin

    if kind == "gluster":
        docs = options.parse_gluster_help(options.help_text(["gluster", "volume", "set", "help"]))
    else:
        docs = options.parse_juicefs_help(options.help_text([juicefs_bin(), "mount", "--help"]))
    return {d.name: d for d in docs}


def pair_job(name: str, pair: dict[str, Any], out_dir: Path, scope: str, *, live: bool) -> dict[str, Any]:
    """The example job for one pair: absolute script path, output on the file system, narrowed space."""
    path = ROOT / pair["job"]
    data = tomllib.loads(path.read_text())
    data["name"] = f"io-bench-{name}"
    workload = {**data["workload"], **pair.get("workload", {}), "output_dir": str(out_dir)}
    if "command" in workload:
        workload["command"] = [str(path.parent / a) if (path.parent / a).is_file() else a for a in workload["command"]]
        params = dict(workload.get("params", {}))
        docs = fs_option_docs(pair["fs"]) if pair.get("fs_params") else {}
        for pname, (option, fields) in pair.get("fs_params", {}).items():
            params[pname] = {**fields, "apply": "setting", "setting": f"{pair['fs']}:{scope}:{option}",
                             "help": docs[option].description[:200] if option in docs else ""}
        workload["params"] = params
    elif workload.get("script"):
        workload["script"] = str(path.parent / workload["script"])
    data["workload"] = workload
    data["space"] = pair["space"]
    measure = dict(data.get("measure", {}))
    measure.update(repeats=2, warmup=1 if live else 0, remeasure=False)
    if not live:
        measure["observers"] = []
    elif "iotrace" not in measure.get("observers", []):  # the live run traces its baseline (the guided start reads it)
        measure["observers"] = [*measure.get("observers", ["resources"]), "iotrace"]
    data["measure"] = measure
    data["budget"] = {"trials": 5}
    data["strategy"] = {"name": "planner"}
    return data


@contextlib.contextmanager
def filesystem(kind: str, root: Path, ledger: Any):
    """(mount point or local folder, the scope a setting names) for the pair's file system."""
    if kind == "local":
        (root / "local").mkdir(parents=True, exist_ok=True)
        yield root / "local", ""
    elif kind == "gluster":
        from tunesmith.runners.filesystems.gluster import GlusterVolume

        with GlusterVolume(root / "gluster", f"tsbench{os.getpid()}", ledger) as vol:
            yield vol.mountpoint, vol.name
    else:
        from tunesmith.runners.filesystems.juicefs import JuiceFSMount

        with JuiceFSMount(root / "juicefs", "tsbench", ledger) as fs:
            yield fs.mountpoint, str(fs.mountpoint)


# -- the exhaustive sweep --------------------------------------------------------------------------------
def sweep(job_data: dict[str, Any], ledger: Any, scratch: Path, rounds: int, table_path: Path, log: Any,
          merge: bool = False) -> None:
    """Every config of the narrowed space, one run each per round, rounds interleaved; a replay table
    (``merge``: the new rounds' samples are added to the table already there)."""
    from tunesmith.runners.context import TrialContext
    from tunesmith.runners.job import parse_job
    from tunesmith.runners.local import LocalRunner
    from tunesmith.runners.replay.target import ReplayRecord, ReplayTable
    from tunesmith.runners.types import Candidate
    from tunesmith.tools.plugins import TARGETS

    job = parse_job(job_data, base_dir=scratch)
    target = TARGETS.create(job.target, job)
    runner = LocalRunner()
    try:
        target.preflight()
        space = target.space()
        configs = [c for c in space.grid() if not target.check(Candidate(config=c))]
        samples: dict[int, list[float]] = {i: [] for i in range(len(configs))}
        failed: dict[int, str] = {}
        for r in range(rounds):
            for i, config in enumerate(configs):
                if i in failed:
                    continue
                work = scratch / f"sweep-{r}-{i}"
                work.mkdir(parents=True, exist_ok=True)
                ctx = TrialContext.for_job(job, runner, work, repeats=1, ledger=ledger, observers=())
                m = target.evaluate(Candidate(config=config, origin="sampler"), ctx)
                shutil.rmtree(work, ignore_errors=True)
                if m.status.value != "ok":
                    failed[i] = f"{m.status.value}: {m.detail}"
                else:
                    samples[i] += m.samples
                log(f"  round {r + 1}/{rounds} [{i + 1}/{len(configs)}] {config}: "
                    + (failed.get(i) or f"{m.samples[0]:.4g}"))
        if merge and table_path.is_file():  # more rounds for a table recorded before: samples appended
            old = {json.dumps(r.config, sort_keys=True): r for r in ReplayTable.load(table_path).records}
            for i, c in enumerate(configs):
                prev = old.get(json.dumps(c, sort_keys=True))
                if prev is not None and prev.status.value != "ok":
                    failed.setdefault(i, f"{prev.status.value}: {prev.detail}")
                elif prev is not None:
                    samples[i] = prev.samples + samples[i]
            rounds += ReplayTable.load(table_path).repeats or 0
        plain = space.model_copy(update={"params": tuple(p.model_copy(update={"apply": "arg", "setting": ""})
                                                           for p in space.params)})
        records = [ReplayRecord(config=c, samples=samples[i]) if i not in failed else
                   ReplayRecord(config=c, status="runtime", detail=failed[i][:200]) for i, c in enumerate(configs)]
        table = ReplayTable(space=plain, objective=job.objective, records=records, target=job.target,
                            signature=f"io/{job.name}", rules=target.rules(), baseline=target.baseline().config,
                            fingerprint=target.fingerprint(), repeats=rounds)
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table_path.write_text(table.model_dump_json(indent=1))
    finally:
        target.close()
        runner.close()


# -- the live tune run -------------------------------------------------------------------------------------
def live_run(job_data: dict[str, Any], work: Path, log: Any) -> dict[str, Any]:
    """``tune run`` with a 5-trial budget; the configs of its trials in order and how long it took."""
    job_path = work / "job.toml"
    job_path.write_text(toml_dump(job_data))
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job_path), "--plain", "--llm", "off",
           "--state-dir", str(state)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "LANGSMITH_TRACING": "false"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        log(f"  tune run exited {done.returncode}: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    con = sqlite3.connect(state / "tunesmith.db")
    try:
        rows = con.execute("SELECT number, candidate, measurement FROM trials WHERE study = ? ORDER BY number",
                           (job_data["name"],)).fetchall()
    finally:
        con.close()
    firsts = [(json.loads(c), json.loads(m) if m else {}) for _, c, m in rows]
    firsts = [(c, m) for c, m in firsts if c.get("origin") not in ("remeasure", "final")]
    configs = [c["config"] for c, _ in firsts]
    measured = [(c["config"], median(m["samples"])) for c, m in firsts if m.get("status") == "ok" and m.get("samples")]
    notes = [line for line in done.stdout.splitlines() if "priorit" in line.lower() or "trace" in line.lower()][:3]
    return {"configs": configs, "measured": measured, "seconds": seconds, "returncode": done.returncode,
            "trace_lines": notes}


def head_to_head(job_data: dict[str, Any], ledger: Any, scratch: Path, configs: list[dict[str, Any]],
                 rounds: int) -> list[list[float]]:
    """``configs`` run again right after the live run, one run each per round, rounds interleaved (as the
    sweep runs): samples per config taken under the same machine load, the live run's own."""
    from tunesmith.runners.context import TrialContext
    from tunesmith.runners.job import parse_job
    from tunesmith.runners.local import LocalRunner
    from tunesmith.runners.types import Candidate
    from tunesmith.tools.plugins import TARGETS

    job = parse_job(job_data, base_dir=scratch)
    target, runner = TARGETS.create(job.target, job), LocalRunner()
    samples: list[list[float]] = [[] for _ in configs]
    try:
        target.preflight()
        for r in range(rounds):
            for i, config in enumerate(configs):
                work = scratch / f"h2h-{r}-{i}"
                work.mkdir(parents=True, exist_ok=True)
                ctx = TrialContext.for_job(job, runner, work, repeats=1, ledger=ledger, observers=())
                m = target.evaluate(Candidate(config=config, origin="sampler"), ctx)
                shutil.rmtree(work, ignore_errors=True)
                samples[i] += m.samples if m.status.value == "ok" else []
    finally:
        target.close()
        runner.close()
    return samples


# -- scoring -----------------------------------------------------------------------------------------------
def medians(table: Any) -> list[tuple[dict[str, Any], float]]:
    return [(r.config, median(r.samples)) for r in table.records if r.status.value == "ok" and r.samples]


def fraction(table: Any, configs: list[dict[str, Any]]) -> float:
    """The fraction of the sweep's optimum reached by the best recorded config among ``configs``."""
    known = medians(table)
    minimize = table.objective.minimize
    best = (min if minimize else max)(v for _, v in known)
    values = [v for c in configs for rc, v in known if rc == c]
    if not values:
        return 0.0
    found = (min if minimize else max)(values)
    return best / found if minimize else found / best


def spread(table: Any) -> float:
    """The sweep's noise: the median over configs of (slowest - fastest round) / median."""
    rel = [(max(r.samples) - min(r.samples)) / median(r.samples) for r in table.records
           if r.status.value == "ok" and len(r.samples) > 1 and median(r.samples) > 0]
    return median(rel) if rel else 0.0


def versus_optimum(table: Any, config: dict[str, Any]) -> str:
    """The judge's bootstrap verdict (``runners/speedup.py``, 5 % minimum effect) on ``config``'s recorded
    rounds against the optimum's: "noise" means the sweep cannot tell the two apart."""
    from tunesmith.runners.speedup import speedup_of

    ok = {json.dumps(r.config, sort_keys=True): r.samples for r in table.records if r.status.value == "ok" and r.samples}
    best = (min if table.objective.minimize else max)(ok.values(), key=median)
    mine = ok.get(json.dumps(config, sort_keys=True))
    if mine is None:
        return "unmeasured"
    if mine is best:
        return "optimum"
    return speedup_of(mine, best, minimize=table.objective.minimize, min_effect=0.05, basis="sweep rounds", seed=0).decision


def tied(table: Any) -> int:
    """How many configs (the optimum included) the sweep cannot tell from its optimum."""
    return sum(versus_optimum(table, r.config) in ("optimum", "noise", "better") for r in table.records
               if r.status.value == "ok" and r.samples)


def screened_order(configs: list[dict[str, Any]], baseline: dict[str, Any]) -> list[str]:
    """The parameters a run changed, in the order it first changed them (the live run's screening order)."""
    order: list[str] = []
    for c in configs:
        for k, v in c.items():
            if baseline.get(k) != v and k not in order:
                order.append(k)
    return order


def replays(table_path: Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Each strategy at each budget: fractions over seeds and their median."""
    from tunesmith.runners.replay.target import ReplayTable

    table = ReplayTable.load(table_path)
    out: dict[str, dict[str, Any]] = {}
    for strategy in STRATEGIES:
        for budget in BUDGETS:
            if strategy == "offline_planner" and budget != 5:
                continue
            fr = [fraction(table, simulate(strategy, table_path, seed=s, budget=budget, samples=1))
                  for s in range(repeats)]
            out[f"{strategy}@{budget}"] = {"median": median(fr), "mean": sum(fr) / len(fr), "min": min(fr),
                                           "share_95": sum(f >= 0.95 for f in fr) / len(fr), "fractions": fr}
    return out


# -- main ----------------------------------------------------------------------------------------------------
def run_pair(name: str, pair: dict[str, Any], args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from tunesmith.runners.changes import ChangeLedger
    from tunesmith.runners.replay.target import ReplayTable

    table_path = HERE / "data" / f"io_{name.replace('-', '_')}.json"
    entry: dict[str, Any] = {"pair": name, "fs": pair["fs"], "job": pair["job"], "table": str(table_path.relative_to(ROOT)),
                             "load_avg_start": list(os.getloadavg())}  # 2 shared cores: the load is the noise
    need_sweep = args.resweep or args.add_rounds or not table_path.is_file()
    if not args.replay_only and (need_sweep or not args.no_live):
        base = Path(args.scratch).absolute() / name
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        ledger = ChangeLedger(base / "bench-changes.jsonl")
        with filesystem(pair["fs"], base / "fs", ledger) as (out_dir, scope):
            if need_sweep:
                log(f"{name}: sweeping ({args.add_rounds or args.rounds} interleaved rounds{' added' if args.add_rounds else ''})")
                started = time.perf_counter()
                sweep(pair_job(name, pair, out_dir, scope, live=False), ledger, base / "sweep",
                      args.add_rounds or args.rounds, table_path, log, merge=bool(args.add_rounds))
                entry["sweep_seconds"] = time.perf_counter() - started
            if not args.no_live:
                log(f"{name}: tune run, 5 trials, offline planner")
                live = live_run(pair_job(name, pair, out_dir, scope, live=True), base, log)
                entry["live"] = live
                if args.head_to_head and live["measured"]:
                    entry["head_to_head"] = compare_now(name, pair, out_dir, scope, ledger, base, live, table_path,
                                                        args.head_to_head, log)
        leftover = ledger.restore_all()
        entry["teardown"] = leftover
        if args.keep and not args.no_live:  # the live study stays for `tune status NAME --state-dir ...`
            kept = Path(args.keep).absolute() / name
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(base / "state", kept / "state")
            shutil.copy2(base / "job.toml", kept / "job.toml")
            entry["live"]["kept"] = str(kept)
            log(f"{name}: live study kept in {kept} (tune status io-bench-{name} --state-dir {kept / 'state'})")
        shutil.rmtree(base, ignore_errors=True)
    table = ReplayTable.load(table_path)
    known = medians(table)
    best_config, best = (min if table.objective.minimize else max)(known, key=lambda x: x[1])
    entry.update(configs=len(table.records), ok=len(known), metric=table.objective.metric,
                 direction=table.objective.direction, optimum=best, optimum_config=best_config,
                 baseline=next((v for c, v in known if c == table.baseline), None), rounds=table.repeats,
                 spread=spread(table), tied_with_optimum=tied(table), load_avg_end=list(os.getloadavg()))
    live_results = entry.get("live") or _previous_live(name, args.json)
    if live_results:
        configs = [c for c in live_results["configs"]][:5]
        entry["live"] = live_results
        entry["tunesmith_live@5"] = fraction(table, configs)
        found = [c for c in configs if any(rc == c for rc, _ in known)]
        if found:
            pick = min if table.objective.minimize else max
            best_found = pick(found, key=lambda c: next(v for rc, v in known if rc == c))
            entry["live_best_vs_optimum"] = versus_optimum(table, best_found)
        order = screened_order(configs, table.baseline)
        if order:  # replays screen in the order the live (trace-guided) run did
            table = table.model_copy(update={"rules": order + [r for r in table.rules if r not in order]})
            table_path.write_text(table.model_dump_json(indent=1))
    entry["replays"] = replays(table_path, args.repeats)
    return entry


def compare_now(name: str, pair: dict[str, Any], out_dir: Path, scope: str, ledger: Any, base: Path,
                live: dict[str, Any], table_path: Path, rounds: int, log: Any) -> dict[str, Any]:
    """The live run's best config (by its own medians) against the sweep's optimum, both run again now,
    interleaved: the fraction of the optimum at today's load, and the judge's bootstrap verdict on it."""
    from tunesmith.runners.replay.target import ReplayTable
    from tunesmith.runners.speedup import speedup_of

    table = ReplayTable.load(table_path)
    minimize = table.objective.minimize
    found = (min if minimize else max)(live["measured"], key=lambda cv: cv[1])[0]
    optimum = (min if minimize else max)(medians(table), key=lambda cv: cv[1])[0]
    log(f"{name}: head to head now, {rounds} interleaved rounds: live best {found} vs sweep optimum {optimum}")
    if found == optimum:
        return {"found": found, "optimum": optimum, "fraction": 1.0, "verdict": "same config", "rounds": 0,
                "load_avg": list(os.getloadavg())}
    s_found, s_opt = head_to_head(pair_job(name, pair, out_dir, scope, live=False), ledger, base / "h2h",
                                  [found, optimum], rounds)
    if not s_found or not s_opt:
        return {"found": found, "optimum": optimum, "error": "a config failed when run again"}
    f, o = median(s_found), median(s_opt)
    verdict = speedup_of(s_found, s_opt, minimize=minimize, min_effect=0.05, basis="head to head", seed=0).decision
    return {"found": found, "optimum": optimum, "found_samples": s_found, "optimum_samples": s_opt,
            "fraction": min(1.0, o / f if minimize else f / o), "verdict": verdict, "rounds": rounds,
            "load_avg": list(os.getloadavg())}


def _previous_live(name: str, json_path: str) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        for e in json.loads(Path(json_path).read_text())["pairs"]:
            if e["pair"] == name and e.get("live"):
                return e["live"]
    return None


def render(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = ["tunesmith_live@5", "live_now", "offline_planner@5", "tpe@5", "tpe@20", "random@5", "random@20"]
    table = Table(title="fraction of the sweep's optimum reached; replays: median over "
                  f"{results['repeats']} seeds (share of seeds at >= 95 %)")
    for c in ("pair", "configs", "rounds", "tied", "optimum", *cols):
        table.add_column(c, justify="left" if c == "pair" else "right", no_wrap=True)
    for e in results["pairs"]:
        cells = [f"{e['tunesmith_live@5']:.0%}" if "tunesmith_live@5" in e else "-"]
        h = e.get("head_to_head") or {}
        cells += [f"{h['fraction']:.0%} ({h['verdict']})" if "fraction" in h else "-"]
        cells += [f"{e['replays'][c]['median']:.0%} ({e['replays'][c]['share_95']:.0%})" for c in cols[2:]]
        table.add_row(e["pair"], str(e["configs"]), str(e.get("rounds", "-")), str(e.get("tied_with_optimum", "-")),
                      f"{e['optimum']:.4g} {e['metric']}", *cells)
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", choices=sorted(PAIRS), help="default: every pair")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved sweep rounds (one run per config each)")
    parser.add_argument("--repeats", type=int, default=20, help="seeds per replayed strategy")
    parser.add_argument("--resweep", action="store_true", help="sweep again even where a table exists")
    parser.add_argument("--add-rounds", type=int, default=0, help="add this many rounds to the recorded tables")
    parser.add_argument("--replay-only", action="store_true", help="no file system, sweep or live run")
    parser.add_argument("--no-live", action="store_true", help="skip the live tune run (reuse the last one's configs)")
    parser.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "tunesmith-io-bench"))
    parser.add_argument("--head-to-head", type=int, default=0, metavar="ROUNDS",
                        help="after the live run, run its best config and the sweep's optimum again, interleaved")
    parser.add_argument("--keep", metavar="DIR", help="copy the live run's study (state folder, job) to DIR/PAIR")
    parser.add_argument("--json", default=str(HERE / "results" / "io.json"))
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    previous = {}
    with contextlib.suppress(OSError, ValueError, KeyError):
        previous = {e["pair"]: e for e in json.loads(Path(args.json).read_text())["pairs"]}
    results: dict[str, Any] = {"repeats": args.repeats, "budgets": list(BUDGETS), "pairs": []}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.pair or list(PAIRS):
        results["pairs"].append(run_pair(name, PAIRS[name], args, log))
        previous.pop(name, None)
        kept = [e for n, e in previous.items() if n in PAIRS]  # pairs not rerun keep their last result
        out.write_text(json.dumps({**results, "pairs": results["pairs"] + kept}, indent=1, default=str))
    results["pairs"] += [e for n, e in previous.items() if n in PAIRS]
    render(results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
