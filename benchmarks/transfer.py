"""Do one study's lessons make the next study, on a different workload of the same domain, find its best sooner?

For each pair (A -> B) of recorded exhaustive sweeps (``benchmarks/data``, replayed by the ``replay``
target), the real study loop (``open_session`` + ``drive``, offline planner, no LLM) runs study A to the
end with a fresh knowledge store (hashing embedder); its reflector writes the lessons there (nothing is
hand-written). Then study B runs for every seed and start, twice: with A's lessons (a copy of that store)
and with them withheld (no knowledge store). Reported per pair and arm: the median (and quartiles) over
runs of the number of first-time trials until one whose config's recorded median is within 5 % of the best
recorded median (a run that never gets there counts as budget + 1), and the share of runs that got there.

B's table is replayed without the priority list its recording carries (``rules``), unless ``--keep-rules``:
a new workload nobody has ordered by hand, so the planner's order comes from the lessons or from nowhere.
The negative control takes its lessons from an unrelated workload (compression settings); they should
neither help nor hurt much.

    python benchmarks/transfer.py                       # all pairs, 10 seeds, default and random starts
    python benchmarks/transfer.py --seeds 3 --start default
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tunesmith.runners.stats import median, quantile

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results" / "transfer.json"
TOLERANCE = 0.05
# (study A's table, study B's table, what should carry over, is it the negative control)
PAIRS: list[tuple[str, str, str, bool]] = [
    ("record_writer_sweep", "io_metadata_local", "fsync policy: sync_every (group commit) -> fsync", False),
    ("record_writer_sweep", "io_checkpoint_gluster", "fsync policy: sync_every -> fsync", False),
    ("io_ior_local", "io_hdf5_juicefs", "transfer size: transfer_kib -> rows_per_write", False),
    ("io_metadata_local", "io_metadata_gluster", "fsync policy, same benchmark on another file system", False),
    ("compress_sweep", "io_metadata_local", "none (control: compression settings)", True),
    ("compress_sweep", "io_checkpoint_gluster", "none (control: compression settings)", True),
]


@contextlib.contextmanager
def _env(**values: str) -> Any:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def best_median(table: dict[str, Any]) -> float:
    """The best recorded median of the table's OK records, in the objective's direction."""
    meds = [median(r["samples"]) for r in table["records"] if r.get("status", "ok") == "ok" and r["samples"]]
    return min(meds) if table["objective"]["direction"] == "minimize" else max(meds)


def within(table: dict[str, Any], config: dict[str, Any], best: float) -> bool:
    """Whether ``config``'s recorded median is within the tolerance of ``best``."""
    for r in table["records"]:
        if r["config"] == config and r["samples"]:
            m = median(r["samples"])
            return m <= best * (1 + TOLERANCE) if table["objective"]["direction"] == "minimize" \
                else m >= best * (1 - TOLERANCE)
    return False


def run_study(table_path: Path, state: Path, *, name: str, trials: int, seed: int,
              baseline: dict[str, Any] | None, knowledge: str) -> list[dict[str, Any]]:
    """One study through the real loop on the replayed table; its first-time trial configs, in order."""
    from tunesmith.agents.study import drive, open_session
    from tunesmith.runners.job import parse_job

    table = json.loads(table_path.read_text())
    data: dict[str, Any] = {"name": name, "target": "replay", "workload": {"table": str(table_path), "seed": seed},
                            "budget": {"trials": trials}, "measure": {"repeats": 3}, "strategy": {"name": "planner"},
                            "llm": {"mode": "off"}, "objective": table["objective"]}
    if baseline:
        data["baseline"] = baseline
    with _env(TUNESMITH_KNOWLEDGE=knowledge, TUNESMITH_EMBEDDER="hashing"):
        with open_session(parse_job(data), state) as session:
            outcome = drive(session)
    return [t.candidate.config for t in outcome.trials if t.candidate.origin not in ("remeasure", "final")]


def trials_to_best(configs: list[dict[str, Any]], table: dict[str, Any], budget: int) -> int:
    """The 1-based number of the first trial within the tolerance of the best (budget + 1: never)."""
    best = best_median(table)
    return next((i for i, c in enumerate(configs, 1) if within(table, c, best)), budget + 1)


