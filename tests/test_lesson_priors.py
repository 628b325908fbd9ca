"""Lessons of earlier studies as priors for the offline planner (agents/strategies/lesson_priors.py)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from tunesmith.agents.strategies.lesson_priors import describe_params, map_lessons, ordered_by_priors
from tunesmith.agents.strategies.offline_planner import OfflinePlannerStrategy
from tunesmith.knowledge.reflections import Lesson
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Measurement, Status, Trial, TrialState


def meta_space() -> SearchSpace:
    return SearchSpace(params=(
        Param(name="fanout", kind="choice", default=1, values=(1, 16, 128),
              help="subfolders the files are spread over (directory fan-out)"),
        Param(name="fsync", kind="choice", default="each", values=("each", "dir", "end"),
              help="fsync policy: fsync each file, each folder at the end, or one syncfs at the end"),
        Param(name="queue_depth", kind="choice", default=1, values=(1, 8),
              help="requests the client keeps in flight against the volume"),
    ))


def lesson(name: str, value: str, was: str, role: str = "", help: str = "", confidence: float = 0.6,
           model: str = "template") -> Lesson:
    return Lesson(id=f"{name}-{value}", study="a", domain="io", pattern="x", hardware="cpu", insight=f"{name}={value}",
                  evidence=[1, 2], effect=0.5, model=model, confidence=confidence, rule=True, params={name: value},
                  was=was, role=role, help=help)


def test_a_lesson_maps_by_semantic_role_not_by_name() -> None:
    space = meta_space()
    base = {p.name: p.default for p in space.params}
    assert describe_params(space)["fsync"]["role"] == "fewer-syncs"
    # sync_every (group commit) on a record writer and an fsync policy on a metadata benchmark: one role
    priors = map_lessons([lesson("sync_every", "64", "1", role="fewer-syncs")], space, base)
    assert [(p.param, p.how, p.source_param) for p in priors] == [("fsync", "role", "sync_every")]
    assert priors[0].value is None  # 64 records per sync says which knob matters, not which policy name is best
    # the same name carries its value; a lesson about a knob this space lacks gives nothing
    assert map_lessons([lesson("fanout", "16", "1")], space, base)[0].value == 16
    assert map_lessons([lesson("codec", "zlib", "lzma", help="compressor: zlib, bz2 or lzma")], space, base) == []
    # the same name with another meaning (help texts disagree): half the weight and no value
    (other,) = map_lessons([lesson("fanout", "16", "1", help="threads compressing frames in parallel")], space, base)
    assert other.weight == pytest.approx(0.3) and other.value is None
    # no role, another name, but the same help text: a partial match, weighted by the overlap
    similar = lesson("iodepth", "8", "1", help="requests the client keeps in flight against the volume")
    (by_help,) = map_lessons([similar], space, base)
    assert by_help.param == "queue_depth" and by_help.how == "help" and by_help.value == 8
    # a value is carried by name only: 64 KiB of one workload is not 64 of another unit
    rows = SearchSpace(params=(Param(name="rows_per_write", kind="choice", default=8, values=(8, 64, 512),
                                     help="rows per dataset write (the transfer size)"),))
    (p,) = map_lessons([lesson("transfer_kib", "64", "4", role="larger-transfers")], rows, {"rows_per_write": 8})
    assert p.value == 512  # larger, as the lesson moved: the far end


def test_stronger_lessons_first_and_a_tiny_models_lesson_counts_little() -> None:
    space = meta_space()
    base = {p.name: p.default for p in space.params}
    weak = lesson("fanout", "128", "1", confidence=0.2, model="smollm-135m")  # a tiny local model's start
    strong = lesson("sync_every", "64", "1", role="fewer-syncs", confidence=0.9)
    priors = map_lessons([weak, strong], space, base)
    assert [p.param for p in priors] == ["fsync", "fanout"] and priors[0].weight > 3 * priors[1].weight
    assert ordered_by_priors(["fanout", "queue_depth", "fsync"], priors) == ["fsync", "fanout", "queue_depth"]
    # a contradicted lesson (its confidence lowered by later studies) sinks below the other
    contradicted = lesson("sync_every", "64", "1", role="fewer-syncs", confidence=0.9 * 0.6 * 0.6)
    fresh = lesson("fanout", "128", "1", confidence=0.6)
    assert [p.param for p in map_lessons([contradicted, fresh], space, base)] == ["fanout", "fsync"]


def _score(config: dict) -> float:
    return {"each": 4.0, "dir": 2.0, "end": 1.0}[config["fsync"]] + (0.3 if config["fanout"] == 16 else 0.0)


def _run(strategy: OfflinePlannerStrategy, n: int) -> list[dict]:
    history: list[Trial] = []
    for i in range(n):
        (cand,) = strategy.ask(history, 1)
        m = Measurement(status=Status.OK, samples=[_score(cand.config)] * 3)
        history.append(Trial(study="t", number=i + 1, candidate=cand, state=TrialState.DONE, measurement=m))
    return [t.candidate.config for t in history]


def planner(**kw) -> OfflinePlannerStrategy:
    space = meta_space()
    return OfflinePlannerStrategy(space, Objective(metric="seconds", direction="minimize"), seed=0,
                                  baseline={p.name: p.default for p in space.params}, rules=[], **kw)


def test_withheld_lessons_leave_the_planner_unchanged_and_lessons_reorder_screening() -> None:
    plain = _run(planner(), 6)
    assert _run(planner(lessons=lambda: []), 6) == plain  # no lessons: the very same proposals
    assert plain[1]["fanout"] != 1  # space order: fanout screened first
    taught = _run(planner(lessons=lambda: [lesson("sync_every", "64", "1", role="fewer-syncs")]), 6)
    # the lesson's knob first, over all its values (a knob a lesson names keeps every screening value)
    assert [t["fsync"] for t in taught[1:3]] in (["dir", "end"], ["end", "dir"])
    assert all(t["fanout"] == 1 and t["queue_depth"] == 1 for t in taught[1:3])
    hinted = _run(planner(lessons=lambda: [lesson("fanout", "128", "1")]), 2)  # same name: the value carries
    assert hinted[1] == {"fanout": 128, "fsync": "each", "queue_depth": 1}


def _table(path: Path, params: list[dict], score, rules: list[str]) -> Path:
    names = [p["name"] for p in params]
    records = [{"config": dict(zip(names, combo, strict=True)), "status": "ok",
                "samples": [score(dict(zip(names, combo, strict=True)))] * 3}
               for combo in itertools.product(*[p["values"] for p in params])]
    for p in params:
        p.setdefault("kind", "choice")
    path.write_text(json.dumps({"space": {"params": params}, "objective": {"metric": "seconds", "direction": "minimize",
                                                                           "min_effect": 0.05},
                                "records": records, "signature": f"io/{path.stem}", "rules": rules,
                                "baseline": {p["name"]: p["default"] for p in params}}))
    return path


@pytest.mark.filterwarnings("ignore")
def test_a_real_two_study_transfer_on_replay_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from tunesmith.knowledge.reflections import list_lessons
    from tunesmith.knowledge.vector.store import KnowledgeStore

    writer = _table(tmp_path / "writer.json", [
        {"name": "sync_every", "default": 1, "values": [1, 64], "help": "group commit: fsync after every N records"},
        {"name": "encode", "default": "json", "values": ["json", "csv"], "help": "how a record becomes a line"},
    ], lambda c: (0.5 if c["sync_every"] == 1 else 0.05) * (1.0 if c["encode"] == "json" else 0.99), ["sync_every"])
    meta = _table(tmp_path / "meta.json", [
        {"name": "fanout", "default": 1, "values": [1, 16, 128], "help": "subfolders the files are spread over"},
        {"name": "fsync", "default": "each", "values": ["each", "end"], "help": "fsync policy: each file, or at the end"},
    ], lambda c: (4.0 if c["fsync"] == "each" else 1.0) + {1: 0.0, 16: 0.5, 128: 0.2}[c["fanout"]], [])
    spec = importlib.util.spec_from_file_location("transfer", Path(__file__).parents[1] / "benchmarks" / "transfer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run_study = bench.run_study  # the benchmark's own loop: open_session + drive on the replay target
    ks = tmp_path / "ks"
    KnowledgeStore(ks, "hashing").collection("reflections")
    run_study(writer, tmp_path / "a", name="a", trials=6, seed=0, baseline=None, knowledge=str(ks))
    (rule,) = [x for x in list_lessons(KnowledgeStore(ks)) if x.rule]  # written by the real reflector
    assert rule.params == {"sync_every": "64"} and rule.role == "fewer-syncs" and rule.was == "1"
    taught = run_study(meta, tmp_path / "b1", name="b", trials=8, seed=0, baseline=None, knowledge=str(ks))
    withheld = run_study(meta, tmp_path / "b2", name="b", trials=8, seed=0, baseline=None, knowledge="off")
    assert taught[1]["fsync"] == "end"  # the best, second trial
    assert withheld[1]["fsync"] == "each" and withheld[1]["fanout"] != 1  # space order: fanout first
    assert os.environ.get("TUNESMITH_KNOWLEDGE") != str(ks)  # the benchmark's environment is restored
