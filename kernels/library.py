"""The kernel library: verified generated kernels, keyed by what the problem computes and where it ran.

Each entry holds the problem's signature (op graph, shapes, dtypes, from the template planner or a hash
of the reference for problems no template covers), the hardware fingerprint it was verified on, the full
``model_new.py`` source and its evidence: the evaluator's status, strict and loose correctness, the largest
error, and speedups over eager and ``torch.compile`` where they were measured (never under the Triton
interpreter: there ``timing`` is None and the evidence says so). A known problem on known hardware is
answered from here without a new search.

One SQLite file, ``kernels.db`` in the state folder (beside the study store). ``iter_kernels()`` hands every
entry to whoever indexes them for retrieval (the knowledge store); ``KernelRecord.document()`` is the text
to embed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tunesmith.runners.errors import InfrastructureError, TunesmithError
from tunesmith.runners.fingerprint import environment_fingerprint, fingerprint_id
from tunesmith.runners.secrets import redact, redact_obj
from tunesmith.runners.types import utcnow

LIBRARY_FILE = "kernels.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS kernels (
  id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, problem TEXT NOT NULL, pattern TEXT NOT NULL,
  signature TEXT NOT NULL, signature_key TEXT NOT NULL, hardware TEXT NOT NULL, hardware_id TEXT NOT NULL,
  source TEXT NOT NULL, origin TEXT NOT NULL, config TEXT NOT NULL, evidence TEXT NOT NULL,
  strict_ok INTEGER NOT NULL, loose_ok INTEGER NOT NULL, speedup_eager REAL, speedup_compile REAL
);
CREATE INDEX IF NOT EXISTS kernels_lookup ON kernels (signature_key, hardware_id);
"""
_COLUMNS = ("id", "created_at", "problem", "pattern", "signature", "signature_key", "hardware", "hardware_id",
            "source", "origin", "config", "evidence", "strict_ok", "loose_ok", "speedup_eager", "speedup_compile")


