"""The guided start's knowledge: I/O tuning rules as data, and how they find and move a space's parameters.

A ``Rule`` names the words that find its parameters (in the name first, then the help text), the way to
move them, how sure it is without a trace and the trace category (``runners/iotrace/suggest.py``) that
raises it. ``preferred`` gives the value a rule moves a parameter to; ``context`` reads what the rules may
condition on from the baseline's ``iotrace.*`` metrics. Used by ``guided_start``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tunesmith.runners.space import Param, SearchSpace, Value

Config = dict[str, Value]
GUIDE = 0.55  # rules at least this sure change their knob in the guided config without a trace
LARGE = 1 << 20  # a write of this many bytes or more is a large one
FLAGGED = 0.15  # a trace suggestion scored at least this raises its rules into the guided config
UNITS = {"b": 1, "bytes": 1, "kib": 1024, "kb": 1024, "k": 1024, "mib": 1 << 20, "mb": 1 << 20, "m": 1 << 20,
         "gib": 1 << 30, "gb": 1 << 30, "g": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b|bytes)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """One piece of I/O tuning knowledge: which parameters it is about and which way to move them.

    ``prefer``: "largest" / "smallest" value, "words" (the first value that starts with one of
    ``values``), or "match" (the largest value not above the transfer knob's, in the same unit, i.e. a
    chunk that matches the writes). ``when``: "" always, "one_node" (tunesmith runs a trial on one
    machine), "not_parallel_fs" (no stripe/Lustre parameter or trace). ``bool_prefers``: the value a
    yes/no knob takes (None: the rule leaves yes/no knobs alone).
    """

    key: str
    category: str
    words: tuple[str, ...]
    prefer: str
    confidence: float
    why: str
    values: tuple[str, ...] = ()
    when: str = ""
    bool_prefers: bool | None = None


OFF = ("disable", "off", "false", "no", "never_")
RULES: tuple[Rule, ...] = (
    Rule("fewer-syncs", "fsync_policy", ("fsync", "fdatasync", "sync", "durable", "durability"), "words", 0.9,
         "sync once at the end instead of after each write (still durable)",
         values=("end", "once", "close", "per_file", "file", "batch", "group", "dir", "periodic")),
    Rule("larger-transfers", "transfer_size", ("transfer", "xfer", "per_write", "per write", "write call",
         "write_size", "buffer", "bufsize", "batch", "request size", "record size", "block size"),
         "largest", 0.85, "larger transfers: fewer calls, up to what the workload writes per process"),
    Rule("chunk-matches-writes", "hdf5_layout", ("chunk shape", "chunk_rows", "chunk_shape", "chunking",
         "chunk dims"), "match", 0.7, "chunks the size of the writes: each write fills whole chunks"),
    Rule("file-per-process", "collective_buffering", ("file per process", "file-per-process", "fpp",
         "per_process", "shared file", "shard", "per thread", "per rank"), "words", 0.7,
         "a file per process: no shared-file locking on a file system that is not a parallel one",
         values=("fpp", "file_per_process", "per_process", "per_rank", "shard", "many", "multi"),
         when="not_parallel_fs"),
    Rule("no-collective-buffering", "collective_buffering", ("romio_cb", "cb_write", "collective buffering",
         "two-phase", "two_phase", "collective"), "words", 0.6,
         "collective buffering off on one node: the two-phase shuffle buys nothing there",
         values=OFF, when="one_node", bool_prefers=False),
    Rule("no-write-sieving", "collective_buffering", ("ds_write", "sieving for independent writes",
         "data sieving for writes"), "words", 0.45,
         "write data sieving off: for non-contiguous writes it reads, locks and rewrites whole extents "
         "(contiguous writes never use it, so only a trace of shared, independent writes raises it)", values=OFF),
    Rule("more-writers", "imbalance", ("thread", "writer", "worker", "concurrency", "jobs"),
         "largest", 0.6, "more concurrent writers keep the device or the network busy"),
    Rule("direct-for-large-writes", "transfer_size", ("direct", "odirect", "o_direct", "direct i/o"), "large", 0.6,
         "direct I/O for writes of 1 MiB or more: no copy into the page cache and no write-back of it "
         "(as checkpoint writers do); small writes are left buffered", bool_prefers=True),
    Rule("align-to-blocks", "hdf5_layout", ("alignment", "align"), "largest", 0.4,
         "align objects to the file system's block or stripe size"),
    Rule("stripe-wider", "striping", ("stripe_count", "stripe count", "stripe-count"), "largest", 0.4,
         "stripe a shared file over more servers"),
    Rule("spread-directories", "metadata", ("fanout", "fan-out", "files_per_dir", "subfolder", "subdir"),
         "largest", 0.35, "spread many files over more directories"),
    Rule("fewer-stats", "metadata", ("stat calls", "stat"), "smallest", 0.35, "fewer stat calls"),
    Rule("read-ahead", "read_ahead", ("read_ahead", "readahead", "read-ahead", "prefetch"), "largest", 0.35,
         "more read-ahead for sequential reads", bool_prefers=True),
    Rule("larger-caches", "hdf5_layout", ("cache", "meta_block", "metadata block"), "largest", 0.3,
         "larger caches and metadata blocks: fewer small metadata writes"),
)


def _said(words: Sequence[str], param: Param, where: str = "both") -> bool:
    """Whether one of ``words`` is in the parameter's name, or starts a word of its help text."""
    name = _tokens(param.name)
    text = f"{param.help} {param.source.quote}".lower()
    in_name = where != "help" and any(_in_tokens(_tokens(w), name) for w in words)
    return in_name or (where != "name" and any(re.search(rf"(?<![a-z]){re.escape(w)}(?:s|es)?(?![a-z])", text)
                                               for w in words))


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _in_tokens(word: list[str], name: list[str]) -> bool:
    """Whether the word's tokens are a run of the name's tokens (the last one may take a plural ending)."""
    n = len(word)
    for i in range(len(name) - n + 1):
        run = name[i : i + n]
        if run[:-1] == word[:-1] and run[-1] in (word[-1], word[-1] + "s", word[-1] + "es"):
            return True
    return False


