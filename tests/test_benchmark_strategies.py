"""benchmarks/strategies.py on its synthetic table: the comparison runs and counts what it says it counts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_strategies", ROOT / "benchmarks" / "strategies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_first_within_counts_the_first_good_enough_trial():
    bench = load_benchmark()
    assert bench.first_within([2.0, None, 1.04, 1.0], 1.0, minimize=True) == 3
    assert bench.first_within([2.0, 1.2], 1.0, minimize=True) is None
    assert bench.first_within([5.0, 9.6], 10.0, minimize=False) == 2


def test_benchmark_on_the_synthetic_table(tmp_path):
    bench = load_benchmark()
    path = tmp_path / "synthetic.json"
    path.write_text(bench.synthetic_table().model_dump_json(), encoding="utf-8")
    results = bench.benchmark([path], ("random", "tpe", "offline_planner"), repeats=3, budget=30,
                              starts=("default", "random"))  # fmt: skip
    entries = {e["start"]: e for e in results["tables"]}
    assert set(entries) == {"default", "random"}
    default = entries["default"]
    assert default["best_median"] < default["baseline_median"]  # the synthetic optimum is not the default
    for entry in entries.values():
        for name, s in entry["strategies"].items():
            assert len(s["hits"]) == 3 and all(h is None or 1 <= h <= 30 for h in s["hits"]), name
            assert s["q25"] <= s["median"] <= s["q75"]
    # the whole space is 1 + small: an exhaustive-ish budget finds the optimum for most seeds
    assert any(s["reached"] > 0 for s in default["strategies"].values())
