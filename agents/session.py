"""A tuning session: everything one `tune run` needs, built from a job file, closed on every exit path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.agents.budget import BudgetTracker, counted_trials
from tunesmith.agents.strategies.base import Strategy
from tunesmith.knowledge.storage import StudyInfo, StudyStorage
from tunesmith.runners.base import Runner, Target
from tunesmith.runners.executors import Executor
from tunesmith.runners.job import Job
from tunesmith.runners.types import Candidate, Trial, TrialState
from tunesmith.tools.history import StudyHistory

Observer = Callable[[str, str, dict[str, Any]], None]


@dataclass
class TuningSession:
    """The live objects behind a study. Graph nodes receive it; the checkpointed state holds only ids."""

    job: Job
    target: Target
    runner: Runner
    store: StudyStorage
    strategy: Strategy
    budget: BudgetTracker
    state_dir: Path
    info: StudyInfo
    resumed: bool = False
    llm: Any = None  # tunesmith.agents.llm.client.LLMClient, or None in offline mode
    llm_mode: str = "offline"
    llm_description: str = "offline"
    observers: list[Observer] = field(default_factory=list)
    ledger: Any = None  # tunesmith.runners.changes.ChangeLedger: handed to every trial (outside changes, undone)
    _synced_id: int = field(default=0, init=False, repr=False)  # sync_budget has read trials up to this id
    _synced_count: int = field(default=0, init=False, repr=False)
    executor: Executor[Any, Any] | None = None  # how the run node runs a batch; None: one at a time (serial)
    _history: StudyHistory | None = field(default=None, init=False, repr=False)
    _insights: set[str] | None = field(default=None, init=False, repr=False)  # the study's lessons, once read
    knowledge: Any = None  # tunesmith.knowledge.retrieval.Retriever: opened on first use where a knowledge store exists
    _knowledge_opened: bool = field(default=False, init=False, repr=False)
    _retrieved: list[str] | None = field(default=None, init=False, repr=False)  # knowledge-store lessons, once per study
    _recent: dict[int, Trial] = field(default_factory=dict, init=False, repr=False)  # trials this process wrote
    _resume_check: bool = field(default=True, init=False, repr=False)  # the first evaluate step looks for unjudged trials

    @property
    def study(self) -> str:
        return self.job.name

    @property
    def scratch_root(self) -> Path:
        return self.state_dir / "scratch"

    @property
    def history(self) -> StudyHistory:
        """The study's trials in memory (loaded on first use, then refreshed with what changed)."""
        if self._history is None:
            self._history = StudyHistory(self.store, self.study)
        return self._history

    def trials(self) -> list[Trial]:
        """Every trial of the study, up to date, in number order: read from memory plus what changed.

        The list is the history's own: read it, do not modify it.
        """
        return self.history.refresh()

    def trial_changed(self, trial_id: int | None) -> None:
        """A node changed a stored trial (the judge set its verdict): ``trials()`` reads it again."""
        self.history.changed(trial_id)

    def remember(self, trial: Trial) -> None:
        """Keep a trial this process just stored (finished, or given its verdict) for ``trial`` to return."""
        if len(self._recent) >= 256:  # a round's trials and the incumbent are all a step reads back
            self._recent.clear()
        self._recent[trial.id] = trial  # type: ignore[index]

    def trial(self, trial_id: int) -> Trial:
        """The trial as stored: from what this process last wrote of it, else read from the store."""
        found = self._recent.get(trial_id)
        if found is None:
            found = self._recent[trial_id] = self.store.trial(trial_id)
        return found

    def take_resume_check(self) -> bool:
        """True once per session: the first evaluate step (perhaps resumed after a kill) checks for trials
        of its proposals that finished without a verdict (``nodes.evaluate.unjudged_proposals``)."""
        first, self._resume_check = self._resume_check, False
        return first

    def known_insights(self) -> set[str]:
        """The insights of the lessons this study recorded (read once; ``add_reflection`` keeps it current)."""
        if self._insights is None:
            self._insights = {r.insight for r in self.store.reflections(study=self.study)}
        return self._insights

    def retriever(self) -> Any:
        """The knowledge store's retriever for the planner, judge, coder and chat; None where no store exists."""
        if self.knowledge is None and not self._knowledge_opened:
            self._knowledge_opened = True
            from tunesmith.knowledge.retrieval import open_retriever

            self.knowledge = open_retriever()
        return self.knowledge

    def lessons(self) -> list[str]:
        """Lessons for the planner's prompt: the domain's stored reflections (as before) and, retrieved once per
        study, the knowledge store's lessons and rules for this workload, with their citations."""
        own = [r.insight for r in self.store.reflections(workload_prefix=self.target.domain, limit=8)]
        if self._retrieved is None:
            self._retrieved = [f"{h.text} [{h.citation}]" for h in self.lesson_hits()]
        extra = [x for x in self._retrieved if x not in own]
        return own[:4] + extra[:4] + own[4:] + extra[4:]

    def lesson_hits(self) -> list[Any]:
        """The knowledge store's lessons and rules for this workload (``KnowledgeHit``), retrieved once per
        study (the retriever keeps them); empty where no knowledge store exists. The offline planner maps
        them onto its parameters (``strategies/lesson_priors.py``)."""
        if self.retriever() is None:
            return []
        return list(self.knowledge.lessons_for(self.target.signature(), self.job.description))

    def emit(self, node: str, message: str, **data: Any) -> None:
        """Record what an agent did (the reasoning trail) and tell the live view."""
        self.store.add_event(self.study, node, message, data)
        for observer in self.observers:
            observer(node, message, data)

    def llm_tokens_used(self) -> int:
        """Tokens the study's LLM ledger has counted (it is restored from the store on resume)."""
        return int(self.llm.ledger.tokens) if self.llm is not None else 0

    def save_usage(self) -> None:
        if self.llm is not None:
            self.store.save_usage(self.study, {"llm": self.llm.ledger.to_dict(), "summary": self.llm.ledger.summary()})

    def sync_budget(self) -> None:
        """Bring the budget up to date, reading only the trials stored since the last call.

        Re-measures and proposals rejected before running are not counted (``counted_trials``); a trial
        still running is counted but read again next time.
        """
        fresh = self.store.trials_since(self.study, self._synced_id, include_interrupted=False)
        settled = 0
        for t in fresh:
            if t.state in (TrialState.RUNNING, TrialState.QUEUED):
                break
            settled += 1
            self._synced_id = t.id or self._synced_id
        self._synced_count += counted_trials(fresh[:settled])
        self.budget.trials_used = self._synced_count + counted_trials(fresh[settled:])
        self.budget.tokens_used = self.llm_tokens_used()
        self.save_usage()

    def measured_remeasure(self, cand: Candidate, state: Mapping[str, Any], claimed: set[int]) -> Trial | None:
        """A re-measure of ``cand`` that already finished for the challengers awaiting confirmation.

        After a kill during (or just after) a round of re-measures the run node runs its queue again;
        a re-measure stored after the newest awaiting challenger is that round's and is reused, once.
        """
        awaiting = [int(k) for k in (state.get("awaiting_confirmation") or {})]
        if cand.origin != "remeasure" or not awaiting:
            return None
        for t in self.store.trials_since(self.study, max(awaiting), include_interrupted=False):
            if (t.candidate.origin == "remeasure" and t.candidate.key == cand.key and t.id not in claimed
                    and t.state in (TrialState.DONE, TrialState.FAILED)):
                claimed.add(t.id)  # type: ignore[arg-type]
                return t
        return None
