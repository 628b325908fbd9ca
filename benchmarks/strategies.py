"""How many trials each strategy needs to come within 5 % and 10 % of an exhaustive sweep's best config.

For every replay table (a recorded exhaustive sweep, see ``tunesmith.runners.replay.target``), every
start (the recorded default, or a random recorded config per seed) and every strategy, the tuning loop
is simulated ``--repeats`` times with different seeds (ask one candidate, evaluate it on the
``ReplayTarget``, append a finished Trial, repeat) for up to ``--budget`` trials. A run "gets there" at
the first trial whose config's recorded median is within the tolerance of the best recorded median.
Reported per strategy and tolerance: the median and interquartile range of that trial number over seeds
(a run that never gets there counts as budget + 1) and the fraction of seeds that got there; per table,
the worst/best ratio and 20 % of the space's size (the target for the 10 % column).

    python benchmarks/strategies.py --table benchmarks/data/record_writer_sweep.json \
        --table benchmarks/data/compress_sweep.json --start default --start random
    python benchmarks/strategies.py --record record_writer   # sweep examples/record_writer (~10 min)
    python benchmarks/strategies.py --record compress        # sweep examples/compress_logs
    python benchmarks/strategies.py --record checkpoint      # sweep the real checkpoint I/O target
    python benchmarks/strategies.py --record triton          # sweep the Triton target (needs a GPU)
    python benchmarks/strategies.py --record synthetic       # a synthetic table (no hardware)

``--record`` on the example jobs measures every config once per round, in interleaved rounds
(``--sweep-rounds``; ``--merge`` adds rounds to an existing table). Prints a rich table and writes JSON
to ``benchmarks/results/strategies.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tunesmith.agents.strategies import STRATEGIES
from tunesmith.runners.context import TrialContext
from tunesmith.runners.job import Job, Objective, parse_job
from tunesmith.runners.replay.target import ReplayRecord, ReplayTable, ReplayTarget, record_sweep
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.stats import median, quantile
from tunesmith.runners.types import Candidate, Trial, TrialState

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_STRATEGIES = ("random", "tpe", "offline_planner")
RECORD_PATHS = {
    "checkpoint": HERE / "data" / "checkpoint_sweep.json",
    "triton": HERE / "data" / "triton_sweep.json",
    "synthetic": HERE / "data" / "synthetic_sweep.json",
    "record_writer": HERE / "data" / "record_writer_sweep.json",
    "compress": HERE / "data" / "compress_sweep.json",
}
RECORD_JOBS = {
    "checkpoint": ROOT / "examples" / "checkpoint_io" / "job.toml",
    "triton": ROOT / "examples" / "triton_softmax" / "job.toml",
    "record_writer": ROOT / "examples" / "record_writer" / "job.toml",
    "compress": ROOT / "examples" / "compress_logs" / "job.toml",
}
RECORD_WORKLOAD = {
    "checkpoint": {"size_mb": 32}
}  # smaller than the example job's 256 MiB: 288 configs to sweep
RECORD_REPEATS = {"checkpoint": 2}  # otherwise the job's measure.repeats (Triton: 100 timed samples)
# Sweeps recorded in rounds: every round measures every config once, the table keeps all rounds' samples.
# On a shared machine the disk's flush latency and the free CPU drift over minutes; interleaving spreads
# that drift over every config instead of charging it to the configs that happened to run during it.
RECORD_ROUNDS = {"record_writer": 3, "compress": 4}


# -- simulation -------------------------------------------------------------------------------------
def simulate(
    strategy: str, table_path: Path, *, seed: int, budget: int, samples: int = 3, noise: str = "resample",
    start: str = "default",
) -> list[dict[str, Any]]:
    """Run the loop on a replayed sweep; the config of each trial, in order.

    The strategy sees noisy measurements (``noise = "resample"`` draws from each config's recorded
    samples). ``start = "random"`` gives it a starting configuration drawn (per seed) from the table's
    valid records instead of the recorded default: how fast it finds the best from an untuned default.
    """
    workload = {"table": str(table_path), "noise": noise, "seed": seed}
    objective = ReplayTable.load(table_path).objective
    target = ReplayTarget(
        Job(name="strategy-benchmark", target="replay", workload=workload, objective=objective)
    )
    target.preflight()
    space = target.space()

    def feasible(config: dict[str, Any]) -> bool:
        return not space.violations(config) and not target.check(Candidate(config=config))

    baseline = target.baseline().config
    if start == "random":
        valid = [r.config for r in target.table.records if r.status.value == "ok" and r.samples]
        baseline = random.Random(f"start:{seed}").choice(valid)
    common = {
        "seed": seed,
        "feasible": feasible,
        "baseline": baseline,
        "rules": target.rules(),
    }
    if strategy == "offline_planner":
        common["budget"] = budget  # as a study passes its trial budget (a small one takes the guided start)
    strat = STRATEGIES.create(strategy, space, objective, **common)
    history: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="tunesmith-bench-") as scratch:
        while len(history) < budget and (proposals := strat.ask(history, 1)):
            ctx = TrialContext(runner=None, workdir=Path(scratch), repeats=samples)
            m = target.evaluate(proposals[0], ctx)
            trial = Trial(
                study="bench",
                number=len(history),
                candidate=proposals[0],
                state=TrialState.DONE,
                measurement=m,
            )
            history.append(trial)
    return [t.candidate.config for t in history]


def first_within(
    values: list[float | None], best: float, *, minimize: bool, tolerance: float = 0.05
) -> int | None:
    """The 1-based number of the first trial within ``tolerance`` of ``best``; None if none is.

    ``values`` are the recorded medians of the configs tried (None for a failed one): a trial counts when
    it tried a config that really is that good, not when one noisy draw happened to look so.
    """
    for number, value in enumerate(values, start=1):
        if value is None:
            continue
        if (value <= best * (1 + tolerance)) if minimize else (value >= best * (1 - tolerance)):
            return number
    return None


def summarize(hits: list[int | None], budget: int) -> dict[str, Any]:
    """Median and IQR of the trials needed (a miss counts as budget + 1) and the fraction that got there."""
    xs = [h if h is not None else budget + 1 for h in hits]
    q25, q50, q75 = quantile(xs, 0.25), median(xs), quantile(xs, 0.75)
    reached = sum(h is not None for h in hits) / len(hits)
    return {
        "median": q50,
        "q25": q25,
        "q75": q75,
        "iqr": q75 - q25,
        "reached": reached,
        "censored": q50 > budget,
        "hits": hits,
    }


def _recorded_median(table: ReplayTable, config: dict[str, Any]) -> float | None:
    for record in table.records:
        if record.config == config and record.samples:
            return median(record.samples)
    return None


def benchmark(
    tables: list[Path], strategies: tuple[str, ...] = DEFAULT_STRATEGIES, **opts: Any
) -> dict[str, Any]:
    """Every strategy on every table, ``repeats`` seeds each; the JSON-ready result.

    ``opts``: repeats (20), budget (40), samples (3), noise ("resample"), tolerance (0.05: the one that
    ``hits``/``median`` report), tolerances ((0.05, 0.10): each gets its own summary under ``within``),
    starts (("default",); "random" starts each seed from a random recorded config, see ``simulate``).
    """
    o = {"repeats": 20, "budget": 40, "samples": 3, "noise": "resample", "tolerance": 0.05,
         "tolerances": (0.05, 0.10), "starts": ("default",), **opts}
    tolerances = tuple(dict.fromkeys((o["tolerance"], *o["tolerances"])))
    metric = f"trials to come within {o['tolerance']:.0%} of the sweep's best (median over seeds)"
    results: dict[str, Any] = {"metric": metric, **o, "tables": []}
    for path, start in itertools.product(tables, o["starts"]):
        table = ReplayTable.load(path)
        best = table.best()
        if best is None:
            raise SystemExit(f"{path}: the table has no OK record with samples; nothing to compare against")
        ok = [median(r.samples) for r in table.records if r.status.value == "ok" and r.samples]
        entry: dict[str, Any] = {
            "table": str(path),
            "target": table.target,
            "start": start,
            "configs": len(table.records),
            "objective": table.objective.model_dump(),
            "best_config": best.config,
            "best_median": median(best.samples),
            "worst_median": (max if table.objective.minimize else min)(ok),
            "baseline_median": _recorded_median(table, table.baseline),
            "strategies": {},
        }
        for name in strategies:
            started = time.perf_counter()
            hits: dict[float, list[int | None]] = {t: [] for t in tolerances}
            for seed in range(o["repeats"]):
                run = {k: o[k] for k in ("budget", "samples", "noise")}
                values = [_recorded_median(table, c) for c in simulate(name, path, seed=seed, start=start, **run)]
                minimize = table.objective.minimize
                for tol in tolerances:
                    hits[tol].append(first_within(values, entry["best_median"], minimize=minimize, tolerance=tol))
            entry["strategies"][name] = {
                **summarize(hits[o["tolerance"]], o["budget"]),
                "within": {f"{tol:.0%}": summarize(hits[tol], o["budget"]) for tol in tolerances},
                "seconds": time.perf_counter() - started,
            }
        results["tables"].append(entry)
    return results


def render(results: dict[str, Any], console: Console) -> None:
    budget = results["budget"]

    def cap(x: float) -> str:
        return f">{budget}" if x > budget else f"{x:g}"

    tols = list(results["tables"][0]["strategies"].values())[0]["within"] if results["tables"] else {}
    title = f"trials to come within {' / '.join(tols)} of the sweep's best: median (q25-q75) over " \
        f"{results['repeats']} seeds; budget {budget}"
    table = Table(title=title)
    for col in ("table", "start", "configs", "strategy", *(f"{t}" for t in tols), "reached", "time s"):
        table.add_column(col, justify="left" if col in ("table", "start", "strategy") else "right", no_wrap=True)
    for entry in results["tables"]:
        for name, s in entry["strategies"].items():
            cells = [f"{cap(w['median'])} ({cap(w['q25'])}-{cap(w['q75'])})" for w in s["within"].values()]
            reached = " / ".join(f"{w['reached']:.0%}" for w in s["within"].values())
            row = (Path(entry["table"]).stem.removesuffix("_sweep"), entry["start"], str(entry["configs"]), name)
            table.add_row(*row, *cells, reached, f"{s['seconds']:.1f}")
    console.print(table)
    for entry in results["tables"]:
        if entry["start"] != results["starts"][0]:
            continue
        base, metric = entry["baseline_median"], entry["objective"]["metric"]
        worst = entry.get("worst_median")
        ratio = max(worst, entry["best_median"]) / min(worst, entry["best_median"]) if worst else None
        console.print(
            f"{Path(entry['table']).stem}: best {entry['best_config']} at {entry['best_median']:.4g} {metric}"
            + (f" (baseline {base:.4g})" if base is not None else "")
            + (f"; worst/best {ratio:.1f}x; 20 % of the space = {entry['configs'] * 0.2:g} trials" if ratio else "")
        )


# -- tables -----------------------------------------------------------------------------------------
def synthetic_table(*, noise: float = 0.03, samples: int = 5, seed: int = 0) -> ReplayTable:
    """A checkpoint-like sweep with a known optimum (fsync=end_syncfs, chunk_kib=1024, threads=4, direct)."""
    space = SearchSpace(
        params=(
            Param(
                name="fsync",
                kind="choice",
                values=("per_chunk", "per_file", "end_syncfs"),
                default="per_chunk",
            ),
            Param(name="chunk_kib", kind="pow2", low=64, high=4096, default=64),
            Param(name="threads", kind="int", low=1, high=8, default=1),
            Param(name="direct", kind="bool", default=False),
        )
    )
    rng = random.Random(seed)
    records = []
    for config in space.grid():
        cost = {"per_chunk": 4.0, "per_file": 1.3, "end_syncfs": 1.0}[config["fsync"]]
        cost *= 1 + 0.15 * abs(math.log2(config["chunk_kib"] / 1024))
        cost *= 1 + 0.08 * abs(config["threads"] - 4)
        cost *= 0.9 if config["direct"] and config["chunk_kib"] >= 512 else 1.05
        values = [cost * (1 + noise * rng.gauss(0, 1)) for _ in range(samples)]
        records.append(ReplayRecord(config=config, samples=values, metrics={"mib_per_s": 256 / cost}))
    return ReplayTable(
        space=space,
        objective=Objective(metric="seconds", direction="minimize"),
        records=records,
        target="synthetic",
        signature="synthetic/checkpoint-like",
        rules=["fsync", "chunk_kib", "direct", "threads"],
        baseline=space.defaults(),
        repeats=samples,
    )


def _record_job(kind: str, args: argparse.Namespace) -> Job:
    path = Path(args.job) if args.job else RECORD_JOBS.get(kind)
    if path is None or not path.is_file():
        raise SystemExit(f"--record {kind}: no job file ({path}); pass one with --job")
    from tunesmith.runners.job import load_job

    job = load_job(path)
    workload = {**job.workload, **RECORD_WORKLOAD.get(kind, {})}
    for item in args.set or []:
        key, _, value = item.partition("=")
        try:
            workload[key] = json.loads(value)
        except json.JSONDecodeError:
            workload[key] = value  # a plain string
    measure = {**job.measure.model_dump(), "warmup": args.sweep_warmup}
    data = {**job.model_dump(exclude={"base_dir"}), "workload": workload, "measure": measure}
    return parse_job(data, base_dir=job.base_dir)


def merge_rounds(tables: list[ReplayTable]) -> ReplayTable:
    """One table from several sweeps of the same grid: each config's samples from every round.

    A config that failed in any round keeps that failure (and no samples): a config that only works
    sometimes is not one to recommend.
    """
    first, merged = tables[0], []
    for i, record in enumerate(first.records):
        rounds = [t.records[i] for t in tables]
        if any(r.config != record.config for r in rounds):
            raise ValueError("the rounds did not sweep the same configs in the same order")
        failed = next((r for r in rounds if r.status.value != "ok"), None)
        if failed is not None:
            merged.append(failed.model_copy(update={"samples": []}))
            continue
        keys = set.intersection(*(set(r.metrics) for r in rounds))
        metrics = {k: sum(r.metrics[k] for r in rounds) / len(rounds) for k in sorted(keys)}
        merged.append(record.model_copy(update={
            "samples": [x for r in rounds for x in r.samples], "metrics": metrics,
            "wall_s": sum(r.wall_s for r in rounds), "detail": f"{len(rounds)} interleaved rounds",
        }))
    return first.model_copy(update={"records": merged, "repeats": sum(t.repeats or 1 for t in tables)})


def record_rounds(target: Any, runner: Any, scratch: Path, rounds: int, out: Path, **kw: Any) -> ReplayTable:
    """``rounds`` sweeps of one run per config (``record_sweep``), merged into the table at ``out``."""
    tables = []
    for r in range(rounds):
        part = scratch / f"round-{r + 1}.json"
        tables.append(record_sweep(target, runner, scratch / f"round-{r + 1}", 1, part, **kw))
    table = merge_rounds(tables)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table.model_dump_json(indent=1), encoding="utf-8")
    return table


def record(kind: str, args: argparse.Namespace, console: Console) -> Path:
    """Record a sweep table: a real target (the example job's), or the synthetic one."""
    out = Path(args.out) if args.out else RECORD_PATHS[kind]
    if kind == "synthetic":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(synthetic_table().model_dump_json(indent=1), encoding="utf-8")
        return out
    if kind == "triton":
        try:
            import torch

            has_gpu = torch.cuda.is_available()
        except ImportError:
            has_gpu = False
        if not has_gpu:
            raise SystemExit(
                "--record triton needs a CUDA GPU and there is none here; run it on a GPU machine"
            )
    from tunesmith.runners.local import LocalRunner
    from tunesmith.tools.plugins import TARGETS

    job = _record_job(kind, args)
    target = TARGETS.create(job.target, job)
    try:
        target.preflight()
        with tempfile.TemporaryDirectory(prefix=f"tunesmith-sweep-{kind}-") as scratch:

            def progress(i: int, total: int, rec: ReplayRecord) -> None:
                value = f"{median(rec.samples):.4g}" if rec.samples else rec.detail
                console.print(f"[{i}/{total}] {rec.status.value} {value} {rec.config}")

            rounds = args.sweep_rounds or RECORD_ROUNDS.get(kind, 1)
            if args.merge and rounds and out.is_file():  # more rounds for a table recorded before
                added = record_rounds(target, LocalRunner(), Path(scratch), rounds, Path(scratch) / "new.json",
                                      progress=progress)
                merged = merge_rounds([ReplayTable.load(out), added])
                out.write_text(merged.model_dump_json(indent=1), encoding="utf-8")
            elif rounds > 1:
                record_rounds(target, LocalRunner(), Path(scratch), rounds, out, progress=progress)
            else:
                repeats = args.sweep_repeats or RECORD_REPEATS.get(kind, job.measure.repeats)
                record_sweep(target, LocalRunner(), Path(scratch), repeats, out, progress=progress)
    finally:
        target.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="append", default=[], help="a replay table (repeatable)")
    parser.add_argument(
        "--strategy", action="append", default=[], help=f"default: {', '.join(DEFAULT_STRATEGIES)}"
    )
    parser.add_argument("--repeats", type=int, default=20, help="seeds per strategy")
    parser.add_argument("--budget", type=int, default=40, help="trials per run")
    parser.add_argument("--samples", type=int, default=3, help="samples drawn per evaluation")
    parser.add_argument("--noise", choices=("resample", "none"), default="resample")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--start", action="append", choices=("default", "random"),
                        help="start from the recorded default (default) and/or a random config per seed")
    parser.add_argument("--json", default=str(HERE / "results" / "strategies.json"))
    parser.add_argument("--record", choices=sorted(RECORD_PATHS), help="record a sweep table instead")
    parser.add_argument("--job", help="job file for --record (default: the example job)")
    parser.add_argument("--set", action="append", help="workload override for --record, KEY=VALUE")
    parser.add_argument("--sweep-repeats", type=int, help="repeats per config when recording")
    parser.add_argument("--sweep-rounds", type=int, help="interleaved rounds of one run per config")
    parser.add_argument("--merge", action="store_true",
                        help="add the new rounds' samples to the table already at the output path")
    parser.add_argument("--sweep-warmup", type=int, default=0, help="untimed runs per config when recording")
    parser.add_argument("--out", help="where --record writes the table")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 132)
    if args.record:
        out = record(args.record, args, console)
        console.print(f"wrote {out}")
        return 0
    if not args.table:
        parser.error("pass at least one --table (or --record KIND to make one)")
    strategies = tuple(args.strategy) or DEFAULT_STRATEGIES
    opts = {k: getattr(args, k) for k in ("repeats", "budget", "samples", "noise", "tolerance")}
    opts["starts"] = tuple(args.start or ["default"])
    results = benchmark([Path(t) for t in args.table], strategies, **opts)
    render(results, console)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
