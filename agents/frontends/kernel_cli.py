"""`tune kernel`: generate a verified Triton kernel from a PyTorch reference, and read the kernel library.

    tune kernel PROBLEM.py [--out DIR] [--budget N] [--llm auto|off|endpoint|local] [--small] [--rounds N] [--fresh]
    tune kernel list
    tune kernel show ID

``tune kernel PROBLEM.py`` is short for ``tune kernel generate PROBLEM.py`` (the group falls back to it when
its first argument is not a sub-command). Exit codes: 0 done; 2 bad usage, a problem file that cannot be
read, or a pattern no template covers without an LLM; 3 no kernel the evaluator found correct; 4
infrastructure (the library or the study store, the LLM endpoint); 6 the LLM token budget is spent.
"""


import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tunesmith.runners.errors import TunesmithError


class KernelGroup(TyperGroup):
    """A group whose first argument, when it is not one of its sub-commands, is a problem file for ``generate``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["generate", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add the ``tune kernel`` group to the ``tune`` application."""
    from tunesmith.agents.frontends.cli import DEFAULT_STATE, StateDir

    group = typer.Typer(cls=KernelGroup, add_completion=False, no_args_is_help=True,
                        help="Generate verified Triton kernels from PyTorch references (tune kernel PROBLEM.py); "
                             "list and show the kernel library.")
    app.add_typer(group, name="kernel")

    @group.command("generate")
    def generate(
        problem: Annotated[Path, typer.Argument(help="a KernelBench-format file: class Model, get_inputs, "
                                                     "get_init_inputs (optionally get_small_inputs)")],
        out: Annotated[Path | None, typer.Option("--out", help="write DIR/model_new.py (torch, triton, stdlib only)")]
        = None,
        budget: Annotated[int | None, typer.Option(help="configs to try (default: 8 on a GPU, 1 without one)")] = None,
        llm: Annotated[str, typer.Option(help="auto (a configured endpoint, only where no template covers the "
                                             "pattern) | off | endpoint | local (SmolLM2 via llama.cpp): with "
                                             "endpoint or local the LLM also tries to beat a template")] = "auto",
        small: Annotated[bool | None, typer.Option("--small/--full", help="the problem's small shapes "
                                                   "(default: small without a GPU; derived from the shape constants when not declared)")]
        = None,
        rounds: Annotated[int, typer.Option(help="LLM coder rounds at most")] = 4,
        fresh: Annotated[bool, typer.Option(help="generate again even if the library knows this problem")] = False,
        state_dir: StateDir = DEFAULT_STATE,
    ) -> None:
        """Generate, verify and store a Triton kernel for PROBLEM (also: tune kernel PROBLEM.py)."""
        from tunesmith.agents.frontends.cli import _fail, _internal, _say, check_llm_mode

        check_llm_mode(llm)
        if budget is not None and budget < 1:
            raise _fail(TunesmithError(f"--budget {budget}: at least one config must be tried", "pass --budget 1 or more"))
        if rounds < 1:
            raise _fail(TunesmithError(f"--rounds {rounds}: at least one round", "pass --rounds 1 or more"))
        try:
            from tunesmith.agents.kernel.pipeline import generate_kernel

            generate_kernel(problem, state_dir=state_dir, out=out, budget=budget, llm_mode=llm, small=small,
                            rounds=rounds, fresh=fresh, say=_say)
        except TunesmithError as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
            raise _internal(exc, state_dir) from None

    @group.command("list")
    def list_kernels(state_dir: StateDir = DEFAULT_STATE) -> None:
        """List the kernels in the library: problem, pattern, hardware, correctness, speedups."""
        from rich.table import Table

        from tunesmith.agents.frontends.cli import _reading, out

        with _reading(state_dir):
            records = _records(state_dir)
            table = Table("id", "problem", "pattern", "origin", "hardware", "correct", "speed", "stored")
            for r in records:
                speed = r.speed_text() if r.timed else "untimed"
                table.add_row(str(r.id), r.problem, r.pattern[:40], r.origin, _hardware(r.hardware, short=True),
                              "strict" if r.strict_ok else "loose", speed, r.created_at[:10])
            out.print(table)
            out.file.flush()

    @group.command("show")
    def show(kernel_id: Annotated[int, typer.Argument(metavar="ID", help="a kernel's id (see `tune kernel list`)")],
             state_dir: StateDir = DEFAULT_STATE) -> None:
        """Show one kernel: its signature, hardware, evidence and source."""
        from tunesmith.agents.frontends.cli import _reading, _say
        from tunesmith.kernels.library import LIBRARY_FILE, KernelLibrary

        with _reading(state_dir):
            _records(state_dir, check_only=True)
            with KernelLibrary(state_dir / LIBRARY_FILE, read_only=True) as lib:
                r = lib.get(kernel_id)
            ev = r.evidence
            for line in (f"kernel #{r.id}: {r.problem} — {r.pattern} ({r.origin})",
                         f"signature: {json.dumps(r.signature, sort_keys=True)}",
                         f"hardware: {_hardware(r.hardware)}",
                         f"correct: {'strict' if r.strict_ok else 'loose'} tolerance, max abs err "
                         f"{ev.get('max_abs_err')}",
                         f"speed: {r.speed_text()}", f"config: {json.dumps(r.config)}",
                         f"study: {ev.get('study')} trial #{ev.get('trial')}, stored {r.created_at[:19]}",
                         "", r.source.rstrip()):
                _say(line)


def _records(state_dir: Path, *, check_only: bool = False) -> list[Any]:
    from tunesmith.kernels.library import LIBRARY_FILE, KernelLibrary

    path = state_dir / LIBRARY_FILE
    if not path.is_file():
        raise TunesmithError(f"no kernel library in {state_dir}", "run `tune kernel PROBLEM.py` first or pass --state-dir")
    if check_only:
        return []
    with KernelLibrary(path, read_only=True) as lib:
        return lib.records()


def _hardware(fp: dict[str, Any], *, short: bool = False) -> str:
    if fp.get("gpu"):
        return str(fp["gpu"])
    if fp.get("triton_interpret"):
        return "CPU, interpreter" if short else f"CPU ({fp.get('cpu', '?')}), Triton interpreter"
    return str(fp.get("cpu", "?"))