def rule_for(param: Param) -> Rule | None:
    """The first rule whose words are in ``param``'s name, else the first whose words its help text
    uses (a help text that mentions fsync in passing does not outvote a name like ``batch``), if any."""
    return (next((r for r in RULES if _said(r.words, param, "name")), None)
            or next((r for r in RULES if _said(r.words, param, "help")), None))


def unit_of(param: Param) -> int | None:
    """Bytes per unit of a size parameter from its name's suffix (``_kib``, ``_mb``, ``_bytes``), if any."""
    tail = param.name.lower().rsplit("_", 1)[-1]
    return UNITS.get(tail) if "_" in param.name else None


def magnitude(param: Param, value: Value) -> float | None:
    """A number to order ``value`` by: the number itself, or a size string ("75M", "4KiB") in bytes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _SIZE.match(str(value))
    if not m:
        return None
    suffix = (m.group(2) or "b").lower()
    return float(m.group(1)) * UNITS.get(suffix, UNITS.get(suffix.rstrip("b") or "b", 1))


def scale(param: Param) -> list[Value] | None:
    """The parameter's values in increasing order when they all have a magnitude, else None."""
    grid = param.grid(5)
    if param.kind == "bool" or any(magnitude(param, v) is None for v in grid):
        return None
    return sorted(grid, key=lambda v: magnitude(param, v) or 0.0)


@dataclass
class Context:
    """What the rules may condition on: the trace's flagged categories and sizes, and the space."""

    flagged: dict[str, float]
    bytes_per_process: float | None = None
    parallel_fs: bool = False


def context(space: SearchSpace, metrics: dict[str, float] | None) -> Context:
    """The rules' context from the baseline's ``iotrace.*`` metrics (None: untraced) and the space."""
    metrics = metrics or {}
    flagged = {k.split(".", 2)[2]: v for k, v in metrics.items() if k.startswith("iotrace.suggest.")}
    written, procs = metrics.get("iotrace.bytes_written"), metrics.get("iotrace.nprocs") or 1.0
    parallel = any(_said(("stripe", "lustre", "lfs ", "gpfs", "ost"), p) for p in space.params)
    per_proc = written / procs if written else None
    return Context(flagged=flagged, bytes_per_process=per_proc, parallel_fs=parallel or "striping" in flagged)


