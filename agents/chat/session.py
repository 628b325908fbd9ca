"""One chat: drafting a job from words, running it once the user says yes, answering questions about studies.

``ChatSession.handle(line)`` does what the line asks and reports through ``emit(ChatEvent)`` as it goes (a
drafted job, each tool call, each trial of a running study, the answer), so the Textual app and the plain
REPL show the same conversation. The study runs through the same entry `tune run` uses (``prepare_job``,
``open_session``, ``drive``); questions are answered by the tools/ operations — worded by the rules in
``answers`` without an LLM, or by the model calling the tools (``llm_tools``) with one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.secrets import redact

from . import answers, llm_tools
from .intents import Intent, recognise

HELP = ("describe a job with its command in backticks (tune `python bench.py --threads 4` for throughput, 6 trials); "
        "I draft the job file and wait for your yes before running it. Ask: list, status, best, show trial N, "
        "compare A and B, why trial N, why threads 8; quit to leave.")
NEEDS_LLM = ("that question needs an LLM (restart with --llm local, or set TUNESMITH_LLM_BASE_URL); without one I "
             "answer: list, status, best, show N, compare A B, why N, and draft jobs from a command in backticks")
PROGRESS_NODES = ("session", "run", "finish", "confirm")


@dataclass
class ChatEvent:
    """Something to show: ``kind`` is say, job (a drafted job's TOML), tool, progress, ask (awaits a yes) or error.

    A streamed answer arrives as ``say_chunk`` events (``text``: the next piece, to append to the answer being
    shown) closed by one ``say_end`` (``text``: the whole answer, as a ``say`` would carry it).
    """

    kind: str
    text: str


class ChatSession:
    """The conversation's state (current study, the drafted job awaiting a yes) and what each line does."""

    def __init__(self, state_dir: Path, *, emit: Callable[[ChatEvent], None], llm: Any = None,
                 study_llm: Any = None, cwd: Path | None = None, knowledge: Any = None, stream: bool = True) -> None:
        """``llm``: an ``LLMClient`` for questions (None: rules only); ``study_llm``: an ``LLMSetup`` the
        studies it runs use (None: they run offline); ``stream``: the model's free-text answers arrive piece by
        piece (``say_chunk`` events) where the client can stream."""
        self.state_dir = state_dir
        self.emit = emit
        self.llm = llm
        self.study_llm = study_llm
        self.cwd = (cwd or Path.cwd()).resolve()
        self.knowledge = knowledge
        self.stream = stream
        self.current: str | None = None
        self.pending: Path | None = None  # the drafted job file awaiting the user's yes
        self.history: list[dict[str, str]] = []

    # -- one line ----------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Act on one line; False when the user wants to leave."""
        if not line.strip():
            return True
        intent = recognise(line, pending=self.pending is not None)
        try:
            if intent.kind == "quit":
                return False
            if intent.kind == "help":
                self.say(HELP)
            elif intent.kind == "draft":
                self.draft(intent.args)
            elif intent.kind in ("approve", "decline", "edit", "reload"):
                self._pending_action(intent)
            else:
                self.question(line, intent)
        except TunesmithError as exc:
            self.emit(ChatEvent("error", redact(exc.line())))
        except sqlite3.DatabaseError as exc:
            self.emit(ChatEvent("error", f"the study store in {self.state_dir} cannot be read ({exc}); "
                                         "fix: move it aside or pass another --state-dir"))
        return True

    def say(self, text: str) -> None:
        """An answer line (redacted), remembered for the LLM's context."""
        text = redact(text)
        self.history.append({"role": "assistant", "content": text})
        self.emit(ChatEvent("say", text))

    # -- drafting and running ------------------------------------------------------------------------
    def draft(self, req: dict[str, Any]) -> None:
        """Draft the job the user described (``tools.initjob``), save it, show it and ask for a yes."""
        from tunesmith.tools.initjob import draft_job, save_draft

        self.say(f"drafting a job for: {' '.join(req['argv'])} (reading its --help, running it once)")
        draft = draft_job(req["argv"], cwd=self.cwd, metric=req.get("metric", "seconds"), trials=req.get("trials", 12))
        path = save_draft(draft, self.state_dir / "jobs" / f"{draft.name}.toml", overwrite=True)
        self.pending = path
        self.emit(ChatEvent("job", draft.toml))
        trials = req.get("trials", 12)
        self.say(f"drafted {path}: knobs {', '.join(k.name for k in draft.knobs)}; metric {draft.metric} "
                 f"({draft.direction}); {trials} trials. {'; '.join(draft.notes)}")
        self._ask()

    def _ask(self) -> None:
        self.emit(ChatEvent("ask", "run this study now? it runs the command many times on this machine "
                                   "(yes / no; or `trials N`, `values KNOB 1,2,4`, or edit the file and say `reload`)"))

    def _pending_action(self, intent: Intent) -> None:
        if self.pending is None:
            self.say("no drafted job is waiting; describe one with its command in backticks")
            return
        if intent.kind == "decline":
            self.say(f"not running it; the draft stays in {self.pending}")
            self.pending = None
        elif intent.kind == "reload":
            self.emit(ChatEvent("job", self.pending.read_text(encoding="utf-8")))
            self._ask()
        elif intent.kind == "edit":
            self._edit(intent.args)
        else:
            path, self.pending = self.pending, None
            self.run_study(path)

    def _edit(self, args: dict[str, Any]) -> None:
        from tunesmith.runners.job import load_job

        assert self.pending is not None
        text = self.pending.read_text(encoding="utf-8")
        if args["field"] in ("trials", "repeats"):
            text, n = re.subn(rf"(?m)^{args['field']} = \d+", f"{args['field']} = {args['value']}", text)
        else:
            values = [v.strip() for v in re.split(r"[,\s]+", args["value"]) if v.strip()]
            rendered = ", ".join(v if re.fullmatch(r"-?[\d.]+", v) else f'"{v}"' for v in values)
            text, n = re.subn(rf"(?ms)^(\[workload\.params\.{re.escape(args['param'])}\]\n(?:#.*\n)*kind = \"choice\"\n)"
                              r"values = \[[^\]]*\]", rf"\g<1>values = [{rendered}]", text)
        if not n:
            raise TunesmithError(f"the draft has no {args.get('param') or args['field']} to change",
                                 "edit the file itself, then say `reload`")
        old = self.pending.read_text(encoding="utf-8")
        self.pending.write_text(text, encoding="utf-8")
        try:
            load_job(self.pending)
        except TunesmithError:
            self.pending.write_text(old, encoding="utf-8")
            raise
        self.emit(ChatEvent("job", text))
        self._ask()

    def run_study(self, path: Path) -> None:
        """Run the approved job with live progress, through the entry `tune run` uses."""
        from tunesmith.agents.study import drive, failure_summary, open_session, prepare_job
        from tunesmith.knowledge.report import write_report

        job = prepare_job(path)
        self.say(f"running study {job.name!r} ({job.budget.trials} trials)")

        def progress(node: str, message: str, data: dict[str, Any]) -> None:  # noqa: ARG001
            if node in PROGRESS_NODES:
                self.emit(ChatEvent("progress", redact(f"[{node}] {message}")))

        try:
            with open_session(job, self.state_dir, llm_mode=None if self.study_llm else "off", observers=[progress],
                              job_path=str(path), llm_setup=self.study_llm) as session:
                outcome = drive(session)
                md, _ = write_report(session.store, session.study, self.state_dir / "reports")
        except KeyboardInterrupt:
            self.say(f"interrupted: finished trials are stored; approve the job again ({path}) to resume")
            self.pending = path
            return
        self.current = job.name
        best = outcome.best
        line = f"study {job.name!r} stopped: {outcome.stop_reason}."
        if best is not None:
            line += f" best: trial #{best.number} {best.candidate.config}."
        if not any(t.measurement and t.measurement.ok for t in outcome.trials):
            line += f" every trial failed: {failure_summary(outcome.trials)}."
        self.say(f"{line} report: {md}. ask me why, compare, or show a trial")

    # -- questions ------------------------------------------------------------------------------------
    def question(self, line: str, intent: Intent) -> None:
        """Answer from the store: the model calling tools when there is one, else the rules (or say what needs one)."""
        store = self._store()
        if store is None:
            self.say("no studies yet in " + str(self.state_dir) + "; describe a job with its command in backticks")
            return
        try:
            self.history.append({"role": "user", "content": line})
            if self.llm is not None:
                try:
                    self._llm_answer(store, line, intent)
                    return
                except TunesmithError as exc:  # the endpoint failed: the rules answer what they can
                    self.emit(ChatEvent("error", f"LLM unavailable ({redact(exc.line())[:160]}); answering by rules"))
            if intent.kind == "open":
                self.say(NEEDS_LLM)
                return
            text, study = answers.answer(store, intent, self.current, self.knowledge)
            self.current = study or self.current
            self.say(text)
        finally:
            store.close()

    def _llm_answer(self, store: Any, line: str, intent: Intent) -> None:
        study = intent.args.get("study") or self.current
        if study is None:
            try:
                study = answers.resolve_study(store, None, None)
            except TunesmithError:
                study = None

        def on_tool(name: str, args: dict[str, Any], result: str) -> None:
            self.emit(ChatEvent("tool", f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})"))

        forced = intent.tool if intent.kind != "open" else None
        rule_args = {k: v for k, v in intent.args.items() if k in ("a", "b")}
        if intent.kind in ("show", "why") and "trial" in intent.args:
            rule_args["trial"] = intent.args["trial"]
        if forced and forced != "list_studies" and study:
            rule_args["study"] = study
        if intent.kind == "why" and "trial" not in intent.args:
            forced = None  # "why threads 8": the model picks the trials to look at
        shown: list[str] = []

        def on_chunk(piece: str) -> None:
            shown.append(piece)
            self.emit(ChatEvent("say_chunk", redact(piece)))

        streams = self.stream and hasattr(self.llm, "stream_text")
        try:
            text = llm_tools.ask(self.llm, store, line, study=study, forced=forced, history=self.history[:-1],
                                 on_tool=on_tool, knowledge=self.knowledge, rule_args=rule_args or None,
                                 on_chunk=on_chunk if streams else None)
        except TunesmithError as exc:
            if not shown:
                raise
            self._end_stream("".join(shown).strip())  # what was shown stays; one line says why it stopped
            self.emit(ChatEvent("error", f"the LLM's answer broke off ({redact(exc.line())[:160]})"))
        else:
            if shown:
                self._end_stream(text)
            else:
                self.say(text)
        self.current = study or self.current
        if intent.kind != "open":  # a small model may word it loosely: the store's own answer, with its citations
            try:
                grounded, _ = answers.answer(store, intent, self.current, self.knowledge)
            except TunesmithError as exc:
                self.emit(ChatEvent("error", redact(exc.line())))
            else:
                self.emit(ChatEvent("say", redact("from the store: " + grounded)))

    def _end_stream(self, text: str) -> None:
        """Close a streamed answer: remembered for the LLM's context like ``say``."""
        text = redact(text)
        self.history.append({"role": "assistant", "content": text})
        self.emit(ChatEvent("say_end", text))

    def _store(self) -> Any:
        from tunesmith.knowledge.study_store import StudyStore

        db = self.state_dir / "tunesmith.db"
        return StudyStore(db, read_only=True) if db.exists() else None
