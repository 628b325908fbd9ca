"""`tune io analyze TRACE` and `tune io trace -- CMD ...`: characterise a workload's I/O and say what to tune.

``analyze`` reads a Darshan log, a strace output (a file, a ``prefix.PID`` family or their folder) or a
capture folder and prints the characterisation as tables with the ranked suggestions (``--json``: the
``IOCharacterisation`` as JSON). ``trace`` runs a command under darshan-runtime where ``libdarshan.so`` is
found, else under strace, and analyses what it did; the command's own output goes to stderr. A file that
is neither kind is one line and exit 2; no tracer at all is exit 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from tunesmith.runners.iotrace.model import IOCharacterisation

def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def render(c: IOCharacterisation, console: Console) -> None:
    """The characterisation as rich tables: overview, modules, sizes, access and metadata, suggestions."""
    from rich.table import Table

    t = Table(title=f"I/O characterisation (source: {c.source})", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value")
    md = c.metadata
    rows = [
        ("source", c.source_detail or c.source), ("trace", c.path), ("program", c.exe or "-"),
        ("processes / ranks", str(c.nprocs)), ("run time", f"{c.run_time_s:.3g} s"),
        ("moved", f"{_size(c.bytes_written)} written, {_size(c.bytes_read)} read (read share {_share(c.read_share)})"),
        ("time in I/O calls", f"{c.io_time_s:.4g} s (cumulative over processes)"),
        ("files", f"{c.layout.files} ({c.layout.kind}: {c.layout.shared_files} shared, {c.layout.unique_files} per process)"),
        ("access", f"{c.access.reads} reads, {c.access.writes} writes; small (<100 KiB) {_share(c.small_share)}; "
                   f"sequential {_share(c.access.sequential_share)}; {c.access.seeks} seeks"),
        ("metadata", f"{md.opens} opens, {md.stats} stats, {md.seeks} seeks, {md.fsyncs} fsyncs, {md.creates} creates, "
                     f"{md.unlinks} unlinks; {md.meta_time_s:.3g} s; {md.ops_per_mib:.3g} ops/MiB; "
                     f"{md.fsyncs_per_write:.3g} fsyncs per write"
                     + (f"; {md.sync_time_s:.3g} s in syncs" if md.sync_time_s is not None else "")),
    ]
    if c.mpiio is not None:
        m = c.mpiio
        rows.append(("MPI-IO", f"collective {m.collective_reads}r/{m.collective_writes}w, independent "
                     f"{m.independent_reads}r/{m.independent_writes}w, non-blocking {m.nonblocking}, split {m.split}; "
                     f"collective share {_share(m.collective_share)}" + (f"; hints {m.hints}" if m.hints else "")))
    if c.hdf5 is not None:
        h = c.hdf5
        mean = h.mean_access_bytes
        rows.append(("HDF5", f"{h.files} files, {h.datasets} datasets, {h.dataset_writes} writes, {h.dataset_reads} reads"
                     f" (mean {_size(mean) if mean else '-'}), {h.chunked_datasets} chunked {h.chunk_shapes[:3]}, "
                     f"{h.collective_datasets} collective"))
    if c.lustre is not None:
        s = c.lustre
        rows.append(("Lustre stripes", f"{s.files} files, stripe size {[_size(x) for x in s.stripe_sizes]}, "
                     f"count {s.stripe_counts}, over {s.osts} OSTs" + (f", pools {s.pools}" if s.pools else "")))
    if c.imbalance is not None:
        i = c.imbalance
        rows.append(("rank imbalance", f"slowest {i.slowest_s:.3g} s (rank {i.slowest_rank}) vs mean {i.mean_s:.3g} s: "
                     f"{i.ratio:.2f}x over {i.ranks} ranks"))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    if c.modules:
        mt = Table(title="per module (cumulative seconds)", title_justify="left")
        for col in ("module", "files", "written", "read", "writes", "reads", "write s", "read s", "meta s"):
            mt.add_column(col, justify="right" if col != "module" else "left")
        for m in c.modules:
            mt.add_row(m.module, str(m.files), _size(m.bytes_written), _size(m.bytes_read), str(m.writes), str(m.reads),
                       f"{m.write_time_s:.3g}", f"{m.read_time_s:.3g}", f"{m.meta_time_s:.3g}")
        console.print(mt)
    hists = [h for h in c.histograms if h.total]
    if hists:
        from tunesmith.runners.iotrace.model import SIZE_BINS

        ht = Table(title="access sizes (count per bin, bytes)", title_justify="left")
        ht.add_column("module op")
        for b in SIZE_BINS:
            ht.add_column(b.replace("_", "-"), justify="right")
        for h in hists:
            ht.add_row(f"{h.module} {h.op}", *(str(h.bins.get(b, 0)) for b in SIZE_BINS))
        console.print(ht)
    st = Table(title="suggestions, most promising first", title_justify="left")
    for col in ("#", "tune", "score", "what", "why"):
        st.add_column(col, no_wrap=col in ("#", "tune", "score"))
    for s in c.suggestions:
        st.add_row(str(s.rank), s.category, f"{s.score:.2f}", s.title, s.reason)
    if c.suggestions:
        console.print(st)
    else:
        console.print("suggestions: none (no symptom above its threshold)")
    for note in c.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add `tune io analyze` and `tune io trace` to the command line."""
    from tunesmith.agents.frontends.cli import command_group

    group = command_group("io", "I/O traces: characterise a workload's I/O and suggest what to tune.")

    @group.command("analyze")
    def analyze(
        trace: Annotated[Path, typer.Argument(help="a Darshan log, a strace output (file, prefix or folder)")],
        as_json: Annotated[bool, typer.Option("--json", help="print the characterisation as JSON")] = False,
    ) -> None:
        """Characterise the I/O in TRACE and rank what to tune."""
        from tunesmith.agents.frontends.cli import _fail, out
        from tunesmith.runners.errors import TunesmithError
        from tunesmith.runners.iotrace import load_trace

        try:
            char = load_trace(trace)
        except TunesmithError as exc:
            raise _fail(exc) from None
        _show(char, as_json, out)

    @group.command("trace", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def trace_cmd(
        ctx: typer.Context,
        out_dir: Annotated[Path | None, typer.Option("--out", help="where the trace is kept (default: a new temp folder)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the characterisation as JSON")] = False,
    ) -> None:
        """Run a command (after --) under darshan-runtime or strace and characterise its I/O."""
        from tunesmith.agents.frontends.cli import _fail, err, out
        from tunesmith.runners.errors import TunesmithError
        from tunesmith.runners.iotrace.capture import run_traced

        try:
            char, code, where = run_traced(list(ctx.args), out_dir)
        except TunesmithError as exc:
            raise _fail(exc) from None
        if code:
            err.print(f"warning: the command exited with {code}; its I/O up to then is shown", markup=False)
        err.print(f"trace kept in {where}", markup=False, highlight=False)
        _show(char, as_json, out)


def _show(char: IOCharacterisation, as_json: bool, console: Console) -> None:
    from tunesmith.runners.secrets import redact

    if as_json:
        console.print(redact(char.model_dump_json(indent=1)), markup=False, highlight=False, soft_wrap=True)
    else:
        render(char, console)
