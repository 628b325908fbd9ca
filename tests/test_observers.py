"""Observers: the trial context runs every process through them, and their metrics land in the measurement."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from tunesmith.knowledge.report import build_report, render_markdown
from tunesmith.knowledge.study_store import StudyStore
from tunesmith.runners.base import Runner, RunResult, RunSpec
from tunesmith.runners.changes import ChangeLedger
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.io.command import CommandTarget
from tunesmith.runners.job import parse_job
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.observers import OBSERVERS, Observer, build_observers
from tunesmith.runners.observers.base import add_to
from tunesmith.runners.observers.resources import UNAVAILABLE, ResourceObserver, judge
from tunesmith.runners.types import Candidate, Measurement, Status
from tunesmith.tools.trials import run_candidate


class ToyObserver(Observer):
    """Marks each run's environment, counts the runs it saw, reports the count and the ledger it was given."""

    name: ClassVar[str] = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def prepare(self, spec: RunSpec, ctx: TrialContext) -> RunSpec:
        return spec.model_copy(update={"env": {**spec.env, "TOY_MARK": "watched"}})

    def collect(self, result: RunResult, ctx: TrialContext) -> None:
        self.seen += 1

    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        return add_to(measurement, metrics={"toy.runs": float(self.seen)},
                      notes=[f"toy: ledger {'given' if ctx.ledger is not None else 'missing'}"])


OBSERVERS.register("toy", "tests.test_observers:ToyObserver")  # the one registry line


class FakeRunner(Runner):
    """Answers every run with the next prepared RunResult and remembers the specs."""

    def __init__(self, results: list[RunResult]) -> None:
        self.results, self.specs = list(results), []

    def run(self, spec: RunSpec) -> RunResult:
        self.specs.append(spec)
        return self.results.pop(0)


def used(cpu: float, wall: float, written: float = 0.0, rss: float = 100.0) -> RunResult:
    res = {"cpu_user_s": cpu * 0.75, "cpu_system_s": cpu * 0.25, "peak_rss_mb": rss,
           "read_bytes": 0.0, "write_bytes": written}
    return RunResult(returncode=0, wall_s=wall, resources=res)


def observed(results: list[RunResult], timed: list[bool], observers=None) -> tuple[Measurement, TrialContext]:
    ctx = TrialContext(runner=FakeRunner(results), workdir=Path("/nonexistent"), repeats=len(results),
                       observers=[ResourceObserver()] if observers is None else observers)
    for flag in timed:
        ctx.run(ctx.spec(["true"]), timed=flag)
    return ctx.finish(Measurement(status=Status.OK, samples=[1.0])), ctx


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch) -> None:
    monkeypatch.setattr("tunesmith.runners.observers.resources.machine_load", lambda: 0.5)


def test_resources_are_the_median_of_the_timed_runs_and_judged_cpu_bound(monkeypatch) -> None:
    monkeypatch.setattr("tunesmith.runners.observers.resources.usable_cores", lambda: 2)
    warm = used(cpu=50.0, wall=1.0, rss=9999)  # an untimed warm-up: must not count
    m, _ = observed([warm, used(3.8, 2.0), used(4.0, 2.0, rss=300), used(3.6, 2.0)], [False, True, True, True])
    assert m.metrics["res.cpu_s"] == pytest.approx(3.8) and m.metrics["res.wall_s"] == 2.0
    assert m.metrics["res.cpu_fraction"] == pytest.approx(1.9) and m.metrics["res.cpu_util"] == pytest.approx(0.95)
    assert m.metrics["res.peak_rss_mb"] == 100.0 and m.metrics["res.cpu_user_s"] == pytest.approx(2.85)
    assert m.notes == ["resource use: CPU-bound: 1.9 of 2 cores busy (little disk I/O); peak RSS 100 MB "
                       "(median of 3 run(s))"]
    assert m.samples == [1.0] and m.status == Status.OK


def test_an_io_bound_run_is_called_waiting_on_io(monkeypatch) -> None:
    monkeypatch.setattr("tunesmith.runners.observers.resources.usable_cores", lambda: 2)
    m, _ = observed([used(0.8, 10.0, written=512e6)], [True])
    assert m.metrics["res.write_mb"] == 512.0 and m.metrics["res.cpu_fraction"] == pytest.approx(0.08)
    assert "waiting on I/O: CPU busy 8 % of the wall time, 512 MB written" in m.notes[0]
    assert "machine load" not in m.notes[0]
    monkeypatch.setattr("tunesmith.runners.observers.resources.machine_load", lambda: 7.5)
    m, _ = observed([used(0.8, 10.0, written=512e6)], [True])
    assert "; machine load 7.5 on 2 cores, other processes competed for the CPU" in m.notes[0]
    assert judge(0.02, 4, 0.0, 0.0).startswith("mostly waiting, not on the disk")
    assert judge(0.5, 4, 3.0, None).startswith("mixed CPU and waiting: CPU busy 50 %")


