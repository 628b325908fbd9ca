"""`tune chat`: draft, run and question studies in a conversation (Textual app, or `--plain` line by line).

The conversation itself lives in ``tunesmith.agents.chat``; this module only picks the LLM and the screen.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `tune chat` to the CLI."""
    from tunesmith.agents.frontends.cli import DEFAULT_STATE

    @app.command("chat")
    def chat(
        plain: Annotated[bool, typer.Option("--plain", help="a line-by-line REPL (SSH, dumb terminals, pipes)")] = False,
        llm: Annotated[str | None, typer.Option(help="auto | off | endpoint | local (SmolLM2 via llama.cpp)")] = None,
        state_dir: Annotated[Path, typer.Option("--state-dir", help="where studies live")] = DEFAULT_STATE,
        knowledge_dir: Annotated[str | None, typer.Option(help="the knowledge store (default: the user's; off: none)")] = None,
    ) -> None:
        """Talk to tunesmith: describe a job, approve it, watch it run, ask why (list, status, compare, ...)."""
        from tunesmith.agents.frontends.cli import _fail, _internal, check_llm_mode
        from tunesmith.runners.errors import TunesmithError

        check_llm_mode(llm)
        setup = None
        try:
            from tunesmith.agents.llm.config import resolve_llm

            setup = resolve_llm(None, llm)
            banner = (f"tune chat — LLM: {setup.description}. Describe a job with its command in `backticks`, "
                      "or ask: list, status, best, show trial N, compare A and B, why trial N. `help`, `quit`.")
            study_llm = setup if setup.online else None
            from tunesmith.knowledge.retrieval import open_retriever

            knowledge = open_retriever(knowledge_dir)  # manuals and lessons; None: the study store's lessons only
            if plain or not (sys.stdin.isatty() and sys.stdout.isatty()):
                from tunesmith.agents.chat.repl import printer, run_repl
                from tunesmith.agents.chat.session import ChatSession

                session = ChatSession(state_dir, emit=printer(sys.stdout), llm=setup.client, study_llm=study_llm,
                                      knowledge=knowledge)
                code = run_repl(session, banner=banner)
            else:
                from tunesmith.agents.chat.tui import ChatApp

                ChatApp(state_dir, llm=setup.client, study_llm=study_llm, banner=banner, knowledge=knowledge).run()
                code = 0
        except TunesmithError as exc:
            raise _fail(exc) from None
        except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback in a file
            raise _internal(exc, state_dir) from None
        finally:
            if setup is not None:
                setup.close()
        raise typer.Exit(code)
