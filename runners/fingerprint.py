"""Environment fingerprints: results are compared and reused only within one fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from functools import lru_cache
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


@lru_cache(maxsize=1)
def environment_fingerprint() -> dict[str, Any]:
    """Host, CPU, Python and library versions; GPU name, driver and capability where CUDA is present."""
    fp: dict[str, Any] = {
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": _version("torch"),
        "triton": _version("triton"),
    }
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            fp["gpu"] = props.name
            fp["gpu_capability"] = f"{props.major}.{props.minor}"
            fp["cuda"] = torch.version.cuda
            fp["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
        else:
            fp["gpu"] = None
    except Exception:  # noqa: BLE001 - a broken torch must not stop fingerprinting
        fp["gpu"] = None
    return fp


def filesystem_of(path: str | Path) -> dict[str, str]:
    """The mount point, file-system type and mount options holding ``path`` (from /proc/self/mounts)."""
    target = Path(path).resolve()
    best: dict[str, str] = {"mount": "/", "fstype": "unknown", "options": ""}
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            mount = parts[1].replace("\\040", " ")
            if (target == Path(mount) or Path(mount) in target.parents) and len(mount) >= len(best["mount"]):
                best = {"mount": mount, "fstype": parts[2], "options": parts[3]}
    except OSError:
        pass
    return best


def fingerprint_id(fp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:12]
