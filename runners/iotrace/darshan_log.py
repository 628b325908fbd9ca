"""Read a Darshan log with PyDarshan into the tables ``characterise`` works on.

Every module PyDarshan can read in bulk is read (POSIX, MPI-IO, STDIO, H5F, H5D; LUSTRE through its own
reader); a module the log lacks is left out, one that fails to read becomes a note, so every log gives a
characterisation. The DXT modules (per-call traces) are not needed: the counters carry the summary.
"""

from __future__ import annotations

from pathlib import Path

from .characterise import TraceTables, characterise
from .model import IOCharacterisation, TraceError

COUNTER_MODULES = ("POSIX", "MPI-IO", "STDIO", "H5F", "H5D")
DARSHAN_MAGIC = b"75d\x00"  # bytes 8-11 of every log: DARSHAN_MAGIC_NR (6567223), little-endian


def example_logs() -> dict[str, str]:
    """Every Darshan log shipped inside the installed PyDarshan package (name -> path)."""
    from darshan import log_utils

    return dict(sorted(log_utils._produce_log_dict("darshan").items()))


def looks_like_darshan(path: Path) -> bool:
    """Whether ``path`` starts like a Darshan log: a version string, then Darshan's magic number."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:1].isdigit() and head[8:12] == DARSHAN_MAGIC


def _frame(record: dict) -> object:
    """One module's counters and time counters merged into one DataFrame (shared ``id`` and ``rank``)."""
    counters, fcounters = record["counters"], record["fcounters"]
    return counters.merge(fcounters, on=["id", "rank"], how="outer").fillna(0)


def read_tables(path: str | Path) -> TraceTables:
    """The per-module tables, Lustre components and job facts of a Darshan log."""
    import darshan

    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such file", "give the path of a Darshan log or a strace output")
    try:
        report = darshan.DarshanReport(str(path), read_all=False)
    except Exception as exc:  # noqa: BLE001 - PyDarshan raises plain RuntimeError/ValueError on a bad file
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise TraceError(f"{path}: not a readable Darshan log ({first})",
                         "give a .darshan log written by darshan-runtime, or a strace output") from None
    job = report.metadata.get("job", {})
    tables = TraceTables(source="darshan", path=str(path), exe=str(report.metadata.get("exe", ""))[:300],
                         nprocs=int(job.get("nprocs", 1) or 1))
    run_time = float(job.get("run_time", 0) or 0)
    if not run_time and job.get("end_time_sec"):
        run_time = float(job["end_time_sec"] - job.get("start_time_sec", job["end_time_sec"]))
    tables.run_time_s = run_time
    meta = job.get("metadata", {}) or {}
    tables.hints = str(meta.get("h", ""))
    tables.source_detail = f"Darshan {meta.get('lib_ver', '?')} log (format {job.get('log_ver', '?')})"
    present = list(report.modules)
    for module in COUNTER_MODULES:
        if module not in present:
            continue
        try:
            report.mod_read_all_records(module, dtype="pandas")
            recs = report.records[module]
            if recs:
                tables.frames[module] = _frame(recs[0])
        except Exception as exc:  # noqa: BLE001 - one unreadable module must not lose the rest
            tables.notes.append(f"module {module} could not be read ({type(exc).__name__}: {str(exc)[:80]})")
    if "LUSTRE" in present:
        try:
            report.mod_read_all_lustre_records(dtype="pandas")
            recs = report.records["LUSTRE"]
            if recs:
                tables.lustre = recs[0]["components"]
        except Exception as exc:  # noqa: BLE001
            tables.notes.append(f"module LUSTRE could not be read ({type(exc).__name__}: {str(exc)[:80]})")
    partial = [m for m in present if report.modules[m].get("partial_flag")]
    if partial:
        tables.notes.append(f"darshan-runtime ran out of memory for records in {', '.join(partial)}: counts are partial")
    return tables


def from_darshan(path: str | Path) -> IOCharacterisation:
    """The characterisation of one Darshan log."""
    return characterise(read_tables(path))
