"""Append sensor records to a journal file durably and time it: the workload of tunesmith's main job.

An event log, a write-ahead journal, a sensor logger: the program receives records one by one and must
not lose them. What most people write first is the default of this script, and it is a sensible first
version: open the file with Python's default 8 KiB buffer, ``json.dumps`` each record, write it, then
``flush()`` and ``os.fsync()`` so the record is on disk before the next one is accepted. It is correct,
and it pays one disk flush per record.

Knobs (command-line flags): ``--buffer-kib`` (the file object's buffer), ``--encode`` (``json`` lines or
``csv`` lines), ``--batch`` (records joined into one ``write`` call), ``--preallocate`` (reserve the file's
space up front with ``posix_fallocate`` so a flush need not grow the file; the file is trimmed to its real
size at the end) and ``--sync-every`` (group commit: flush to disk after every N records, as databases do;
1 keeps every record durable the moment it is written, N lets up to N - 1 records of the most recent
group be lost by a power cut). Every configuration ends durable: the file and its directory are
fsync'd before the clock stops.

``seconds`` runs from opening the file until everything is durable. After it, untimed, the file is read
back and every record decoded and compared with what was meant to be written; a mismatch reports
``correct: false``. The result JSON goes to ``$TUNESMITH_RESULT`` (stdout when unset).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

Record = tuple[int, int, str, float, str]
STATUSES = ("ok", "ok", "ok", "warn", "error")
FILE = "journal.log"


def make_records(count: int, seed: int = 7) -> list[Record]:
    """``count`` deterministic sensor readings: (sequence, timestamp in microseconds, sensor, value, status)."""
    rng = random.Random(seed)
    ts = 1_700_000_000_000_000
    out = []
    for seq in range(count):
        ts += rng.randint(50, 5000)
        out.append((seq, ts, f"sensor-{rng.randint(0, 255):03d}", rng.uniform(-40.0, 125.0), rng.choice(STATUSES)))
    return out


def encode_json(r: Record) -> bytes:
    return (json.dumps({"seq": r[0], "ts": r[1], "sensor": r[2], "value": r[3], "status": r[4]}) + "\n").encode()


def encode_csv(r: Record) -> bytes:
    return f"{r[0]},{r[1]},{r[2]},{r[3]!r},{r[4]}\n".encode()


def decode(line: str, encoding: str) -> Record:
    if encoding == "json":
        d = json.loads(line)
        return (d["seq"], d["ts"], d["sensor"], d["value"], d["status"])
    seq, ts, sensor, value, status = line.split(",")
    return (int(seq), int(ts), sensor, float(value), status)


def write(args: argparse.Namespace, records: list[Record], path: Path) -> int:
    """Write every record durably under the chosen policy; the number of fsync calls."""
    encode = encode_json if args.encode == "json" else encode_csv
    group = max(1, min(args.batch, args.sync_every))  # a write never spans a sync point
    syncs = unsynced = 0
    with open(path, "wb", buffering=args.buffer_kib * 1024) as f:
        if args.preallocate:
            os.posix_fallocate(f.fileno(), 0, len(records) * 160)  # generous: records are < 160 bytes
        for start in range(0, len(records), group):
            chunk = records[start : start + group]
            f.write(b"".join(encode(r) for r in chunk) if len(chunk) > 1 else encode(chunk[0]))
            unsynced += len(chunk)
            if unsynced >= args.sync_every:
                f.flush()
                os.fsync(f.fileno())
                syncs, unsynced = syncs + 1, 0
        f.flush()
        if args.preallocate:
            f.truncate()  # drop the reserved tail: the file holds exactly the records
        os.fsync(f.fileno())
        syncs += 1
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the file's directory entry is durable too
    finally:
        os.close(dir_fd)
    return syncs


def verify(path: Path, records: list[Record], encoding: str) -> str:
    """An empty string when the file holds exactly ``records`` in order, else what is wrong."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] != "":
        return "the file does not end with a newline"
    lines.pop()
    if len(lines) != len(records):
        return f"{len(lines)} records on disk, {len(records)} written"
    for i, (line, want) in enumerate(zip(lines, records, strict=True)):
        try:
            got = decode(line, encoding)
        except (ValueError, KeyError) as exc:
            return f"record {i} does not decode ({type(exc).__name__})"
        if got != want:
            return f"record {i} differs from what was written"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the journal into")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--buffer-kib", type=int, default=8)
    parser.add_argument("--encode", choices=("json", "csv"), default="json")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--preallocate", action="store_true")
    parser.add_argument("--sync-every", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.records, args.buffer_kib, args.batch, args.sync_every) < 1:
        parser.error("--records, --buffer-kib, --batch and --sync-every must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE
    path.unlink(missing_ok=True)
    records = make_records(args.records)
    started = time.perf_counter()
    syncs = write(args, records, path)
    seconds = time.perf_counter() - started
    problem = verify(path, records, args.encode)
    result = {
        "seconds": seconds,
        "records_per_s": len(records) / seconds,
        "fsyncs": syncs,
        "bytes": path.stat().st_size,
        "correct": not problem,
    }
    if problem:
        result["verify_error"] = problem
    text = json.dumps(result)
    target = os.environ.get("TUNESMITH_RESULT")
    if target:
        Path(target).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
