"""The Nsight Compute observer: command construction, CSV parsing, the judge's digest, and going on without ncu.

The CSV fixtures under tests/data/ncu were written by hand in the layout ncu documents for ``--csv --page
raw`` (a header, a units row, one row per kernel; numbers with thousands separators; ``==PROF==`` lines
mixed in) and for the long one-row-per-metric layout. They have not been checked against a real ncu run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.runners.base import RunResult, RunSpec
from tunesmith.runners.context import TrialContext
from tunesmith.runners.observers import OBSERVERS
from tunesmith.runners.observers import ncu as ncu_mod
from tunesmith.runners.observers.ncu import (
    METRICS,
    NcuObserver,
    digest_kernel,
    ncu_command,
    parse_csv,
    verdict,
)
from tunesmith.runners.types import Measurement, Status

DATA = Path(__file__).resolve().parent / "data" / "ncu"


def test_curated_metric_set_covers_the_judges_questions():
    assert 20 <= len(METRICS) <= 30 and len(set(METRICS.values())) == len(METRICS)
    names = " ".join(METRICS.values())
    for needed in ("warps_active", "occupancy_limit_registers", "registers_per_thread", "shared_mem_per_block",
                   "dram__throughput", "lts__t_sector_hit_rate", "pipe_tensor", "stalled_long_scoreboard"):
        assert needed in names


def test_command_wraps_the_run_with_metrics_csv_and_no_clock_control(tmp_path):
    argv = ncu_command("/usr/local/cuda/bin/ncu", ["python", "-m", "x", "spec.json"], tmp_path / "ncu.csv")
    assert argv[0] == "/usr/local/cuda/bin/ncu" and argv[-4:] == ["python", "-m", "x", "spec.json"]
    assert argv[argv.index("--metrics") + 1].split(",") == list(METRICS.values())
    assert argv[argv.index("--clock-control") + 1] == "none"
    assert argv[argv.index("--profile-from-start") + 1] == "off"
    assert argv[argv.index("--log-file") + 1] == str(tmp_path / "ncu.csv") and "--csv" in argv


def test_parse_raw_page_with_units_row_and_thousands_separators():
    kernels = parse_csv((DATA / "raw_page.csv").read_text())
    assert [k["kernel"] for k in kernels] == ["_matmul_kernel", "_bias_relu_kernel"]
    mm = kernels[0]
    assert mm["time_ns"] == 48384.0 and mm["smem_dynamic_bytes"] == 65536.0 and mm["grid_size"] == 1024.0
    assert mm["occupancy_pct"] == 45.12 and mm["stall_long_scoreboard"] == 3.41
    assert len([k for k in mm if k not in ("id", "kernel")]) == len(METRICS)


def test_parse_long_layout_gives_the_same_numbers():
    wide = parse_csv((DATA / "raw_page.csv").read_text())[0]
    long = parse_csv((DATA / "details_page.csv").read_text())
    assert len(long) == 1 and long[0] == wide
    assert parse_csv("") == [] and parse_csv("==PROF== nothing profiled\n") == []


def test_digest_names_the_limiter_the_bound_and_the_top_stalls():
    mm, relu = parse_csv((DATA / "raw_page.csv").read_text())
    text = digest_kernel(mm)
    assert text.startswith("_matmul_kernel: 48.4 us, compute-bound")
    assert "limited by registers" in text and "128 registers/thread" in text and "64.0 KiB shared/block" in text
    assert "busiest pipes tensor 69 %" in text and "top stalls (warps per issue) long_scoreboard 3.4" in text
    assert verdict(relu) == "memory-bound"
    assert verdict({"dram_throughput_pct": 10.0, "sm_throughput_pct": 20.0}).startswith("latency-bound")


def _observer_with_fake_ncu(monkeypatch, tmp_path) -> NcuObserver:
    monkeypatch.setattr(ncu_mod, "find_ncu", lambda: "/opt/ncu")
    return NcuObserver()


def test_observer_wraps_only_runs_that_ask_and_reads_the_log(monkeypatch, tmp_path):
    obs = _observer_with_fake_ncu(monkeypatch, tmp_path)
    ctx = TrialContext(runner=None, workdir=tmp_path)
    plain = RunSpec(argv=["python", "w.py"], cwd=tmp_path)
    assert obs.prepare(plain, ctx) is plain
    asked = RunSpec(argv=["python", "w.py"], cwd=tmp_path, env={ncu_mod.ENV: "1"}, timeout_s=100)
    wrapped = obs.prepare(asked, ctx)
    assert wrapped.argv[0] == "/opt/ncu" and wrapped.argv[-2:] == ["python", "w.py"] and wrapped.timeout_s == 300
    (tmp_path / ncu_mod.LOG_NAME).write_text((DATA / "raw_page.csv").read_text())
    obs.collect(RunResult(returncode=0), ctx)
    metrics = obs.numeric()
    assert metrics["ncu.kernels"] == 2.0 and metrics["ncu.time_ns"] == 48384.0  # the longest kernel
    m = obs.finish(Measurement(status=Status.OK), ctx)
    assert m.metrics["ncu.registers_per_thread"] == 128.0 and m.notes[0].startswith("Nsight Compute:\n- _matmul_kernel")


def test_observer_says_so_when_counters_are_not_permitted(monkeypatch, tmp_path):
    obs = _observer_with_fake_ncu(monkeypatch, tmp_path)
    ctx = TrialContext(runner=None, workdir=tmp_path)
    obs.prepare(RunSpec(argv=["python"], cwd=tmp_path, env={ncu_mod.ENV: "1"}), ctx)
    (tmp_path / ncu_mod.LOG_NAME).write_text("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission\n")
    obs.collect(RunResult(returncode=1), ctx)
    assert obs.numeric() == {} and "ERR_NVGPUCTRPERM" in obs.digest() and "going on without" in obs.digest()


def test_observer_without_ncu_is_one_line_and_leaves_runs_alone(monkeypatch, tmp_path):
    monkeypatch.setattr(ncu_mod, "find_ncu", lambda: None)
    obs = OBSERVERS.create("ncu")
    spec = RunSpec(argv=["python"], cwd=tmp_path, env={ncu_mod.ENV: "1"})
    assert obs.prepare(spec, TrialContext(runner=None, workdir=tmp_path)) is spec
    assert obs.usable() == (False, "ncu (Nsight Compute) not found on PATH")
    assert obs.digest().count("\n") == 0 and "not found" in obs.digest()


@pytest.mark.parametrize("text", ["garbage,no,header\n1,2,3\n", '"ID","Kernel Name"\n"x","k"\n', '"ID","Metric Name"\n"0","m"\n'])
def test_unexpected_csv_gives_no_kernels_rather_than_an_error(text):
    assert parse_csv(text) == []
