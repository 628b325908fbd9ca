"""tools.operations: each operation on a real study store, directly and through call_tool, and the specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.job import parse_job
from tunesmith.runners.secrets import redact_obj
from tunesmith.runners.stats import compare
from tunesmith.runners.types import Candidate, Measurement, Reflection, Status, Verdict
from tunesmith.tools.operations import (
    TOOLS,
    KnowledgeHit,
    KnowledgeSource,
    ReflectionSource,
    call_tool,
    compare_trials,
    list_studies,
    openai_tool_specs,
    search_knowledge,
    show_study,
    show_trial,
)
from tunesmith.tools.operations.search import SearchKnowledgeInput
from tunesmith.tools.operations.studies import ListStudiesInput, ShowStudyInput
from tunesmith.tools.operations.trial_tools import CompareTrialsInput, ShowTrialInput

FP = {"cpu": "test-cpu", "torch": "2.x"}
SECRET = "sk-proj-abcdefghijklmnopqrstuv123456"


def add(store: StudyStore, study: str, config: dict, origin: str, samples: list[float] | None,
        verdict: Verdict, explanation: str = "", status: Status = Status.OK, fp: dict | None = None) -> int:
    trial = store.start_trial(study, Candidate(config=config, origin=origin, rationale=f"{origin} pick"))
    m = Measurement(status=status, samples=samples or [], detail="crashed (exit 1)" if status != Status.OK else "",
                    metrics={"mb_per_s": 100.0}, fingerprint=fp if fp is not None else FP)
    store.finish_trial(trial.id, m)
    store.set_verdict(trial.id, verdict, explanation)
    return trial.number


@pytest.fixture
def store(tmp_path: Path) -> StudyStore:
    s = StudyStore(tmp_path / "tunesmith.db")
    s.open_study(parse_job({"name": "ckpt", "target": "replay", "objective": {"min_effect": 0.05}}))
    add(s, "ckpt", {"threads": 1, "chunk": 1}, "baseline", [1.0, 1.02, 0.98, 1.01, 0.99], Verdict.BASELINE,
        "the default configuration")
    add(s, "ckpt", {"threads": 4, "chunk": 1}, "planner", [0.5, 0.51, 0.49, 0.52, 0.5], Verdict.BETTER,
        f"confirmed +100% vs trial #1 (key {SECRET})")
    add(s, "ckpt", {"threads": 2, "chunk": 4}, "planner", None, Verdict.INVALID, "runtime: crashed",
        status=Status.RUNTIME)
    add(s, "ckpt", {"threads": 1, "chunk": 4}, "sampler", [1.0, 0.99, 1.01, 1.0, 0.98], Verdict.NOISE)
    add(s, "ckpt", {"threads": 8, "chunk": 1}, "sampler", [0.4, 0.41, 0.42], Verdict.NOISE, fp={"cpu": "other"})
    s.add_event("ckpt", "judge", "trial #2: better — confirmed", {"trial": 2, "verdict": "better"})
    s.add_event("ckpt", "run", "trial #21 would not match trial 2", {})
    s.add_event("ckpt", "reflector", "a lesson", {"trial": 2})
    s.add_event("ckpt", "finish", "study stopped: budget of 5 trials spent", {})
    s.add_reflection(Reflection(study="ckpt", workload="io/checkpoint size=256MB fs=ext4", hardware="cpu",
                                insight="more writer threads made the checkpoint write faster", confidence=0.6))
    s.add_reflection(Reflection(study="ckpt", workload="io/checkpoint size=256MB fs=ext4", hardware="cpu",
                                insight="O_DIRECT with 64 KiB writes fails with EINVAL", confidence=0.5))
    s.add_reflection(Reflection(study="tri", workload="kernel/triton_config softmax tiles=BLOCK", hardware="gpu",
                                insight="more warps made the softmax kernel faster", confidence=0.9))
    s.open_study(parse_job({"name": "flat", "target": "command", "workload": {"command": ["true"]}}))
    add(s, "flat", {"x": 1}, "baseline", [2.0, 2.0, 2.01], Verdict.BASELINE)
    add(s, "flat", {"x": 2}, "planner", [2.01, 1.99, 2.0], Verdict.NOISE)
    s.set_status("flat", "finished")
    yield s
    s.close()


def tool(name: str, store: StudyStore, **args) -> dict:
    return json.loads(call_tool(name, json.dumps(args), store))


def test_list_studies_filters_and_counts(store: StudyStore) -> None:
    names = {s.name: s for s in list_studies(store, ListStudiesInput()).studies}
    assert set(names) == {"ckpt", "flat"} and names["ckpt"].trials == 5 and names["flat"].target == "command"
    assert [s.name for s in list_studies(store, ListStudiesInput(status="finished")).studies] == ["flat"]
    assert [s.name for s in list_studies(store, ListStudiesInput(target="replay")).studies] == ["ckpt"]
    archived = store.archive("flat")
    assert [s.name for s in list_studies(store, ListStudiesInput()).studies] == ["ckpt"]
    assert archived in [s.name for s in list_studies(store, ListStudiesInput(include_archived=True)).studies]
    assert tool("list_studies", store, status="running")["studies"][0]["name"] == "ckpt"


def test_show_study_best_against_the_default_with_interval(store: StudyStore) -> None:
    out = show_study(store, ShowStudyInput(study="ckpt"))
    assert out.best.number == 2 and out.baseline.number == 1 and out.trials == 5
    assert out.counts_by_status == {"ok": 4, "runtime": 1}
    assert out.counts_by_verdict == {"baseline": 1, "better": 1, "invalid": 1, "noise": 2}
    expected = compare([0.5, 0.51, 0.49, 0.52, 0.5], [1.0, 1.02, 0.98, 1.01, 0.99], minimize=True)
    assert out.speedup.speedup == pytest.approx(expected.speedup)
    assert out.speedup.low <= out.speedup.speedup <= out.speedup.high and out.speedup.low > 1.8
    assert out.fastest_unconfirmed["number"] == 5  # faster-looking, but never confirmed by the judge
    assert "trial #2" in out.summary and out.stop_reason == "budget of 5 trials spent"


def test_show_study_when_the_default_is_best(store: StudyStore) -> None:
    out = show_study(store, ShowStudyInput(study="flat"))
    assert out.best.number == out.baseline.number == 1
    assert out.speedup is None and "default is the best confirmed" in out.summary


def test_show_trial_config_diff_measurement_and_events(store: StudyStore) -> None:
    out = show_trial(store, ShowTrialInput(study="ckpt", trial=2))
    assert out.config == {"threads": 4, "chunk": 1} and out.origin == "planner"
    assert out.diff_vs_default == {"threads": {"value": 4, "reference": 1}}
    assert out.measurement.median == 0.5 and out.measurement.n == 5 and out.measurement.samples is None
    assert out.measurement.low == 0.49 and out.measurement.high == 0.52 and out.measurement.fingerprint_id
    assert out.verdict == "better" and out.explanation.startswith("confirmed")
    assert [e.node for e in out.events] == ["judge", "reflector"]  # "#21" is not trial 2
    failed = show_trial(store, ShowTrialInput(study="ckpt", trial=3, include_samples=True))
    assert failed.measurement.status == "runtime" and failed.measurement.samples == [] and failed.verdict == "invalid"
    assert show_trial(store, ShowTrialInput(study="ckpt", trial=1)).diff_vs_default == {}


def test_compare_trials_is_the_judges_bootstrap(store: StudyStore) -> None:
    out = compare_trials(store, CompareTrialsInput(study="ckpt", a=2, b=1))
    expected = compare([0.5, 0.51, 0.49, 0.52, 0.5], [1.0, 1.02, 0.98, 1.01, 0.99], minimize=True)
    assert (out.comparison.improvement, out.comparison.low, out.comparison.high) == (
        expected.improvement, expected.low, expected.high)
    assert out.decision == "better" and out.config_diff == {"threads": {"value": 4, "reference": 1}}
    assert out.same_environment is True and out.a.median == 0.5 and out.b.median == 1.0
    assert compare_trials(store, CompareTrialsInput(study="ckpt", a=1, b=2)).decision == "worse"
    assert compare_trials(store, CompareTrialsInput(study="ckpt", a=4, b=1)).decision == "noise"  # within 5 %
    failed = compare_trials(store, CompareTrialsInput(study="ckpt", a=3, b=1))
    assert failed.comparison is None and failed.decision is None and "#3" in failed.summary
    other = compare_trials(store, CompareTrialsInput(study="ckpt", a=5, b=1))
    assert other.same_environment is False and "different environments" in other.summary


def test_search_knowledge_ranks_by_overlap_and_filters(store: StudyStore) -> None:
    out = search_knowledge(store, SearchKnowledgeInput(query="Which threads make the checkpoint faster?"))
    assert [h.text for h in out.hits][0].startswith("more writer threads") and out.source == "ReflectionSource"
    assert all(0 < h.score <= 1 for h in out.hits) and out.hits == sorted(out.hits, key=lambda h: -h.score)
    kernel = search_knowledge(store, SearchKnowledgeInput(query="faster", domain="kernel"))
    assert [h.metadata["study"] for h in kernel.hits] == ["tri"]
    assert search_knowledge(store, SearchKnowledgeInput(query="faster", k=1)).hits[0].metadata["confidence"] == 0.9
    assert search_knowledge(store, SearchKnowledgeInput(query="lustre stripe")).hits == []
    assert len(tool("search_knowledge", store, query="EINVAL direct", domain="io")["hits"]) == 1


def test_search_knowledge_takes_any_source(store: StudyStore) -> None:
    seen = []

    class Fixed:
        def search(self, query: str, k: int, filters: dict[str, str]) -> list[KnowledgeHit]:
            seen.append((query, k, filters))
            return [KnowledgeHit(text=f"hit {i}", source="manual:lustre", score=1 - i / 10) for i in range(10)]

    out = json.loads(call_tool("search_knowledge", '{"query": "stripe", "k": 3, "domain": "io"}', store,
                               knowledge=Fixed()))
    assert out["source"] == "Fixed" and [h["text"] for h in out["hits"]] == ["hit 0", "hit 1", "hit 2"]
    assert seen == [("stripe", 3, {"domain": "io"})]
    assert isinstance(Fixed(), KnowledgeSource) and isinstance(ReflectionSource(store), KnowledgeSource)


@pytest.mark.parametrize("name,args", [
    ("list_studies", {}),
    ("show_study", {"study": "ckpt"}),
    ("show_trial", {"study": "ckpt", "trial": 2, "include_samples": True}),
    ("compare_trials", {"study": "ckpt", "a": 2, "b": 1}),
    ("search_knowledge", {"query": "threads checkpoint"}),
])
def test_call_tool_matches_the_direct_call(store: StudyStore, name: str, args: dict) -> None:
    op = TOOLS[name]
    direct = json.loads(op(store, op.input_model.model_validate(args)).model_dump_json())
    through = tool(name, store, **args)
    assert "error" not in through
    assert through == redact_obj(direct)  # the same answer, secrets masked
    assert SECRET not in json.dumps(through)


def test_outputs_mask_secrets(store: StudyStore) -> None:
    out = call_tool("show_trial", {"study": "ckpt", "trial": 2}, store)
    assert SECRET not in out and "confirmed +100%" in json.loads(out)["explanation"]


def test_openai_specs_are_object_schemas() -> None:
    specs = openai_tool_specs()
    assert [s["function"]["name"] for s in specs] == list(TOOLS) == [
        "list_studies", "show_study", "show_trial", "compare_trials", "search_knowledge"]
    for spec in specs:
        assert spec["type"] == "function" and spec["function"]["description"]
        params = spec["function"]["parameters"]
        assert params["type"] == "object" and isinstance(params["properties"], dict)
        assert set(params["required"]) <= set(params["properties"]) and params["additionalProperties"] is False
        assert all(p.get("description") for p in params["properties"].values())
        json.dumps(spec)
    show = next(s for s in specs if s["function"]["name"] == "show_trial")["function"]["parameters"]
    assert show["required"] == ["study", "trial"] and show["properties"]["trial"]["minimum"] == 1


def test_openai_specs_are_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for spec in openai_tool_specs():
        params = spec["function"]["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"no_such_argument": 1}, params)


@pytest.mark.parametrize("name,arguments,expect", [
    ("show_trial", '{"study": "ckpt"}', "trial: required argument missing"),
    ("show_trial", '{"study": "ckpt", "trial": "two"}', "trial: Input should be a valid integer"),
    ("show_trial", '{"study": "ckpt", "trial": 0}', "greater than or equal to 1"),
    ("show_trial", '{"study": "ckpt", "trial": 99}', "no trial #99; fix: use a number from 1 to 5"),
    ("show_study", '{"study": "nope"}', "no study named 'nope'"),
    ("show_study", '{"studdy": "ckpt"}', "studdy: unknown argument; study: required argument missing; fix: use only study and give study"),
    ("compare_trials", '{"study": "ckpt", "a": 2', "not valid JSON"),
    ("compare_trials", '[2, 1]', "must be a JSON object"),
    ("search_knowledge", '{"query": "x", "k": 500}', "k: Input should be less than or equal to 50"),
    ("drop_tables", "{}", "unknown tool 'drop_tables'; fix: call one of list_studies"),
])
def test_bad_calls_give_a_one_line_error(store: StudyStore, name: str, arguments: str, expect: str) -> None:
    out = call_tool(name, arguments, store)
    data = json.loads(out)
    assert set(data) == {"error"} and "\n" not in data["error"] and "fix:" in data["error"]
    assert expect in data["error"]


def test_compare_trials_with_a_non_positive_median_says_why_instead_of_a_ratio(store: StudyStore) -> None:
    store.open_study(parse_job({"name": "neg", "target": "replay", "objective": {"direction": "maximize"}}))
    add(store, "neg", {"x": 1}, "baseline", [-1.0, -1.1, -0.9], Verdict.BASELINE)
    add(store, "neg", {"x": 2}, "planner", [2.0, 2.1, 1.9], Verdict.NOISE)
    out = compare_trials(store, CompareTrialsInput(study="neg", a=2, b=1))
    assert out.comparison is None and out.decision is None
    assert out.summary.startswith("no comparison: ") and "nan" not in out.summary and "inf" not in out.summary


def test_show_study_reports_the_fastest_trial_as_the_report_does(store: StudyStore) -> None:
    from tunesmith.knowledge.report import build_report

    out = show_study(store, ShowStudyInput(study="ckpt"))
    assert out.fastest_unconfirmed is not None and out.fastest_unconfirmed["number"] == 5
    assert out.fastest_unconfirmed == build_report(store, "ckpt")["best_measured"]