def test_a_runner_without_resources_says_so_and_adds_no_numbers() -> None:
    m, _ = observed([RunResult(returncode=0, wall_s=1.0)], [True])
    assert m.notes == [UNAVAILABLE] and not any(k.startswith("res.") for k in m.metrics)
    untouched, _ = observed([], [])  # nothing ran (a replayed candidate): nothing to say
    assert untouched.notes == [] and untouched.metrics == {}


def test_observers_prepare_collect_and_a_broken_one_becomes_a_note() -> None:
    class Broken(Observer):
        name = "broken"

        def collect(self, result, ctx):  # noqa: ANN001
            raise ValueError("cannot parse the profile")

        def finish(self, measurement, ctx):  # noqa: ANN001
            return measurement

    toy = ToyObserver()
    m, ctx = observed([RunResult(returncode=0), RunResult(returncode=0)], [True, False], observers=[Broken(), toy])
    assert [s.env["TOY_MARK"] for s in ctx.runner.specs] == ["watched", "watched"]  # type: ignore[union-attr]
    assert m.metrics["toy.runs"] == 2.0 and [r.timed for r in ctx.runs] == [True, False]
    assert "observer broken failed: ValueError: cannot parse the profile" in m.notes


def job_for(tmp_path: Path, observers: list[str] | None = None, **extra):
    (tmp_path / "w.py").write_text(
        "import json, os\n"
        "json.dump({'seconds': 1.0, 'mark': 1.0 if os.environ.get('TOY_MARK') == 'watched' else 0.0},\n"
        "          open(os.environ['TUNESMITH_RESULT'], 'w'))\n")
    measure = {"repeats": 2} if observers is None else {"repeats": 2, "observers": observers}
    data = {"name": "obs", "target": "command", "measure": measure, **extra,
            "workload": {"command": ["{python}", "w.py"], "drop_caches": False}}
    return parse_job(data, base_dir=tmp_path)


def test_a_registered_observer_reaches_the_stored_measurement_through_run_candidate(tmp_path: Path) -> None:
    job = job_for(tmp_path, ["toy", "resources"])
    target, store = CommandTarget(job), StudyStore(tmp_path / "db.sqlite")
    store.open_study(job)
    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    trial = run_candidate(store, "obs", target, LocalRunner(poll_s=0.05), target.baseline(),
                          scratch_root=tmp_path / "scratch", repeats=2, ledger=ledger)
    stored = store.trials("obs")[-1].measurement
    assert trial.measurement == stored and stored.status == Status.OK, stored.detail
    assert stored.metrics["mark"] == 1.0, "the observer's prepare did not reach the workload"
    assert stored.metrics["toy.runs"] == 2.0 and "toy: ledger given" in stored.notes
    resource_notes = [n for n in stored.notes if n.startswith("resource use")]
    assert len(resource_notes) == 1 and "median of 2 run(s)" in resource_notes[0]  # the local runner measures
    assert stored.metrics["res.cpu_s"] > 0 and stored.metrics["res.peak_rss_mb"] > 1 and "res.write_mb" in stored.metrics
    none = run_candidate(store, "obs", target, LocalRunner(poll_s=0.05), Candidate(config={}, origin="remeasure"),
                         scratch_root=tmp_path / "scratch", repeats=1, observers=())
    assert "toy.runs" not in none.measurement.metrics and none.measurement.notes == []
    markdown = render_markdown(build_report(store, "obs"))
    assert "## Resource use" in markdown and f"- #{trial.number}: " in markdown and resource_notes[0] in markdown
    store.close()


def test_the_job_selects_observers_and_unknown_names_are_one_line_errors(tmp_path: Path) -> None:
    assert [o.name for o in build_observers(job_for(tmp_path).measure.observers)] == ["resources"]
    with pytest.raises(JobError, match=r"measure.observers: unknown observer 'nsight'; fix: use one of "):
        CommandTarget(job_for(tmp_path, ["nsight"]))


def test_only_observers_that_change_the_runs_enter_the_definition_hash(tmp_path: Path) -> None:
    default = job_for(tmp_path).definition_hash()
    assert job_for(tmp_path, []).definition_hash() == default  # the passive resources observer is not hashed
    assert "observers" not in job_for(tmp_path).definition()["measure"]
    assert job_for(tmp_path, ["toy"]).definition_hash() != default  # toy wraps the environment
    assert job_for(tmp_path, ["resources", "toy"]).definition()["measure"]["observers"] == ["toy"]