def lessons_of(knowledge: Path) -> list[dict[str, Any]]:
    """The lessons study A left in the knowledge store, as the benchmark reports them."""
    from tunesmith.knowledge.reflections import list_lessons
    from tunesmith.knowledge.vector.store import KnowledgeStore

    return [{"params": x.params, "was": x.was, "role": x.role, "rule": x.rule, "confidence": x.confidence,
             "effect": x.effect} for x in list_lessons(KnowledgeStore(knowledge))]


def run_pair(a: str, b: str, *, seeds: int, starts: list[str], budget_a: int, budget_b: int,
             keep_rules: bool, work: Path) -> dict[str, Any]:
    """Study A once, then study B per seed and start with and without A's lessons."""
    knowledge = work / f"ks-{a}"
    if not knowledge.exists():
        from tunesmith.knowledge.vector.store import KnowledgeStore

        KnowledgeStore(knowledge, "hashing").collection("reflections")  # a fresh, empty store for A's lessons
        run_study(DATA / f"{a}.json", work / f"a-{a}", name="study-a", trials=budget_a, seed=0, baseline=None,
                  knowledge=str(knowledge))
    table = json.loads((DATA / f"{b}.json").read_text())
    if not keep_rules:
        table["rules"] = []
    b_path = work / f"{b}.json"
    b_path.write_text(json.dumps(table))
    valid = [r["config"] for r in table["records"] if r.get("status", "ok") == "ok" and r["samples"]]
    arms: dict[str, list[int]] = {"lessons": [], "withheld": []}
    for seed in range(seeds):
        for start in starts:
            base = random.Random(f"start:{seed}").choice(valid) if start == "random" else None
            for arm in arms:
                run = work / f"b-{a}-{b}-{budget_b}-{seed}-{start}-{arm}"  # a new path: chroma caches clients by path
                store = "off"
                if arm == "lessons":
                    shutil.copytree(knowledge, run / "ks")
                    store = str(run / "ks")
                configs = run_study(b_path, run / "state", name="study-b", trials=budget_b, seed=seed,
                                    baseline=base, knowledge=store)
                arms[arm].append(trials_to_best(configs, table, budget_b))
                shutil.rmtree(run, ignore_errors=True)
    out = {"a": a, "b": b, "recorded": lessons_of(knowledge), "runs": len(arms["lessons"]), "budget_b": budget_b}
    for arm, values in arms.items():
        out[arm] = {"median": median(values), "q1": quantile(values, 0.25), "q3": quantile(values, 0.75),
                    "reached": sum(v <= budget_b for v in values) / len(values), "values": values}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--start", action="append", choices=["default", "random"])
    ap.add_argument("--budget-a", type=int, default=30, help="trials of study A (its lessons come from these)")
    ap.add_argument("--budget-b", type=int, action="append",
                    help="trials of study B (repeatable; default 16, and 6: the guided start's small budget)")
    ap.add_argument("--keep-rules", action="store_true", help="replay B with its recorded priority list")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    starts = args.start or ["default", "random"]
    budgets = args.budget_b or [16, 6]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tunesmith-transfer-") as tmp:
        for budget_b, (a, b, what, control) in itertools.product(budgets, PAIRS):
            res = run_pair(a, b, seeds=args.seeds, starts=starts, budget_a=args.budget_a, budget_b=budget_b,
                           keep_rules=args.keep_rules, work=Path(tmp))
            rows.append({**res, "carries": what, "control": control})
    table = Table(title=f"trials until within {TOLERANCE:.0%} of the best (median \\[q1, q3], share reached)")
    for col in ("A (lessons from)", "B (studied)", "B budget", "what should carry", "with lessons", "withheld",
                "drop"):
        table.add_column(col)
    for r in rows:
        fmt = lambda x: f"{x['median']:g} [{x['q1']:g}, {x['q3']:g}] {x['reached']:.0%}"  # noqa: E731
        drop = r["withheld"]["median"] - r["lessons"]["median"]
        table.add_row(r["a"], r["b"], str(r["budget_b"]), r["carries"], fmt(r["lessons"]), fmt(r["withheld"]),
                      f"{drop:+g}")
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tolerance": TOLERANCE, "seeds": args.seeds, "starts": starts,
                                    "budget_a": args.budget_a, "budgets_b": budgets,
                                    "keep_rules": args.keep_rules, "pairs": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
