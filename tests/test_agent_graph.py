"""The agent loop end to end on a synthetic target: offline, with a scripted LLM, and resumed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.synthetic import SyntheticTarget
from tunesmith.agents.study import drive, open_session
from tunesmith.knowledge.report import build_report, render_markdown
from tunesmith.runners.job import parse_job
from tunesmith.runners.types import Status, Verdict
from tunesmith.tools.plugins import TARGETS

TARGETS.register("synthetic", SyntheticTarget)


def make_job(trials: int = 10, strategy: str = "planner", **extra):
    data = {"name": "syn", "target": "synthetic", "budget": {"trials": trials},
            "measure": {"repeats": 5}, "strategy": {"name": strategy}, "llm": {"mode": "off"}}
    data.update(extra)
    return parse_job(data)


def first(trials):
    return [t for t in trials if t.candidate.origin not in ("remeasure", "final")]


def test_offline_loop_finds_a_confirmed_win(tmp_path: Path) -> None:
    job = make_job(trials=14)
    with open_session(job, tmp_path) as session:
        assert session.llm is None and "offline" in session.llm_description
        outcome = drive(session)
    trials = outcome.trials
    assert trials[0].candidate.origin == "baseline" and trials[0].verdict == Verdict.BASELINE
    assert outcome.best is not None and outcome.best.verdict == Verdict.BETTER
    assert outcome.best.measurement.median < trials[0].measurement.median * 0.7
    # every declared win was re-measured first: a remeasure trial of the same key exists
    for win in (t for t in trials if t.verdict == Verdict.BETTER):
        assert any(t.candidate.origin == "remeasure" and t.candidate.key == win.candidate.key for t in trials)
    assert len(first(trials)) == 14
    assert any(t.measurement.status == Status.RUNTIME and t.verdict == Verdict.INVALID for t in trials)
    first_runs = [t.candidate.key for t in first(trials)]
    assert len(first_runs) == len(set(first_runs))


def test_report_has_speedup_trials_and_trail(tmp_path: Path) -> None:
    with open_session(make_job(trials=8), tmp_path) as session:
        drive(session)
        report = build_report(session.store, "syn")
    assert report["speedup"]["speedup"] > 1.2
    assert {e["node"] for e in report["events"]} >= {"planner", "coder", "run", "judge", "finish"}
    md = render_markdown(report)
    assert "Speedup over the default" in md and "| 1 | baseline |" in md
    json.dumps(report)  # serialisable


def test_report_when_the_default_is_already_best(tmp_path: Path) -> None:
    job = make_job(trials=5, baseline={"threads": 8, "chunk": 16, "mode": "a"})  # the synthetic optimum
    with open_session(job, tmp_path) as session:
        outcome = drive(session)
        report = build_report(session.store, "syn")
    assert outcome.best is not None and outcome.best.id == outcome.baseline.id
    assert report["speedup"] is None  # no self-comparison dressed up as a speedup
    top = report["best_measured"]
    assert top is None or top["number"] != report["baseline"]["number"]
    md = render_markdown(report)
    assert "the default is the best confirmed configuration" in md and "Speedup over the default" not in md


def test_rerun_resumes_without_repeating(tmp_path: Path) -> None:
    with open_session(make_job(trials=5), tmp_path) as session:
        drive(session)
    with open_session(make_job(trials=5), tmp_path) as session:
        assert session.resumed
        outcome = drive(session)
        assert len(first(outcome.trials)) == 5 and "budget" in outcome.stop_reason
    with open_session(make_job(trials=9), tmp_path) as session:
        outcome = drive(session)
    keys = [t.candidate.key for t in first(outcome.trials)]
    assert len(keys) == len(set(keys)) and len(keys) == 9


def test_interrupted_trial_is_retried(tmp_path: Path) -> None:
    from tunesmith.knowledge.study_store import StudyStore
    from tunesmith.runners.types import Candidate

    job = make_job(trials=4)
    store = StudyStore(tmp_path / "tunesmith.db")
    store.open_study(job)
    left = store.start_trial("syn", Candidate(config={"threads": 8, "chunk": 16, "mode": "a"}, origin="planner"))
    store.close()
    with open_session(job, tmp_path) as session:
        outcome = drive(session)
    runs = [t for t in outcome.trials if t.candidate.key == left.candidate.key]
    assert runs[0].measurement.detail.startswith("interrupted") and runs[1].measurement.status == Status.OK


def scripted_llm(planner_configs: list[dict]):
    """The real LLM client over a scripted chat model that answers by what each prompt asks for."""
    from tunesmith.agents.llm import LLMClient, ScriptedBackend

    configs = list(planner_configs)

    def reply(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "planning the next experiments" in prompt:
            if configs and configs[0] == "MALFORMED":
                configs.pop(0)
                return "I think you should try more threads!"  # not JSON: the client must retry
            cfg = configs.pop(0) if configs else {"threads": 1}
            return json.dumps({"reasoning": "more threads help", "candidates": [{"config": cfg, "rationale": "scripted"}]})
        if "Explain in one or two sentences" in prompt:
            return '```json\n{"explanation": "SCRIPTED-EXPLANATION"}\n```'
        return json.dumps({"insight": "SCRIPTED-LESSON", "confidence": 0.9})

    backend = ScriptedBackend(reply)
    return LLMClient(backend, model="scripted", structured_mode="json_object", max_retries=2), backend


def test_scripted_llm_drives_planner_judge_reflector(tmp_path: Path) -> None:
    llm, backend = scripted_llm(
        ["MALFORMED", {"threads": 8, "chunk": 16}, {"mode": "zzz"}, {"threads": 8, "chunk": 16}, {"threads": 2}])
    setup = SimpleNamespace(client=llm, mode="endpoint", description="endpoint: scripted")
    with open_session(make_job(trials=7), tmp_path, llm_setup=setup) as session:
        outcome = drive(session)
        report = build_report(session.store, "syn")
    planned = [t for t in outcome.trials if t.candidate.rationale.startswith("LLM:")]
    assert planned and planned[0].candidate.config == {"threads": 8, "chunk": 16, "mode": "a"}
    assert set(llm.ledger.to_dict()["by_purpose"]) >= {"planner", "judge", "reflector"}
    # the reply that is not JSON and the one naming a mode the space lacks were both sent back and retried
    assert llm.ledger.to_dict()["by_purpose"]["planner"]["retries"] >= 2
    wins = [t for t in outcome.trials if t.verdict == Verdict.BETTER]
    assert wins and "SCRIPTED-EXPLANATION" in wins[0].explanation
    assert any(r["author"] == "llm" and "SCRIPTED-LESSON" in r["insight"] for r in report["reflections"])
    assert any("discarded an LLM proposal that repeats" in e["message"] for e in report["events"])
    assert report["llm_usage"]["llm"]["total"]["prompt_tokens"] > 0


def test_unknown_parameter_in_baseline_is_one_line(tmp_path: Path) -> None:
    from tunesmith.runners.errors import JobError

    with pytest.raises(JobError, match="unknown parameter 'thread'"):
        with open_session(make_job(baseline={"thread": 2}), tmp_path):
            pass


def test_best_measured_summary_names_the_unconfirmed_fastest_trial() -> None:
    from tunesmith.knowledge.report import best_measured_summary
    from tunesmith.runners.types import Candidate, Measurement, Trial, TrialState

    def trial(number: int, origin: str, samples: list[float], verdict: Verdict) -> Trial:
        return Trial(id=number, study="s", number=number, state=TrialState.DONE, verdict=verdict,
                     candidate=Candidate(config={"x": number}, origin=origin),
                     measurement=Measurement(status=Status.OK, samples=samples))

    base = trial(1, "baseline", [1.0, 1.02, 0.98], Verdict.BASELINE)
    slower = trial(2, "planner", [1.3, 1.31, 1.29], Verdict.WORSE)
    close = trial(3, "planner", [0.9, 0.95, 1.0], Verdict.NOISE)
    again = trial(4, "remeasure", [0.5, 0.5, 0.5], Verdict.NOISE)  # re-measures never count
    top = best_measured_summary([base, slower, close, again], base, base, minimize=True)
    assert top is not None and top["number"] == 3 and top["verdict"] == "noise"
    assert top["speedup"] > 1 and top["low"] <= top["speedup"] <= top["high"]
    assert best_measured_summary([base, slower], base, base, minimize=True) is None  # the default is fastest


def test_checkpoints_are_written_in_step_with_the_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """drive asks LangGraph for durability="sync": a step's checkpoint is saved before the next step runs
    (no background writer contending with the loop for the interpreter lock)."""
    import tunesmith.agents.study as study

    asked: list[dict] = []
    build = study.build_graph

    def recording_build(session, saver):
        graph = build(session, saver)
        stream = graph.stream
        graph.stream = lambda *a, **kw: (asked.append(kw), stream(*a, **kw))[1]
        return graph

    monkeypatch.setattr(study, "build_graph", recording_build)
    with open_session(make_job(trials=3), tmp_path) as session:
        outcome = study.drive(session)
    assert [kw.get("durability") for kw in asked] == ["sync"] and len(first(outcome.trials)) == 3