def signature_key(signature: dict[str, Any]) -> str:
    """A stable hash of a problem signature (key order does not matter)."""
    blob = json.dumps(signature, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def hardware_fingerprint(*, interpreted: bool) -> tuple[dict[str, Any], str]:
    """This machine's fingerprint (``runners/fingerprint.py``) plus how kernels ran on it, and its id.

    ``interpreted`` marks kernels checked under the Triton interpreter, so they never answer a GPU run.
    """
    fp = {**environment_fingerprint(), "triton_interpret": bool(interpreted)}
    return fp, fingerprint_id(fp)


def default_library_path() -> Path:
    """``$TUNESMITH_HOME/kernels.db`` (``.tunesmith/kernels.db`` when unset), as the CLI's state folder."""
    return Path(os.environ.get("TUNESMITH_HOME", ".tunesmith")) / LIBRARY_FILE


class KernelRecord(BaseModel):
    """One verified kernel and its evidence."""

    id: int
    created_at: str
    problem: str
    pattern: str
    signature: dict[str, Any]
    signature_key: str
    hardware: dict[str, Any]
    hardware_id: str
    source: str
    origin: Literal["template", "llm"]
    config: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    strict_ok: bool
    loose_ok: bool
    speedup_eager: float | None = None
    speedup_compile: float | None = None

    @property
    def timed(self) -> bool:
        return self.speedup_eager is not None or self.speedup_compile is not None

    def speed_text(self) -> str:
        """The measured speedups, or a plain statement that none were measured."""
        if not self.timed:
            return self.evidence.get("timing_note") or "timing unavailable (not measured)"
        parts = []
        if self.speedup_eager is not None:
            parts.append(f"{self.speedup_eager:.2f}x vs eager")
        if self.speedup_compile is not None:
            parts.append(f"{self.speedup_compile:.2f}x vs torch.compile")
        return ", ".join(parts)

    def document(self) -> str:
        """The text a retrieval index embeds: what the kernel computes, where, how well, and its source."""
        ops = " ".join(str(op) for op in self.signature.get("ops", []))
        shapes = self.signature.get("shapes", "")
        gpu = self.hardware.get("gpu") or "no GPU (Triton interpreter)"
        return (f"kernel #{self.id} for {self.problem}: {self.pattern}\nops: {ops}\nshapes: {shapes} dtypes: "
                f"{self.signature.get('dtypes', '')}\nhardware: {gpu}\ncorrect: strict={self.strict_ok} "
                f"loose={self.loose_ok}; {self.speed_text()}\n\n{self.source}")


class KernelLibrary:
    """The kernel library in one SQLite file (created on first write; read-only use never creates it)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                if self.read_only:
                    self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                else:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._db = sqlite3.connect(self.path)
                    self._db.executescript(SCHEMA)
                self._db.execute("SELECT count(*) FROM kernels").fetchone()
            except sqlite3.Error as exc:
                self._db = None
                raise InfrastructureError(f"kernel library {self.path} cannot be used ({exc})",
                                          "move the damaged file aside or pass another --state-dir") from None
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> KernelLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exists(self) -> bool:
        return self.path.is_file()

    # -- writing ----------------------------------------------------------------------------------
    def add(self, *, problem: str, pattern: str, signature: dict[str, Any], hardware: dict[str, Any],
            source: str, origin: Literal["template", "llm"], evidence: dict[str, Any],
            config: dict[str, Any] | None = None) -> KernelRecord:
        """Store a kernel the evaluator found correct; refused (``TunesmithError``) if the evidence says otherwise."""
        if evidence.get("status") != "ok" or not (evidence.get("strict_ok") or evidence.get("loose_ok")):
            raise TunesmithError(f"refusing to store an unverified kernel for {problem} "
                                 f"(status {evidence.get('status')!r})", "store only kernels the evaluator passed")
        timing = evidence.get("timing") or {}
        row = {
            "created_at": utcnow(), "problem": problem, "pattern": redact(pattern),
            "signature": json.dumps(signature, sort_keys=True, default=str), "signature_key": signature_key(signature),
            "hardware": json.dumps(hardware, sort_keys=True, default=str), "hardware_id": fingerprint_id(hardware),
            "source": redact(source), "origin": origin, "config": json.dumps(config or {}, sort_keys=True),
            "evidence": json.dumps(redact_obj(evidence), sort_keys=True, default=str),
            "strict_ok": int(bool(evidence.get("strict_ok"))), "loose_ok": int(bool(evidence.get("loose_ok"))),
            "speedup_eager": _number(timing.get("speedup_eager")),
            "speedup_compile": _number(timing.get("speedup_compile")),
        }
        db = self._conn()
        with db:
            cur = db.execute(f"INSERT INTO kernels ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
        return self.get(int(cur.lastrowid))  # type: ignore[arg-type]

    # -- reading ----------------------------------------------------------------------------------
    def get(self, kernel_id: int) -> KernelRecord:
        """One entry by id; a missing id is a one-line ``TunesmithError``."""
        row = self._conn().execute(f"SELECT {', '.join(_COLUMNS)} FROM kernels WHERE id = ?", (kernel_id,)).fetchone()
        if row is None:
            raise TunesmithError(f"no kernel #{kernel_id} in the library {self.path}", "see `tune kernel list`")
        return _record(row)

    def lookup(self, signature: dict[str, Any], hardware_id: str) -> KernelRecord | None:
        """The best stored kernel for this problem signature on this hardware, or None.

        Best: correct at strict tolerance first, then the largest speedup over ``torch.compile``, then the newest.
        """
        row = self._conn().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM kernels WHERE signature_key = ? AND hardware_id = ? "
            "ORDER BY strict_ok DESC, speedup_compile IS NULL, speedup_compile DESC, id DESC LIMIT 1",
            (signature_key(signature), hardware_id)).fetchone()
        return _record(row) if row else None

    def records(self) -> list[KernelRecord]:
        """Every entry, oldest first."""
        rows = self._conn().execute(f"SELECT {', '.join(_COLUMNS)} FROM kernels ORDER BY id").fetchall()
        return [_record(r) for r in rows]

    def similar(self, ops: list[str], *, limit: int = 3) -> list[KernelRecord]:
        """Entries sharing the most op names with ``ops`` (for the LLM planner's retrieved examples)."""
        wanted = set(ops)
        scored = [(len(wanted & set(map(str, r.signature.get("ops", [])))), r.id, r) for r in self.records()]
        return [r for score, _, r in sorted(scored, key=lambda s: (-s[0], -s[1])) if score > 0][:limit]


def iter_kernels(path: str | Path | None = None) -> Iterator[KernelRecord]:
    """Every stored kernel (none when the library file does not exist yet), for retrieval indexing."""
    lib = KernelLibrary(path or default_library_path(), read_only=True)
    if not lib.exists():
        return
    with lib:
        yield from lib.records()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _record(row: tuple[Any, ...]) -> KernelRecord:
    data = dict(zip(_COLUMNS, row, strict=True))
    for key in ("signature", "hardware", "config", "evidence"):
        data[key] = json.loads(data[key])
    return KernelRecord.model_validate(data)
