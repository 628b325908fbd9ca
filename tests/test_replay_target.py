"""The replay target (a recorded sweep answers evaluate) and the strategy benchmark's simulation."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tunesmith.runners.base import Target
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import Job, Objective
from tunesmith.runners.replay.target import ReplayRecord, ReplayTable, ReplayTarget, record_sweep
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location(
        "strategies_benchmark", ROOT / "benchmarks" / "strategies.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()

SPACE = SearchSpace(
    params=(
        Param(name="mode", kind="choice", values=("a", "b"), default="a"),
        Param(name="block", kind="pow2", low=1, high=4, default=1),
        Param(name="ratio", kind="float", low=0.0, high=1.0, default=0.5),
    )
)


def small_table(path: Path, **extra: Any) -> Path:
    records = []
    for config in SPACE.grid(points=3):  # ratio 0.0, 0.5, 1.0
        value = (1.0 if config["mode"] == "a" else 2.0) * config["block"] + config["ratio"]
        records.append(
            ReplayRecord(config=config, samples=[value, value + 0.1, value + 0.2], metrics={"mb": 1.0})
        )
    records[-1] = ReplayRecord(config=records[-1].config, status=Status.RUNTIME, detail="oom")
    table = ReplayTable(space=SPACE, records=records, rules=["block", "mode"], target="toy", **extra)
    path.write_text(table.model_dump_json(), encoding="utf-8")
    return path


def ctx(repeats: int, workdir: Path) -> TrialContext:
    """A context without a runner: the replay target answers from the table."""
    return TrialContext(runner=None, workdir=workdir, repeats=repeats)


def replay(path: Path, **workload: Any) -> ReplayTarget:
    return ReplayTarget(Job(name="r", target="replay", workload={"table": str(path), **workload}))


def test_space_baseline_and_rules_come_from_the_table(tmp_path: Path) -> None:
    target = replay(small_table(tmp_path / "t.json", baseline={"mode": "b"}))
    space = target.space()
    assert space.names == ["mode", "block", "ratio"]
    ratio = space.get("ratio")
    assert ratio.kind == "choice" and ratio.values == (0.0, 0.5, 1.0)  # recorded values only
    assert space.get("block").kind == "pow2"
    assert target.baseline().config == {"mode": "b", "block": 1, "ratio": 0.5}
    assert target.rules() == ["block", "mode", "ratio"]
    assert target.fingerprint()["replay"] == "t.json"
    assert target.signature() == "replay/toy"


def test_evaluate_replays_recorded_samples_and_failures(tmp_path: Path) -> None:
    target = replay(small_table(tmp_path / "t.json"), noise="none")
    m = target.evaluate(Candidate(config={"mode": "b", "block": 2, "ratio": 0.5}), ctx(5, tmp_path))
    assert m.status == Status.OK
    assert m.samples == pytest.approx([4.5, 4.6, 4.7])
    assert m.median == pytest.approx(4.6)
    assert m.metrics == {"mb": 1.0}
    failed = target.evaluate(Candidate(config={"mode": "b", "block": 4, "ratio": 1.0}), ctx(3, tmp_path))
    assert failed.status == Status.RUNTIME and failed.detail == "oom" and not failed.samples


def test_resampling_is_seeded_by_seed_key_and_call_count(tmp_path: Path) -> None:
    path = small_table(tmp_path / "t.json")
    cand = Candidate(config={"mode": "a", "block": 4, "ratio": 1.0})
    a, b, other = replay(path, seed=1), replay(path, seed=1), replay(path, seed=2)
    first = [a.evaluate(cand, ctx(7, tmp_path)).samples for _ in range(3)]
    again = [b.evaluate(cand, ctx(7, tmp_path)).samples for _ in range(3)]
    assert first == again
    assert all(len(s) == 7 and set(s) <= {5.0, 5.1, 5.2} for s in first)
    assert len({tuple(s) for s in first}) > 1  # a second call draws anew
    assert [other.evaluate(cand, ctx(7, tmp_path)).samples for _ in range(3)] != first


def test_a_config_without_recording_is_an_infrastructure_failure(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    small_table(path)
    data = json.loads(path.read_text())
    data["records"] = data["records"][1:]  # drop (a, 1, 0.0)
    path.write_text(json.dumps(data))
    target = replay(path)
    missing = target.evaluate(Candidate(config={"mode": "a", "block": 1, "ratio": 0.0}), ctx(3, tmp_path))
    assert missing.status == Status.INFRASTRUCTURE and "no recording" in missing.detail
    code = target.evaluate(Candidate(config={"mode": "a", "block": 2, "ratio": 0.0}, source="x"), ctx(3, tmp_path))
    assert code.status == Status.INFRASTRUCTURE
    outside = target.evaluate(Candidate(config={"mode": "z"}), ctx(3, tmp_path))
    assert outside.status == Status.INFRASTRUCTURE and "no recording" in outside.detail


def test_bad_tables_and_objective_mismatch_are_one_line_job_errors(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        replay(tmp_path / "missing.json").space()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(JobError, match="not a replay table"):
        replay(tmp_path / "bad.json").space()
    path = small_table(tmp_path / "t.json")
    job = Job(
        name="r", target="replay", workload={"table": str(path)}, objective=Objective(direction="maximize")
    )
    with pytest.raises(JobError, match="recorded to minimize seconds"):
        ReplayTarget(job).preflight()


class ToyWorkload(BaseModel):
    """The toy target takes no workload fields."""


class Toy(Target):
    """A real (in-process) target for record_sweep: seconds = block / threads, threads=3 rejected."""

    name = "toy"
    domain = "test"
    workload_model = ToyWorkload

    def base_space(self) -> SearchSpace:
        return SearchSpace(
            params=(
                Param(name="block", kind="pow2", low=1, high=4, default=2),
                Param(name="threads", kind="int", low=1, high=3, default=1),
            )
        )

    def check(self, candidate: Candidate) -> list[str]:
        return ["three threads do not fit"] if candidate.config["threads"] == 3 else []

    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        assert ctx.workdir.is_dir()
        value = candidate.config["block"] / candidate.config["threads"]
        return Measurement(status=Status.OK, samples=[value] * ctx.repeats, wall_s=0.5)

    def rules(self) -> list[str]:
        return ["threads", "block"]

    def fingerprint(self) -> dict[str, Any]:
        return {"machine": "toy"}


def test_record_sweep_writes_a_table_that_replays_the_same_numbers(tmp_path: Path) -> None:
    toy = Toy(Job(name="toy", target="toy"))
    seen: list[int] = []
    table = record_sweep(
        toy, None, tmp_path / "work", 2, tmp_path / "sweep.json", progress=lambda i, n, r: seen.append(i)
    )
    assert len(table.records) == 9 and seen == list(range(1, 10))
    assert table.records[0].config == {"block": 2, "threads": 1}  # the baseline first
    rejected = [r for r in table.records if r.status == Status.CONSTRAINTS]
    assert len(rejected) == 3 and rejected[0].detail == "three threads do not fit"
    assert table.best().config == {"block": 1, "threads": 2}
    target = replay(tmp_path / "sweep.json", noise="none")
    assert target.rules() == ["threads", "block"] and target.fingerprint()["machine"] == "toy"
    m = target.evaluate(Candidate(config={"block": 4, "threads": 2}), ctx(3, tmp_path))
    assert m.samples == [2.0, 2.0] and m.wall_s == 0.5


# -- the benchmark's simulation on a synthetic table with a known answer ------------------------------
def test_first_within_and_summary() -> None:
    assert bench.first_within([None, 3.0, 1.06, 1.04], 1.0, minimize=True) == 4
    assert bench.first_within([50.0, 96.0], 100.0, minimize=False) == 2
    assert bench.first_within([2.0], 1.0, minimize=True) is None
    s = bench.summarize([2, 4, None, 6], budget=10)
    assert s["median"] == 5.0 and s["reached"] == 0.75 and not s["censored"]
    assert (s["q25"], s["q75"], s["iqr"]) == pytest.approx((3.5, 7.25, 3.75))  # misses count as 11


def test_simulation_reaches_the_known_optimum_at_the_known_trial(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.json"
    path.write_text(bench.synthetic_table(noise=0.0).model_dump_json())
    table = ReplayTable.load(path)
    assert table.best().config == {"fsync": "end_syncfs", "chunk_kib": 1024, "threads": 4, "direct": True}
    best = 0.9  # end_syncfs (1.0) x chunk 1024 (1.0) x 4 threads (1.0) x direct at >= 512 KiB (0.9)
    # offline planner: baseline, screening (fsync x2, chunk 4096, direct, threads 8), the screening winners
    # together, fsync per_file there, chunk walked down 2048, 1024, 512, threads walked up 2..5, direct -> 16
    def medians(configs: list[dict]) -> list[float | None]:
        return [bench._recorded_median(table, c) for c in configs]

    planner = medians(bench.simulate("offline_planner", path, seed=0, budget=20, noise="none"))
    assert bench.first_within(planner, best, minimize=True) == 16
    # grid: the optimum is grid point 2*112 + 4*16 + 3*2 + 1 = 295 (0-based); the baseline is point 0
    grid = medians(bench.simulate("grid", path, seed=0, budget=300, noise="none"))
    assert bench.first_within(grid, best, minimize=True) == 296
    assert bench.first_within(grid[:295], best, minimize=True) is None


def test_benchmark_cli_writes_json(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.json"
    path.write_text(bench.synthetic_table().model_dump_json())
    out = tmp_path / "results.json"
    argv = ["--table", str(path), "--repeats", "2", "--budget", "20", "--noise", "none", "--json", str(out)]
    assert bench.main([*argv, "--strategy", "random", "--strategy", "offline_planner"]) == 0
    data = json.loads(out.read_text())
    (entry,) = data["tables"]
    assert entry["configs"] == 336 and entry["best_median"] == pytest.approx(0.9, rel=0.1)
    planner = entry["strategies"]["offline_planner"]
    assert planner["hits"] == [16, 16] and planner["reached"] == 1.0
    assert set(entry["strategies"]) == {"random", "offline_planner"}


def test_benchmark_from_random_starts(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.json"
    path.write_text(bench.synthetic_table().model_dump_json())
    results = bench.benchmark([path], ("random", "tpe", "offline_planner"), repeats=3, budget=30,
                              starts=("default", "random"))  # fmt: skip
    entries = {e["start"]: e for e in results["tables"]}
    assert set(entries) == {"default", "random"}
    assert entries["default"]["best_median"] < entries["default"]["baseline_median"]
    for entry in entries.values():
        for name, s in entry["strategies"].items():
            assert len(s["hits"]) == 3 and all(h is None or 1 <= h <= 30 for h in s["hits"]), name
            assert s["q25"] <= s["median"] <= s["q75"]
    # a random start really starts elsewhere: the first config tried differs between seeds
    firsts = {json.dumps(bench.simulate("random", path, seed=s, budget=1, start="random")[0], sort_keys=True)
              for s in range(4)}
    assert len(firsts) > 1
