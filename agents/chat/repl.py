"""The plain chat: one line in, lines out — for SSH sessions, dumb terminals and pipes (`tune chat --plain`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from .session import ChatEvent, ChatSession

PROMPT = "you> "


def format_event(event: ChatEvent) -> str:
    """How an event reads as plain text (the Textual app shows the same words)."""
    if event.kind == "job":
        return "---- drafted job ----\n" + event.text.rstrip() + "\n---------------------"
    if event.kind == "tool":
        return f"  (tool: {event.text})"
    if event.kind == "progress":
        return f"  {event.text}"
    if event.kind == "error":
        return f"error: {event.text}"
    if event.kind == "say_chunk":
        return event.text
    return f"{PROMPT}{event.text}" if event.kind == "user" else f"tune> {event.text}"


def printer(out: TextIO) -> Callable[[ChatEvent], None]:
    """An ``emit`` that prints each event at once (flushed, so a pipe sees answers as they come).

    A streamed answer is written piece by piece on one ``tune> `` line, each piece flushed as it arrives;
    its ``say_end`` ends the line.
    """
    streaming = False

    def emit(event: ChatEvent) -> None:
        nonlocal streaming
        if event.kind == "say_chunk":
            out.write(("" if streaming else "tune> ") + event.text)
            streaming = True
        elif event.kind == "say_end" and streaming:
            out.write("\n")
            streaming = False
        else:
            out.write(("\n" if streaming else "") + format_event(event) + "\n")
            streaming = False
        out.flush()

    return emit


def run_repl(session: ChatSession, *, read: Callable[[str], str] = input, out: TextIO = sys.stdout,
             banner: str = "") -> int:
    """Read lines until quit or end of input; Ctrl-C at the prompt leaves, during a study it stops the study."""
    if banner:
        out.write(banner + "\n")
        out.flush()
    while True:
        try:
            line = read(PROMPT)
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:
            out.write("\n")
            return 130
        if not session.handle(line):
            out.write("tune> bye\n")
            out.flush()
            return 0
