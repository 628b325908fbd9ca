"""The workload's side of the ROMIO, HDF5 and POSIX settings a trial exports (see ``apply.TrialSettings``).

A workload run by the command target finds its ``romio:``/``hdf5:``/``posix:`` settings in the
environment: ``TUNESMITH_SETTINGS`` (JSON by family) and one ``TUNESMITH_<FAMILY>_<KEY>`` variable each;
MPICH's ROMIO also reads the ``ROMIO_HINTS`` file by itself. These helpers turn them into what the
libraries take: ``romio_info(MPI)`` an ``MPI.Info``, ``h5py_file_kwargs()`` keyword arguments of
``h5py.File``, ``posix_settings()`` a plain dict. They import neither mpi4py nor h5py themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

SETTINGS_ENV = "TUNESMITH_SETTINGS"


def settings(family: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The trial's settings of one family (``romio``, ``hdf5``, ``posix``); empty when none were set."""
    env = os.environ if environ is None else environ
    try:
        return dict(json.loads(env.get(SETTINGS_ENV, "{}")).get(family, {}))
    except (ValueError, AttributeError):
        return {}


def romio_info(mpi: Any, environ: Mapping[str, str] | None = None) -> Any:
    """An ``MPI.Info`` holding the trial's ROMIO hints (``mpi`` is ``mpi4py.MPI``); booleans as enable/disable."""
    info = mpi.Info.Create()
    for key, value in settings("romio", environ).items():
        info.Set(key, ("enable" if value else "disable") if isinstance(value, bool) else str(value))
    return info


def h5py_file_kwargs(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``h5py.File`` keyword arguments for the file-level HDF5 settings (alignment, caches, meta block, libver).

    Dataset-level ones (``chunk_shape``, ``coll_metadata``, ``mdc_size_mb``) are left to the workload:
    ``settings("hdf5")`` has them.
    """
    s = settings("hdf5", environ)
    out: dict[str, Any] = {}
    if "alignment_size" in s:
        out["alignment_interval"] = int(s["alignment_size"])
        out["alignment_threshold"] = int(s.get("alignment_threshold", 1))
    if "chunk_cache_mb" in s:
        out["rdcc_nbytes"] = int(float(s["chunk_cache_mb"]) * (1 << 20))
    if "chunk_cache_slots" in s:
        out["rdcc_nslots"] = int(s["chunk_cache_slots"])
    if "meta_block_size" in s:
        out["meta_block_size"] = int(s["meta_block_size"])
    if "libver" in s:
        out["libver"] = str(s["libver"])
    return out


def posix_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The POSIX knobs the workload declared (transfer size, threads, fsync policy, O_DIRECT, fadvise)."""
    return settings("posix", environ)