def applies(rule: Rule, ctx: Context) -> bool:
    """Whether ``rule`` changes its knob in the guided config: sure enough alone, or raised by the trace."""
    if rule.when == "not_parallel_fs" and ctx.parallel_fs:
        return False
    return rule.confidence >= GUIDE or ctx.flagged.get(rule.category, 0.0) >= FLAGGED


def preferred(param: Param, rule: Rule, ctx: Context, chosen: Config, space: SearchSpace) -> Value | None:
    """The value ``rule`` moves ``param`` to (None: it has nothing to say about this parameter)."""
    grid = param.grid(5)
    if rule.prefer == "large":  # only where the chosen transfer size is known to be large
        return rule.bool_prefers if param.kind == "bool" and _transfer_bytes(chosen, space) >= LARGE else None
    if param.kind == "bool":
        return rule.bool_prefers
    ordered = scale(param)
    if rule.prefer == "words":
        for word in rule.values:
            for v in grid:
                if str(v).lower().startswith(word):
                    return v
        return max(ordered, key=lambda v: magnitude(param, v) or 0.0) if ordered and rule.key == "fewer-syncs" else None
    if ordered is None:
        return None
    if rule.prefer == "smallest":
        return ordered[0]
    if rule.prefer == "match":
        return _matching(param, ordered, chosen, space)
    unit = unit_of(param)
    if rule.key == "larger-transfers" and ctx.bytes_per_process and unit:
        fits = [v for v in ordered if (magnitude(param, v) or 0) * unit <= ctx.bytes_per_process]
        return fits[-1] if fits else ordered[0]
    return ordered[-1]


def _transfer_bytes(chosen: Config, space: SearchSpace) -> float:
    """The largest chosen transfer size in bytes among the transfer knobs whose unit is known (0: none)."""
    sizes = [0.0]
    for other in space.params:
        rule, unit = rule_for(other), unit_of(other)
        if rule is not None and rule.key == "larger-transfers" and unit and other.name in chosen:
            sizes.append((magnitude(other, chosen[other.name]) or 0.0) * unit)
    return max(sizes)


GENERIC = {"per", "size", "write", "writes", "chunk", "io", "call", "max", "min", "num", "n"}


def _matching(param: Param, ordered: list[Value], chosen: Config, space: SearchSpace) -> Value | None:
    """The largest non-zero value not above the chosen transfer size in the same unit: bytes where both
    names carry a size unit (``_kib``), else a unit word both names share (``chunk_rows``, ``rows_per_write``)."""
    mine, unit = set(_tokens(param.name)) - GENERIC, unit_of(param)
    for other in space.params:
        rule = rule_for(other)
        if rule is None or rule.key != "larger-transfers" or other.name not in chosen:
            continue
        theirs, other_unit = set(_tokens(other.name)) - GENERIC, unit_of(other)
        if unit and other_unit:
            limit = (magnitude(other, chosen[other.name]) or 0.0) * other_unit / unit
        elif mine & theirs:
            limit = magnitude(other, chosen[other.name]) or 0.0
        else:
            continue
        fits = [v for v in ordered if 0 < (magnitude(param, v) or 0.0) <= limit]
        return fits[-1] if fits else None
    nonzero = [v for v in ordered if (magnitude(param, v) or 0.0) > 0]
    return nonzero[-1] if nonzero else None


def small_budget(space: SearchSpace, budget: int | None) -> bool:
    """Whether ``budget`` trials are too few for one-knob screening: at most two per free parameter
    (and fewer than the space's configs)."""
    if not budget:
        return False
    free = [p for p in space.params if len(p.grid(5)) > 1]
    return bool(free) and budget <= 2 * len(free) and budget < space.size(5)
