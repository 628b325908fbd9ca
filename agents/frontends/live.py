"""What the user sees while a study runs: a rich live view on a terminal, one line per trial otherwise.

Both views keep what they show in memory. After loading where the study stands once, the live view
reads one trial per event that names one (that trial), none for the others, so an event costs the same in
a study of ten trials or ten thousand. It is drawn four times a second by rich's refresh, from memory (an
event only updates what it shows), so rendering never touches the store, even after the session closed it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tunesmith.agents.session import TuningSession
from tunesmith.runners.selection import Rules, Speedup, study_result, verdict_records
from tunesmith.runners.types import Trial, Verdict

_VERDICTS = frozenset(v.value for v in Verdict)


class OutputClosed(KeyboardInterrupt):
    """The reader of our output went away (``tune run | head``): stop like Ctrl-C, quietly."""


class PlainView:
    """Non-terminal output: one line per finished trial plus session start/stop lines."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, node: str, message: str, data: dict[str, Any]) -> None:
        if (node == "run" and "trial" in data) or node in ("session", "finish"):
            try:
                self.console.print(f"[{node}] {message}", markup=False, highlight=False)
                self.console.file.flush()
            except BrokenPipeError:
                raise OutputClosed from None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveView:
    """A live table of the newest trials, the best result against the baseline with its spread, agent activity."""

    ROWS = 15

    def __init__(self, console: Console, session_ref: list[TuningSession]) -> None:
        self.console = console
        self.session_ref = session_ref
        self.activity: deque[str] = deque(maxlen=8)
        self.rows: list[Trial] = []  # the newest trials, oldest first, at most ROWS
        self.best: Trial | None = None
        self.baseline: Trial | None = None
        self.title = ""
        self._loaded = False
        self._speedup: Speedup | None = None  # the comparison the latest win's verdict (or the final) used
        # rendered by Live's own refresh (4 times a second) from what is in memory, not on every event
        self.live = Live(console=console, refresh_per_second=4, transient=False, get_renderable=self.render)

    def __call__(self, node: str, message: str, data: dict[str, Any]) -> None:
        self.activity.append(f"[bold]{node}[/bold] {message}")
        if self.session_ref:
            self.refresh(self.session_ref[0], data)
            self._take_speedup(node, data)

    def refresh(self, s: TuningSession, data: dict[str, Any]) -> None:
        """Bring the in-memory rows up to date: at most one trial read, whatever the study's size."""
        if not self._loaded:  # once per run: where a resumed study stands
            every = s.store.trials(s.study)
            result = study_result(every, Rules.from_job(s.job), verdict_records(s.store.events(s.study)))
            self.best, self.baseline, self._speedup = result.best, result.baseline, result.speedup
            self.rows = every[-self.ROWS:]
            self._loaded = True
        number, verdict = data.get("trial"), data.get("verdict")
        trial = self._read(s, number, verdict) if isinstance(number, int) else None
        for t in self.rows:
            if self.baseline is None and t.candidate.origin == "baseline" and t.measurement is not None:
                self.baseline = t
        if trial is not None and verdict in (Verdict.BETTER.value, Verdict.BASELINE.value):
            if verdict == Verdict.BETTER.value or self.best is None or self.best.verdict != Verdict.BETTER:
                self.best = trial
        self.title = f"study {s.study} — {s.llm_description}"

    def _read(self, s: TuningSession, number: int, verdict: Any) -> Trial | None:
        """Read the one trial an event names and put it in its place among the shown rows.

        The judge announces a verdict just before storing it, so the event's verdict is applied here.
        """
        trial = s.store.trial_by_number(s.study, number)
        if trial is None:
            return None
        if verdict in _VERDICTS and (trial.verdict is None or trial.verdict.value != verdict):
            trial = trial.model_copy(update={"verdict": Verdict(verdict)})
        rows = [t for t in self.rows if t.number != number]
        if rows and number < rows[0].number and len(rows) >= self.ROWS:
            return trial  # older than every shown row: not shown
        rows.append(trial)
        rows.sort(key=lambda t: t.number)
        self.rows = rows[-self.ROWS:]
        return trial

    def render(self) -> Group:
        """The view from memory only (no store access)."""
        if not self.session_ref:
            return Group(Text("starting…"))
        s = self.session_ref[0]
        table = Table(title=self.title or f"study {s.study}", expand=True)
        for col in ("#", "origin", "config", "status", "median", "IQR", "verdict"):
            table.add_column(col, overflow="fold")
        for t in self.rows:
            m = t.measurement
            table.add_row(str(t.number), t.candidate.origin, ", ".join(f"{k}={v}" for k, v in t.candidate.config.items()),
                          m.status.value if m else t.state.value, f"{m.median:.4g}" if m and m.median else "–",
                          f"{m.iqr:.2g}" if m and m.iqr is not None and m.samples else "–",
                          t.verdict.value if t.verdict else "")
        sp = self._speedup
        head = (f"budget: {s.budget.trials_used}/{s.job.budget.trials} trials, {s.budget.elapsed_s:.0f} s, "
                f"{s.budget.tokens_used} LLM tokens")
        if sp is not None and self.best is not None and sp.trial == self.best.number:
            head += f" | best vs {sp.versus()}: {sp.interval()}" + ("" if sp.confirmed else " (not confirmed)")
        return Group(Text(head), table, Panel("\n".join(list(self.activity)), title="agents"))

    def _take_speedup(self, node: str, data: dict[str, Any]) -> None:
        """A win's verdict or the final re-measure carries its comparison: show that, never a recomputation."""
        raw = data.get("comparison")
        if isinstance(raw, dict) and (data.get("final") or data.get("verdict") == Verdict.BETTER.value):
            self._speedup = Speedup.from_dict(raw)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.session_ref:  # the study never opened (a one-line error follows): leave no "starting…"
            self.live.transient = True
        self.live.refresh()  # the last frame, from memory: the store is already closed here
        self.live.__exit__(None, None, None)
