"""Environment fingerprints: results are compared and reused only within one fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_cuda_build() -> str | None:
    """The CUDA version torch was built for (``torch.version.cuda``), read from its files: no import."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else None


def _first_visible_gpu() -> str | None:
    """The ``nvidia-smi -i`` id of the first GPU a CUDA program sees; "" when CUDA_VISIBLE_DEVICES hides all."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    first = visible.split(",")[0].strip()
    return "" if first in ("", "-1") else first


def _gpu_from_smi(index: str | None) -> dict[str, str] | None:
    """Name, driver and compute capability of one GPU from ``nvidia-smi``; None where it cannot tell."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    for fields in (("name", "driver_version", "compute_cap"), ("name", "driver_version")):  # old drivers lack compute_cap
        cmd = [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]
        cmd += ["-i", index] if index else []
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
        if done.returncode == 0 and lines:
            values = [v.strip() for v in lines[0].split(",")]
            if len(values) == len(fields):
                return dict(zip(fields, values, strict=True))
    return None


def _gpu_from_proc() -> dict[str, str] | None:
    """Name and driver of the first GPU from /proc/driver/nvidia (no capability there)."""
    root = Path("/proc/driver/nvidia")
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        m = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?([0-9][0-9.]*)", (root / "version").read_text())
        if m:
            out["driver_version"] = m.group(1)
    with contextlib.suppress(OSError):
        for info in sorted((root / "gpus").glob("*/information")):
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    out["name"] = line.split(":", 1)[1].strip()
                    break
            break
    return out if "name" in out else None


def _gpu_facts() -> dict[str, Any]:
    """gpu, gpu_capability, driver, cuda, tf32_matmul of the first visible NVIDIA GPU; ``{"gpu": None}`` without one."""
    index = _first_visible_gpu()
    if index == "":
        return {"gpu": None}
    facts = _gpu_from_smi(index) or _gpu_from_proc()
    if facts is None:
        return {"gpu": None}
    out: dict[str, Any] = {"gpu": facts["name"]}
    if facts.get("compute_cap") and facts["compute_cap"] not in ("[N/A]", "N/A"):
        out["gpu_capability"] = facts["compute_cap"]
    if facts.get("driver_version"):
        out["driver"] = facts["driver_version"]
    out["cuda"] = _torch_cuda_build()
    # torch's default for TF32 in matmuls (it reads the same variable); targets that set it record their own
    out["tf32_matmul"] = os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1"
    return out


_cache: dict[int, dict[str, Any]] = {}


def environment_fingerprint() -> dict[str, Any]:
    """Host, CPU, Python and library versions; GPU name, capability, driver and torch's CUDA where a GPU is present.

    Nothing here imports torch (that takes seconds and makes every later fork of this process slow): GPU
    facts come from ``nvidia-smi`` (else /proc/driver/nvidia), versions from the installed packages'
    metadata. Computed once per process; a copy is returned.
    """
    pid = os.getpid()
    if pid not in _cache:
        fp: dict[str, Any] = {
            "machine": platform.machine(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "torch": _version("torch"),
            "triton": _version("triton"),
        }
        fp.update(_gpu_facts())
        _cache.clear()
        _cache[pid] = fp
    return dict(_cache[pid])


def read_mounts() -> list[tuple[str, str, str]]:
    """(mount point, file-system type, options) of every mount, from /proc/self/mounts ([] where unreadable)."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4:
                out.append((parts[1].replace("\\040", " "), parts[2], parts[3]))
    return out


def filesystem_of(path: str | Path, mounts: list[tuple[str, str, str]] | None = None) -> dict[str, str]:
    """The mount point, file-system type and mount options holding ``path``.

    ``mounts`` is a table from ``read_mounts`` to reuse (callers that ask often keep one); default: read now.
    """
    target = str(Path(path).resolve())
    best: tuple[str, str, str] = ("/", "unknown", "")
    for mount, fstype, options in read_mounts() if mounts is None else mounts:
        # string prefixes, not Path objects: a machine has dozens of mounts and this runs once per trial
        m = mount.rstrip("/") or "/"
        if (m == "/" or target == m or target.startswith(m + "/")) and len(mount) >= len(best[0]):
            best = (mount, fstype, options)
    return {"mount": best[0], "fstype": best[1], "options": best[2]}


def fingerprint_id(fp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:12]
