"""benchmarks/overhead.py runs real studies and reports tunesmith's own time per trial (shape, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "overhead.py"


def _bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_overhead_benchmark_writes_one_row_per_study_with_ten_deciles(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    result = _bench("--trials", "20", "--modes", "plain", "live", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["remeasure"] is True and data["spawn_floor_ms"] > 0 and data["commit"]
    rows = {r["mode"]: r for r in data["results"]}
    assert set(rows) == {"plain", "live"}
    for r in rows.values():
        assert r["trials"] == 20 and r["exit_code"] == 0
        # every stored trial ran the workload once (repeats 1, no warm-up): first runs plus re-measures
        assert r["invocations"] == r["stored_trials"] >= 20
        assert r["remeasure_trials"] >= 2  # the default (all knobs 9) is beaten: a win is re-measured
        deciles = r["decile_median_gap_ms"]
        assert len(deciles) == 10 and all(d is not None and d > 0 for d in deciles)
        assert 0 < r["run_sum_s"] < r["store_wall_s"] <= r["wall_s"]
        assert 0 < r["gap_sum_s"] < r["wall_s"]
    table_rows = [line.split("│") for line in result.stdout.splitlines() if line.startswith("│")]
    printed = {(cells[1].strip(), cells[2].strip()) for cells in table_rows if len(cells) > 3}
    assert {("20", "plain"), ("20", "live")} <= printed  # one table row per study
    assert "spawn floor" in result.stdout


def test_overhead_benchmark_refuses_a_study_too_small_to_have_a_gap(tmp_path: Path) -> None:
    result = _bench("--trials", "1", "--out", str(tmp_path / "x.json"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --trials") and "fix:" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_job_file_is_valid_for_the_command_target(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import overhead
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from tunesmith.runners.job import load_job

    job_path = tmp_path / "job.toml"
    job_path.write_text(overhead.job_toml(50, tmp_path / "stamps.txt", remeasure=False))
    job = load_job(job_path)
    assert job.target == "command" and job.budget.trials == 50
    assert job.measure.repeats == 1 and job.measure.warmup == 0 and job.measure.remeasure is False
    assert job.strategy.name == "random"
    assert overhead.decile_medians([0.001 * i for i in range(1, 21)])[0] == pytest.approx(1.5)
    # repeats of one trial follow each other inside the target: no gap between them
    assert overhead.gaps_of([(0.0, 1.0, 1), (1.5, 2.0, 2), (2.1, 2.5, 2), (4.0, 5.0, 3)]) == [0.5, 1.5]
