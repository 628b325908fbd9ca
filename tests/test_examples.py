"""The record-writer and log-compression examples: they run, verify their output, and their jobs load."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tunesmith.runners.job import load_job
from tunesmith.tools.plugins import TARGETS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script: Path, *args: str, tmp_path: Path) -> dict[str, Any]:
    result = tmp_path / "result.json"
    env = {"TUNESMITH_RESULT": str(result), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "out"), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(result.read_text())


@pytest.mark.parametrize("args, fsyncs", [
    ([], 201),  # the default: one fsync per record, plus the final one
    (["--sync-every", "64", "--batch", "16", "--encode", "csv", "--preallocate", "--buffer-kib", "1024"], 4),
])
def test_record_writer_writes_every_record_durably_and_checks_them(tmp_path: Path, args, fsyncs) -> None:  # noqa: ANN001
    out = _run(EXAMPLES / "record_writer" / "write_records.py", "--records", "200", *args, tmp_path=tmp_path)
    assert out["correct"] is True and out["fsyncs"] == fsyncs and out["seconds"] > 0
    journal = tmp_path / "out" / "journal.log"
    assert out["bytes"] == journal.stat().st_size  # preallocated space was trimmed away


def test_record_writer_verify_catches_a_damaged_journal(tmp_path: Path) -> None:
    mod = _module(EXAMPLES / "record_writer" / "write_records.py")
    records = mod.make_records(50)
    path = tmp_path / "journal.log"
    path.write_bytes(b"".join(mod.encode_json(r) for r in records))
    assert mod.verify(path, records, "json") == ""
    lines = path.read_bytes().split(b"\n")
    lines[7] = lines[7].replace(b'"seq": 7', b'"seq": 8')
    path.write_bytes(b"\n".join(lines))
    assert mod.verify(path, records, "json") == "record 7 differs from what was written"
    path.write_bytes(b"".join(mod.encode_csv(r) for r in records[:-1]))
    assert mod.verify(path, records, "csv") == "49 records on disk, 50 written"


@pytest.mark.parametrize("codec", ["zlib", "bz2", "lzma"])
def test_compress_logs_round_trips_every_codec(tmp_path: Path, codec: str) -> None:
    out = _run(EXAMPLES / "compress_logs" / "compress_logs.py", "--size-mb", "1", "--codec", codec, "--level", "1",
               "--chunk-kib", "256", "--workers", "2", tmp_path=tmp_path)
    assert out["correct"] is True and out["ratio"] > 2 and out["mb_per_s"] > 0


def test_compress_logs_verify_catches_a_damaged_archive(tmp_path: Path) -> None:
    mod = _module(EXAMPLES / "compress_logs" / "compress_logs.py")
    data = mod.make_logs(200_000)
    path = tmp_path / "logs.frames"
    args = type("Args", (), {"chunk_kib": 64, "codec": "zlib", "level": 1, "workers": 1})()
    mod.archive(args, data, path)
    assert mod.verify(path, data, "zlib") == ""
    assert "differs" in mod.verify(path, data[:-1] + b"X", "zlib")
    blob = bytearray(path.read_bytes())
    blob[20] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert mod.verify(path, data, "zlib").startswith("frame 0 does not decompress")


@pytest.mark.parametrize("name, last", [("record_writer", "sync_every"), ("compress_logs", "codec")])
def test_example_jobs_load_with_the_strong_knob_declared_last(name: str, last: str) -> None:
    job = load_job(EXAMPLES / name / "job.toml")
    target = TARGETS.create(job.target, job)
    target.preflight()
    space = target.space()
    assert space.names[-1] == last and space.names[0] != last
    argv, _ = target.render(target.baseline().config, Path("/nonexistent/out"))
    assert Path(argv[1]).is_file()
    assert 60 <= space.size() <= 200  # small enough to sweep exhaustively
