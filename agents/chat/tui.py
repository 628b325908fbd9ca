"""The Textual chat app (`tune chat`): a scrolling conversation and an input line.

Each line runs ``ChatSession.handle`` in a worker thread, and every event it emits (the drafted job, each
tool call, each trial of a running study, the answer) is shown the moment it arrives, so answers and
progress stream into the conversation while the app stays responsive. A streamed answer grows in its own
message widget (``#live``, under the conversation) piece by piece, and moves into the conversation when it ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Input, RichLog, Static

from .repl import format_event
from .session import ChatEvent, ChatSession

STYLES = {"say": "bold", "job": "cyan", "tool": "dim", "progress": "green", "ask": "bold yellow", "error": "bold red"}


class ChatApp(App):
    """`tune chat` on a terminal; ``transcript`` keeps every shown line (tests read it), ``live_text`` the
    answer streaming in now ("" when none is)."""

    TITLE = "tune chat"
    BINDINGS = [("ctrl+q", "quit", "Quit")]
    CSS = "RichLog { height: 1fr; } #live { height: auto; max-height: 50%; text-style: bold; } Input { dock: bottom; }"

    def __init__(self, state_dir: Path, *, llm: Any = None, study_llm: Any = None, banner: str = "",
                 cwd: Path | None = None, knowledge: Any = None) -> None:
        super().__init__()
        self.session = ChatSession(state_dir, emit=self._from_worker, llm=llm, study_llm=study_llm, cwd=cwd,
                                   knowledge=knowledge)
        self.banner = banner
        self.transcript: list[str] = []
        self.live_text = ""
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield RichLog(wrap=True, markup=False, highlight=False, id="log")
        yield Static("", id="live", markup=False)
        yield Input(placeholder="describe a job with its command in `backticks`, or ask: status, why trial 2, ...",
                    id="input")
        yield Footer()

    def on_mount(self) -> None:
        if self.banner:
            self.show(ChatEvent("say", self.banner))
        self.query_one(Input).focus()

    def show(self, event: ChatEvent) -> None:
        """Append one event to the conversation (a streamed piece to the answer growing in ``#live``)."""
        from rich.text import Text

        live = self.query_one("#live", Static)
        if event.kind == "say_chunk":
            self.live_text += event.text
            live.update(Text(f"tune> {self.live_text}"))
            return
        if self.live_text:  # the streamed answer is finished: it joins the conversation
            unfinished, self.live_text = self.live_text, ""
            live.update("")
            if event.kind != "say_end":
                self.show(ChatEvent("say", unfinished))
        if event.kind == "say_end":
            event = ChatEvent("say", event.text)
        text = format_event(event)
        self.transcript.append(text)
        self.query_one(RichLog).write(Text(text, style=STYLES.get(event.kind, "")))

    def _from_worker(self, event: ChatEvent) -> None:
        self.call_from_thread(self.show, event)

    def on_input_submitted(self, message: Input.Submitted) -> None:
        line = message.value
        message.input.value = ""
        if not line.strip():
            return
        if self.busy:
            self.show(ChatEvent("error", "still working on the last request; wait for it to finish"))
            return
        self.show(ChatEvent("user", line))
        self.busy = True
        self.run_worker(lambda: self._handle(line), thread=True, exclusive=True, group="chat")

    def _handle(self, line: str) -> None:
        try:
            keep = self.session.handle(line)
        finally:
            self.busy = False
        if not keep:
            self.call_from_thread(self.exit)
