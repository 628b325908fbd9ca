"""Profile summaries (Darshan, strace, Nsight Compute, torch profiler), the profiles collection, and the
wiring: a finished study's observer output is indexed, the planner's trail and prompt show the baseline's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.knowledge.profiles import (
    ProfileSummary,
    feature_distance,
    index_profile,
    index_study_profiles,
    judge_profile_line,
    profile_lines,
    similar_profiles,
    summarise_io,
    summarise_io_file,
    summarise_ncu_csv,
    summarise_torch,
)
from tunesmith.knowledge.retrieval import Retriever
from tunesmith.knowledge.vector.store import KnowledgeStore
from tunesmith.runners.iotrace.capture import load_trace, strace_works, traced
from tunesmith.runners.iotrace.darshan_log import example_logs
from tunesmith.runners.types import Candidate, Measurement, Status, Trial

ROOT = Path(__file__).resolve().parents[1]
NCU = ROOT / "tests" / "data" / "ncu"
TUNE = shutil.which("tune") or str(Path(sys.executable).with_name("tune"))
FAST_LOGS = ("example.darshan", "ior_hdf5_example.darshan", "shane_macsio_id29959_5-22-32552-7035573431850780836_1590156158.darshan",
             "pq_app_write_id71296_7-31-5657-2037904274838284930_55623.darshan", "sample-goodost.darshan")
IO_FEATURES = {"bytes", "nprocs", "files", "fsyncs_per_write", "meta_ops_per_mib"}


def _darshan(name: str) -> ProfileSummary:
    return summarise_io_file(example_logs()[name])


def test_darshan_examples_give_their_shape_and_bottleneck():
    for name in FAST_LOGS:
        s = _darshan(name)
        assert s.kind == "darshan" and IO_FEATURES <= set(s.features), name
        assert s.text.startswith("I/O profile (darshan") and "Bottleneck:" in s.text
    ex = _darshan("example.darshan")  # 2048 ranks writing one shared file collectively
    assert ex.features["nprocs"] == 2048 and ex.features["collective_share"] > 0.99 and ex.features["read_share"] == 0
    assert ex.bottleneck == "imbalance" and ex.features["imbalance"] > 1.5
    ior = _darshan("ior_hdf5_example.darshan")  # independent MPI-IO through HDF5
    assert ior.features["collective_share"] == 0 and ior.bottleneck == "collective_buffering"
    assert _darshan("sample-goodost.darshan").bottleneck == "no I/O symptom"


@pytest.mark.slow
def test_every_pydarshan_example_log_is_summarised():
    logs = example_logs()
    assert len(logs) >= 10
    for name, path in logs.items():
        s = summarise_io_file(path)
        assert s.bottleneck and all(v == v for v in s.features.values()), name  # no NaN


@pytest.mark.skipif(bool(strace_works()), reason="strace cannot trace here")
def test_strace_capture_of_a_small_program(tmp_path):
    prog = ("import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)\n"
            "for _ in range(200):\n    os.write(fd, b'x' * 512)\n    os.fsync(fd)\nos.close(fd)\n")
    (tmp_path / "w.py").write_text(prog)
    argv, env = traced([sys.executable, str(tmp_path / "w.py"), str(tmp_path / "data.bin")], {}, tmp_path / "t", "strace")
    subprocess.run(argv, env={**os.environ, **env}, check=True, timeout=60)
    s = summarise_io(load_trace(tmp_path / "t"))
    assert s.kind == "strace" and s.bottleneck == "fsync_policy"
    assert s.features["bytes"] >= 200 * 512 and s.features["fsyncs_per_write"] == pytest.approx(1.0, abs=0.05)
    assert s.features["small_access_share"] > 0.95 and s.features["read_share"] < 0.2


def test_ncu_fixtures_both_layouts():
    raw, details = summarise_ncu_csv(NCU / "raw_page.csv"), summarise_ncu_csv(NCU / "details_page.csv")
    for s in (raw, details):
        assert s.kind == "ncu" and s.bottleneck == "compute-bound" and "_matmul_kernel" in s.text
        f = s.features
        assert f["achieved_occupancy_pct"] == pytest.approx(45.12) and f["dram_throughput_pct"] == pytest.approx(22.8)
        assert f["l2_hit_pct"] == pytest.approx(81.6) and f["registers_per_thread"] == 128
        assert 0.5 < f["top_stall_share"] < 0.55
    assert raw.features["kernels"] == 2
    line = judge_profile_line({"ncu.occupancy_pct": 20.0, "ncu.dram_throughput_pct": 85.0, "ncu.sm_throughput_pct": 30.0,
                               "ncu.stall_long_scoreboard": 6.0, "ncu.stall_barrier": 2.0})
    assert line.startswith("Profile summary: bottleneck memory-bound") and "top stall reason 75% of stalls" in line
    assert judge_profile_line({"candidate_ms": 1.0}) == ""


def _torch_trace(tmp_path: Path, model, x) -> Path:
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            model(x)
    path = tmp_path / f"trace-{id(model)}.json"
    prof.export_chrome_trace(str(path))
    return path, prof


def test_torch_profiler_trace_of_tiny_models(tmp_path):
    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 64))
    path, prof = _torch_trace(tmp_path, mlp, torch.randn(64, 256))
    s = summarise_torch(path)
    assert s.kind == "torch_profiler" and s.bottleneck == "gemm-dominated" and "aten::addmm" in s.text
    assert s.features["gemm_share"] > 0.5 and s.features["kernel_count"] == 0
    shares = sum(s.features[f"{c}_share"] for c in ("gemm", "conv", "elementwise", "communication", "other"))
    assert shares == pytest.approx(1.0, abs=1e-4)
    averaged = summarise_torch(prof.key_averages())  # the same run through key_averages: same self time
    assert averaged.features["total_self_us"] == pytest.approx(s.features["total_self_us"], rel=0.02)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 5), torch.nn.Conv2d(16, 16, 5))
    cs = summarise_torch(_torch_trace(tmp_path, conv, torch.randn(4, 3, 64, 64))[0])
    assert cs.bottleneck == "conv-dominated" and cs.features["conv_share"] > 0.5


def test_similar_profiles_finds_the_nearest_of_its_family(tmp_path):
    store = KnowledgeStore(tmp_path / "k", "hashing")
    logs = ("example.darshan", "ior_hdf5_example.darshan", "sample-goodost.darshan",
            "pq_app_write_id71296_7-31-5657-2037904274838284930_55623.darshan")
    for i, name in enumerate(logs):
        index_profile(store, _darshan(name), study="s", trial=i, domain="io", hardware="cpu")
    index_profile(store, summarise_ncu_csv(NCU / "raw_page.csv"), study="s", trial=9, domain="kernel", hardware="h100")
    assert store.count("profiles") == 5
    query = _darshan("pq_app_write_id71303_7-31-5657-2037904274838284930_55623.darshan")  # a sibling run
    found = similar_profiles(store, query, 3)
    assert found[0].record.metadata["trial"] == 3 and all(m.summary.kind == "darshan" for m in found)
    assert found[0].distance < found[1].distance and found[0].score >= found[1].score
    same = similar_profiles(store, _darshan("sample.darshan"), 1)  # the same numbers as example.darshan
    assert same[0].record.metadata["trial"] == 0 and same[0].distance == 0
    assert feature_distance({"a_share": 0.2}, {"a_share": 0.7}) == pytest.approx(0.5)
    assert store.get("profiles", {"kind": "ncu"})[0].metadata["f_registers_per_thread"] == 128


def _trial(number: int, median: float, **measure) -> Trial:
    m = Measurement(status=Status.OK, samples=[median], **measure)
    return Trial(study="st", number=number, candidate=Candidate(config={"x": number}), measurement=m)


class _Studies:
    def __init__(self, trials):
        self._trials = trials

    def trials(self, study, include_interrupted=True):
        return self._trials


def test_a_studys_observer_output_is_indexed_and_searchable(tmp_path):
    kept = tmp_path / "trial-0001.json"
    kept.write_text(load_trace(example_logs()["ior_hdf5_example.darshan"]).model_dump_json())
    torch_json = tmp_path / "trace.json"
    torch_json.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "ts": 10, "dur": 80, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::relu", "ts": 100, "dur": 20, "pid": 1, "tid": 1}]}))
    ncu = {f"ncu.{k}": v for k, v in {"occupancy_pct": 30.0, "dram_throughput_pct": 90.0, "time_ns": 5e4,
                                      "sm_throughput_pct": 20.0, "registers_per_thread": 64.0}.items()}
    trials = [_trial(1, 2.0, artifacts={"iotrace": str(kept)}), _trial(2, 1.0, metrics=ncu),
              _trial(3, 3.0, artifacts={"torch_profiler": str(torch_json)}), _trial(4, 5.0)]
    store = KnowledgeStore(tmp_path / "k", "hashing")
    assert index_study_profiles(store, _Studies(trials), "st", signature="io/ior", hardware="cpu") == 3
    torch_rec = store.get("profiles", {"kind": "torch_profiler"})[0]
    assert torch_rec.metadata["f_gemm_share"] == pytest.approx(100 / 120) and torch_rec.metadata["study"] == "st"
    hits = Retriever(store).search("memory-bound GPU kernel DRAM occupancy", 2, {"collection": "profiles"})
    assert hits and hits[0].metadata["kind"] == "ncu"
    lines = profile_lines(trials, minimize=True)  # the baseline (first profiled) and the incumbent (fastest)
    assert lines[0].startswith("Profile of the baseline (trial #1): I/O profile (darshan")
    assert lines[1].startswith("Profile of the incumbent (trial #2): GPU kernel profile, memory-bound")
    env = {**os.environ, "TUNESMITH_KNOWLEDGE": str(tmp_path / "k"), "TUNESMITH_EMBEDDER": "hashing"}
    r = subprocess.run([TUNE, "knowledge", "search", "DRAM throughput occupancy", "--collection", "profiles",
                        "--k", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "GPU kernel profile" in r.stdout and "study st trial #2, bottleneck memory-bound" in r.stdout, r.stdout + r.stderr


def test_profile_search_through_a_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    store = KnowledgeStore(tmp_path / "k", "hashing")
    index_profile(store, _darshan("ior_hdf5_example.darshan"), study="io1", trial=1, domain="io", hardware="cpu")
    env = {**os.environ, "TUNESMITH_KNOWLEDGE": str(tmp_path / "k"), "TUNESMITH_EMBEDDER": "hashing"}
    child = pexpect.spawn(TUNE, ["knowledge", "search", "collective MPI-IO", "--collection", "profiles"], env=env,
                          encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "profile of study io1 trial #1" in child.before and "I/O profile (darshan" in child.before


@pytest.mark.slow
@pytest.mark.skipif(bool(strace_works()), reason="strace cannot trace here")
def test_a_traced_study_indexes_its_profiles_and_reports_the_baselines(tmp_path):
    example = ROOT / "examples" / "record_writer"
    job = (example / "job.toml").read_text().replace('"--records", "2000"', '"--records", "150"')
    job = job.replace("repeats = 4", "repeats = 1").replace("warmup = 0", 'warmup = 0\nobservers = ["iotrace"]')
    (tmp_path / "write_records.py").write_text((example / "write_records.py").read_text())
    (tmp_path / "job.toml").write_text(job)
    from tunesmith.knowledge.vector.store import Record

    KnowledgeStore(tmp_path / "k", "hashing").add("manuals", [Record("seed", "a store exists", {"domain": "io"})])
    env = {**os.environ, "TUNESMITH_KNOWLEDGE": str(tmp_path / "k"), "TUNESMITH_EMBEDDER": "hashing"}
    res = subprocess.run([TUNE, "run", "job.toml", "--trials", "3", "--plain", "--llm", "off", "--state-dir",
                          str(tmp_path / "state")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    profiles = KnowledgeStore(tmp_path / "k").get("profiles", {"kind": "strace"})
    assert len(profiles) >= 3 and {p.metadata["trial"] for p in profiles} >= {1, 2, 3}
    assert profiles[0].metadata["domain"] == "io" and "f_fsyncs_per_write" in profiles[0].metadata
    report = next((tmp_path / "state" / "reports").glob("*.md")).read_text()
    assert "Profile of the baseline (trial #1): I/O profile (strace" in report
