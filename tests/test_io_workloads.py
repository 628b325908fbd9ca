"""The examples/io workloads run and report their metric; a traced fsync-heavy study screens fsync first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.runners.iotrace.capture import strace_works
from tunesmith.runners.job import load_job

ROOT = Path(__file__).resolve().parents[1]
IO = ROOT / "examples" / "io"
TUNE = str(Path(sys.executable).parent / "tune")


def run(script: Path, *args: str, tmp: Path) -> dict:
    result = tmp / "result.json"
    env = {**os.environ, "TUNESMITH_RESULT": str(result)}
    res = subprocess.run([sys.executable, str(script), "--out", str(tmp / "out"), *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(result.read_text())


def test_job_files_parse() -> None:
    for job in sorted(IO.glob("*/job.toml")):
        parsed = load_job(job)
        assert parsed.target == "command" and "iotrace" in parsed.measure.observers, job


@pytest.mark.parametrize("layout,collective", [("shared", "true"), ("fpp", "false")])
def test_ior_mpiio_under_two_ranks(tmp_path: Path, layout: str, collective: str) -> None:
    out = run(IO / "ior_mpiio" / "ior.py", "--np", "2", "--layout", layout, "--collective", collective,
              "--transfer-kib", "64", "--block-mib", "1", "--segments", "2", "--read", "true",
              "--hint", "romio_cb_write=enable", tmp=tmp_path)
    assert out["ranks"] == 2 and out["mb_per_s"] > 0 and out["read_mb_per_s"] > 0
    assert "romio_cb_write=enable" in out["hints_in_effect"]
    assert "fadvise" in out["page_cache"]


def test_ior_refuses_a_block_that_transfers_do_not_divide(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(IO / "ior_mpiio" / "ior.py"), "--out", str(tmp_path),
                          "--transfer-kib", "3", "--block-mib", "1"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 78 and "multiple" in res.stderr


def test_hdf5_writer_chunked_and_aligned(tmp_path: Path) -> None:
    out = run(IO / "hdf5_writer" / "write_h5.py", "--rows", "256", "--cols", "256", "--chunk-rows", "32",
              "--alignment-kib", "64", "--rows-per-write", "32", tmp=tmp_path)
    assert out["seconds"] > 0 and out["file_mb"] >= 256 * 256 * 4 / 1e6


def test_metadata_workload_every_fsync_policy(tmp_path: Path) -> None:
    for policy in ("each", "dir", "end"):
        out = run(IO / "metadata" / "many_files.py", "--files", "30", "--fanout", "4", "--fsync", policy, tmp=tmp_path)
        assert out["files_per_s"] > 0
        assert not list((tmp_path / "out" / "tree").rglob("f*"))  # every file was deleted


@pytest.mark.slow
@pytest.mark.skipif(bool(strace_works()), reason="strace cannot trace here")
def test_traced_fsync_heavy_study_tries_the_fsync_param_first(tmp_path: Path) -> None:
    """The record writer's group-commit knob is declared last; the baseline's trace puts it first."""
    job = (ROOT / "examples" / "record_writer" / "job.toml").read_text()
    job = job.replace('"--records", "2000"', '"--records", "150"').replace("repeats = 4", "repeats = 1")
    job = job.replace("warmup = 0", 'warmup = 0\nobservers = ["iotrace"]')
    (tmp_path / "write_records.py").write_text((ROOT / "examples" / "record_writer" / "write_records.py").read_text())
    (tmp_path / "job.toml").write_text(job)
    res = subprocess.run([TUNE, "run", "job.toml", "--trials", "2", "--plain", "--llm", "off",
                          "--state-dir", str(tmp_path / "state")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    report = json.loads(next((tmp_path / "state" / "reports").rglob("*.json")).read_text())
    text = json.dumps(report)
    # a 2-trial budget takes the guided start (agents/strategies/guided_start.py): sync_every leads its change list
    assert "screen sync_every (#1)" in text or "I/O trace and the rules: sync_every 1 -> " in text, text[:3000]
    assert "iotrace.suggest.fsync_policy" in text
