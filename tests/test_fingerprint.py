"""Environment fingerprints without importing torch: GPU facts from nvidia-smi, versions from metadata,
computed once per process; the file system of a path from a mount table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tunesmith.runners import fingerprint
from tunesmith.runners.fingerprint import environment_fingerprint, filesystem_of

CPU_KEYS = {"machine", "cpu", "cpus", "python", "torch", "triton", "gpu"}

# A stand-in for nvidia-smi: logs its arguments; `old` drivers do not know the compute_cap field.
FAKE_SMI = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  *compute_cap*) [ "{old}" = 1 ] && {{ echo 'Field "compute_cap" is not a valid field to query.'; exit 2; }}
                 echo "NVIDIA H100 80GB HBM3, 550.54.15, 9.0" ;;
  *) echo "NVIDIA H100 80GB HBM3, 550.54.15" ;;
esac
"""


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty per-process cache, restored afterwards."""
    monkeypatch.setattr(fingerprint, "_cache", {})


def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: bool = False) -> Path:
    tools = tmp_path / "bin"
    tools.mkdir()
    log = tmp_path / "smi.log"
    (tools / "nvidia-smi").write_text(FAKE_SMI.format(log=log, old=int(old)))
    (tools / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    return log


def test_fingerprinting_does_not_import_torch() -> None:
    code = ("import json, sys; from tunesmith.runners.fingerprint import environment_fingerprint as f; "
            "fp = f(); print(json.dumps({'fp': fp, 'torch_imported': 'torch' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["torch_imported"] is False
    try:
        assert out["fp"]["torch"] == metadata.version("torch")
    except metadata.PackageNotFoundError:
        assert out["fp"]["torch"] is None


def test_gpu_facts_come_from_nvidia_smi_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    log = fake_smi(tmp_path, monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", raising=False)
    fp = environment_fingerprint()
    assert fp["gpu"] == "NVIDIA H100 80GB HBM3" and fp["gpu_capability"] == "9.0" and fp["driver"] == "550.54.15"
    assert fp["cuda"] == fingerprint._torch_cuda_build() and fp["tf32_matmul"] is False
    fp["gpu"] = "changed by a caller"
    assert environment_fingerprint()["gpu"] == "NVIDIA H100 80GB HBM3"  # callers get a copy
    assert len(log.read_text().splitlines()) == 1, "nvidia-smi was asked again"


def test_visible_devices_and_old_drivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None) -> None:
    log = fake_smi(tmp_path, monkeypatch, old=True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    fp = environment_fingerprint()
    assert fp["gpu"] == "NVIDIA H100 80GB HBM3" and fp["driver"] == "550.54.15" and "gpu_capability" not in fp
    assert all(line.endswith("-i 2") for line in log.read_text().splitlines())  # CUDA's device 0
    monkeypatch.setattr(fingerprint, "_cache", {})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # every GPU hidden
    assert environment_fingerprint()["gpu"] is None


def test_without_a_gpu_the_fingerprint_is_the_cpu_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      fresh: None) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setattr(fingerprint, "_gpu_from_proc", lambda: None)
    fp = environment_fingerprint()
    assert set(fp) == CPU_KEYS and fp["gpu"] is None and fp["cpus"] == os.cpu_count()


def test_torch_cuda_build_is_read_from_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site" / "torch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('torch must not be imported to fingerprint')\n")
    (pkg / "version.py").write_text("from typing import Optional\n__version__ = '9.9'\ncuda: Optional[str] = '12.4'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert fingerprint._torch_cuda_build() == "12.4"
    (pkg / "version.py").write_text("cuda = None\n")  # a CPU build
    assert fingerprint._torch_cuda_build() is None


def test_filesystem_of_picks_the_longest_mount_from_a_table() -> None:
    mounts = [("/", "ext4", "rw"), ("/data", "xfs", "rw,noatime"), ("/data/x y", "tmpfs", "rw")]
    assert filesystem_of("/data/a/b", mounts) == {"mount": "/data", "fstype": "xfs", "options": "rw,noatime"}
    assert filesystem_of("/data/x y/z", mounts)["fstype"] == "tmpfs"
    assert filesystem_of("/database", mounts)["fstype"] == "ext4"
    assert filesystem_of("/anything", [])["fstype"] == "unknown"
