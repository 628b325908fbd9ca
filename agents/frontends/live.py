"""What the user sees while a study runs: a rich live view on a terminal, one line per trial otherwise."""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tunesmith.agents.session import TuningSession
from tunesmith.knowledge.report import baseline_trial, best_trial, speedup_summary


class PlainView:
    """Non-terminal output: one line per finished trial plus session start/stop lines."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, node: str, message: str, data: dict[str, Any]) -> None:
        if (node == "run" and "trial" in data) or node in ("session", "finish"):
            self.console.print(f"[{node}] {message}", markup=False, highlight=False)
            self.console.file.flush()

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveView:
    """A live table of trials, the best result against the baseline with its spread, and agent activity."""

    def __init__(self, console: Console, session_ref: list[TuningSession]) -> None:
        self.console = console
        self.session_ref = session_ref
        self.activity: deque[str] = deque(maxlen=8)
        self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __call__(self, node: str, message: str, data: dict[str, Any]) -> None:
        self.activity.append(f"[bold]{node}[/bold] {message}")
        self.live.update(self.render())

    def render(self) -> Group:
        if not self.session_ref:
            return Group(Text("starting…"))
        s = self.session_ref[0]
        trials = s.store.trials(s.study)
        table = Table(title=f"study {s.study} — {s.llm_description}", expand=True)
        for col in ("#", "origin", "config", "status", "median", "IQR", "verdict"):
            table.add_column(col, overflow="fold")
        for t in trials[-15:]:
            m = t.measurement
            table.add_row(str(t.number), t.candidate.origin, ", ".join(f"{k}={v}" for k, v in t.candidate.config.items()),
                          m.status.value if m else t.state.value, f"{m.median:.4g}" if m and m.median else "–",
                          f"{m.iqr:.2g}" if m and m.iqr is not None and m.samples else "–",
                          t.verdict.value if t.verdict else "")
        sp = speedup_summary(best_trial(trials), baseline_trial(trials), s.job.objective.minimize)
        head = (f"budget: {s.budget.trials_used}/{s.job.budget.trials} trials, {s.budget.elapsed_s:.0f} s, "
                f"{s.budget.tokens_used} LLM tokens")
        if sp:
            head += f" | best vs default: {sp['speedup']:.3f}× [{sp['low']:.3f}, {sp['high']:.3f}]"
        return Group(Text(head), table, Panel("\n".join(self.activity), title="agents"))

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self.render())
        self.live.__exit__(None, None, None)
