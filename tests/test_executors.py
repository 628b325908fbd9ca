"""Executors: one candidate at a time, or one per device at once; shared-resource targets stay serial."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tunesmith.agents.study import drive, open_session
from tunesmith.runners.base import Runner, RunResult, RunSpec
from tunesmith.runners.errors import JobError
from tunesmith.runners.executors import (
    EXECUTORS,
    DeviceExecutor,
    EnvRunner,
    SerialExecutor,
    build_executor,
    check_devices,
    resolve_devices,
)
from tunesmith.runners.io.command import CommandTarget
from tunesmith.runners.job import RunnerConfig, parse_job
from tunesmith.tools.plugins import TARGETS


class EchoRunner(Runner):
    """Returns the environment additions it was given, without starting anything."""

    name = "echo"

    def run(self, spec: RunSpec) -> RunResult:
        return RunResult(returncode=0, result=dict(spec.env))


def test_env_runner_adds_its_variables_and_leaves_the_spec_alone(tmp_path: Path) -> None:
    spec = RunSpec(argv=["x"], cwd=tmp_path, env={"A": "1", "CUDA_VISIBLE_DEVICES": "7"})
    wrapped = EnvRunner(EchoRunner(), {"CUDA_VISIBLE_DEVICES": "3"})
    assert wrapped.run(spec).result == {"A": "1", "CUDA_VISIBLE_DEVICES": "3"}
    assert spec.env == {"A": "1", "CUDA_VISIBLE_DEVICES": "7"} and wrapped.name == "echo"


# -- the executors on their own -------------------------------------------------------------------------
class Clock:
    """run_one for the executors: records (item, device, start, end) and sleeps ``seconds``."""

    def __init__(self, seconds: float = 0.3, fail: Any = None) -> None:
        self.seconds, self.fail = seconds, fail
        self.spans: list[tuple[Any, str | None, float, float]] = []
        self.lock = threading.Lock()

    def __call__(self, item: Any, runner: Runner) -> str:
        start = time.monotonic()
        time.sleep(self.seconds / 10 if item == self.fail else self.seconds)  # a failure shows up early
        device = runner.extra_env.get("CUDA_VISIBLE_DEVICES") if isinstance(runner, EnvRunner) else None
        with self.lock:
            self.spans.append((item, device, start, time.monotonic()))
        if item == self.fail:
            raise RuntimeError(f"item {item} broke")
        return f"result {item}"


def overlapping(spans: list[tuple[Any, str | None, float, float]]) -> int:
    """The most spans running at one instant."""
    return max(sum(1 for _, _, s, e in spans if s <= t < e) for _, _, t, _ in spans)


def test_serial_runs_in_order_and_stops_when_asked() -> None:
    clock, seen = Clock(0.01), []
    executor = SerialExecutor(EchoRunner())
    out = executor.run_batch([1, 2, 3, 4], clock, may_start=lambda i: i < 4, on_done=lambda i, r: seen.append(r))
    assert out == seen == ["result 1", "result 2", "result 3"]
    assert [s[0] for s in clock.spans] == [1, 2, 3] and overlapping(clock.spans) == 1 and executor.slots == 1


def test_devices_run_one_candidate_per_device_at_once() -> None:
    clock, seen = Clock(0.3), []
    executor = DeviceExecutor(EchoRunner(), [0, 1])
    out = executor.run_batch([1, 2, 3, 4, 5], clock, on_done=lambda i, r: seen.append(i))
    assert out == [f"result {i}" for i in (1, 2, 3, 4, 5)]  # batch order, whatever the finishing order
    assert sorted(seen) == [1, 2, 3, 4, 5] and executor.slots == 2
    assert overlapping(clock.spans) == 2
    for device in ("0", "1"):  # a device never runs two candidates at once
        mine = [s for s in clock.spans if s[1] == device]
        assert mine and overlapping(mine) == 1


def test_devices_respect_may_start_and_stop_after_a_failure() -> None:
    started: list[int] = []

    def may_start(item: int) -> bool:
        started.append(item)
        return item <= 3

    clock = Clock(0.1)
    assert DeviceExecutor(EchoRunner(), ["0", "1"]).run_batch([1, 2, 3, 4, 5], clock, may_start=may_start) == [
        "result 1", "result 2", "result 3"]
    assert started == [1, 2, 3, 4] and sorted(s[0] for s in clock.spans) == [1, 2, 3]

    broken = Clock(0.5, fail=1)
    with pytest.raises(RuntimeError, match="item 1 broke"):
        DeviceExecutor(EchoRunner(), ["0", "1"]).run_batch([1, 2, 3, 4, 5], broken)
    # 1 and 2 started together; once 1 failed nothing new started, and 2 was allowed to finish
    assert sorted(s[0] for s in broken.spans) == [1, 2]


def test_ctrl_c_interrupts_the_candidates_running_on_other_devices(tmp_path: Path) -> None:
    from tunesmith.runners.local import LocalRunner

    interrupted: list[str] = []

    def run_one(seconds: float, runner: Runner) -> RunResult:
        try:
            return runner.run(RunSpec(argv=["sleep", str(seconds)], cwd=tmp_path / str(seconds)))
        except KeyboardInterrupt:
            interrupted.append(str(seconds))
            raise

    def on_done(seconds: float, result: RunResult) -> None:
        raise KeyboardInterrupt  # Ctrl-C arrives while the long candidate runs on the other device

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        DeviceExecutor(LocalRunner(grace_s=0.5), [0, 1]).run_batch([0.2, 60.0], run_one, on_done=on_done)
    assert interrupted == ["60.0"] and time.monotonic() - start < 20


def test_device_lists_are_checked_and_auto_follows_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_devices([0, "1", "2,3", "GPU-6f1c"]) == ["0", "1", "2,3", "GPU-6f1c"]
    for bad, match in (([0, 0], "'0' is listed twice"), ([-1], "-1 is not a device"), (["a b"], "is not a device"),
                       ([0.5], "0.5 is not a device"), ("all", "'all' is not a list of devices"),
                       (3, "3 is not a list of devices")):
        with pytest.raises(JobError, match=match):
            check_devices(bad)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert resolve_devices("auto") == ["2", "3"]  # this process's own devices, not 0 and 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_devices("auto") == []


class DiskCommand(CommandTarget):
    """The command target declaring that its measurements share the disk."""

    name: ClassVar[str] = "disk_command"
    shared_resource: ClassVar[str | None] = "disk"


TARGETS.register("disk_command", DiskCommand)


def test_build_executor_from_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = EchoRunner()
    assert isinstance(build_executor(RunnerConfig(), runner), SerialExecutor)
    devices = build_executor(RunnerConfig(executor="devices", devices=[0, 1, 2]), runner)
    assert isinstance(devices, DeviceExecutor) and devices.slots == 3 and devices.take_notice() == ""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    none = build_executor(RunnerConfig(executor="devices"), runner)
    assert isinstance(none, SerialExecutor) and "found no GPU" in none.notice
    with pytest.raises(JobError, match="runner.executor: unknown executor 'ray'; fix: use one of devices, serial"):
        build_executor(RunnerConfig(executor="ray"), runner)
    assert EXECUTORS.names() == ["devices", "serial"]
    with pytest.raises(JobError, match="^runner.devices: True is not a device"):  # checked even when serial
        build_executor(parse_job({"name": "d", "target": "command", "runner": {"devices": [True]}}).runner, runner)


def test_a_command_target_with_one_output_folder_stays_serial(tmp_path: Path) -> None:
    job = parse_job({"name": "out", "target": "command", "runner": {"executor": "devices", "devices": [0, 1]},
                     "workload": {"command": ["{python}", "-c", "pass", "{out}"], "output_dir": str(tmp_path)}})
    executor = build_executor(job.runner, EchoRunner(), TARGETS.create("command", job))
    assert isinstance(executor, SerialExecutor) and "shared resource (disk)" in executor.notice
    without = job.model_copy(update={"workload": {"command": ["{python}", "-c", "pass", "{out}"]}})
    assert isinstance(build_executor(job.runner, EchoRunner(), TARGETS.create("command", without)), DeviceExecutor)


# -- whole studies ----------------------------------------------------------------------------------------
WORKLOAD = """\
import json, os, sys, time
log, x, peers = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.time()
open(os.path.join(log, f"started-{x}"), "w").close()
while len([f for f in os.listdir(log) if f.startswith("started-")]) < peers and time.time() - start < 20:
    time.sleep(0.02)  # wait (bounded) for the candidate that should run beside this one
time.sleep(1.0 if peers == 1 else 0.2)
end = time.time()
with open(os.path.join(log, f"x{x}.json"), "w") as f:
    json.dump({"device": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": end}, f)
with open(os.environ["TUNESMITH_RESULT"], "w") as f:
    json.dump({"seconds": end - start}, f)
"""


def study(tmp_path: Path, target: str, name: str, values: list[int], peers: int) -> tuple[list[dict[str, Any]], list[str]]:
    """One candidate per value on two devices; returns each run's record and the run node's messages.

    With ``peers=2`` each run waits for a second one to start (20 s at most): the runs overlap exactly
    when the executor runs them at once, however loaded the machine is.
    """
    script, log = tmp_path / "work.py", tmp_path / f"log-{name}"
    script.write_text(WORKLOAD)
    log.mkdir()
    job = parse_job({
        "name": name, "target": target, "budget": {"trials": len(values)}, "llm": {"mode": "off"},
        "strategy": {"name": "grid"}, "measure": {"repeats": 1, "remeasure": False},
        "runner": {"executor": "devices", "devices": [0, 1], "timeout_s": 60},
        "workload": {"command": ["{python}", str(script), str(log), "{x}", str(peers)], "drop_caches": False,
                     "allow_tmpfs": True, "params": {"x": {"kind": "choice", "values": values, "default": values[0]}}},
    })
    with open_session(job, tmp_path / "state") as session:
        outcome = drive(session)
        messages = [e["message"] for e in session.store.events(name) if e["node"] == "run"]
    assert len(outcome.trials) == len(values) and all(t.measurement.ok for t in outcome.trials), outcome.trials
    return [json.loads(p.read_text()) for p in sorted(log.glob("x*.json"))], messages


def test_a_command_study_runs_two_candidates_at_once_on_two_devices(tmp_path: Path) -> None:
    runs, _ = study(tmp_path, "command", "devices", [1, 2], peers=2)
    assert len(runs) == 2 and {r["device"] for r in runs} == {"0", "1"}  # each on its own device
    (a, b) = runs
    assert max(a["start"], b["start"]) < min(a["end"], b["end"])  # and overlapping in time
    assert max(r["end"] - r["start"] for r in runs) < 15  # neither waited out its peer


def test_a_disk_target_stays_one_at_a_time_and_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    runs, messages = study(tmp_path, "disk_command", "disk", [1, 2, 3, 4], peers=1)
    spans = [(None, r["device"], r["start"], r["end"]) for r in runs]
    assert len(runs) == 4 and overlapping(spans) == 1
    assert {r["device"] for r in runs} == {None}  # no device pinning either
    notes = [m for m in messages if "shared resource" in m]
    assert notes == ["executor 'devices': the disk_command target measures a shared resource (disk); "
                     "running candidates one at a time"]


def test_the_run_node_never_starts_more_trials_than_are_left(tmp_path: Path) -> None:
    from tests.synthetic import SyntheticTarget
    from tunesmith.agents.nodes.execute import run
    from tunesmith.runners.types import Candidate

    TARGETS.register("synthetic", SyntheticTarget)
    job = parse_job({"name": "left", "target": "synthetic", "budget": {"trials": 3}, "llm": {"mode": "off"},
                     "runner": {"executor": "devices", "devices": [0, 1]}})
    queue = [Candidate(config={"threads": t}, origin="sampler").model_dump(exclude={"key"}) for t in (1, 2, 4, 8)]
    with open_session(job, tmp_path) as session:
        assert session.executor is not None and session.executor.slots == 2
        out = run({"queue": queue}, session)
        trials = session.store.trials("left")
        messages = [e["message"] for e in session.store.events("left")]
    assert len(out["finished"]) == len(trials) == 3 and session.target.calls == 3
    assert sorted(t.candidate.config["threads"] for t in trials) == [1, 2, 4]
    assert "not running the rest of the round: trial budget spent (3 trials)" in messages


def test_re_measures_share_one_device_and_run_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Challenger and incumbent re-measured on different GPUs would compare the GPUs, not the configs."""
    from tests.synthetic import SyntheticTarget
    from tunesmith.agents.nodes import execute
    from tunesmith.runners.types import Candidate, Trial

    TARGETS.register("synthetic", SyntheticTarget)
    job = parse_job({"name": "pair", "target": "synthetic", "budget": {"trials": 10}, "llm": {"mode": "off"},
                     "runner": {"executor": "devices", "devices": [3, 5]}})
    seen: list[tuple[str, str | None, float, float]] = []

    def fake_run_candidate(store, study, target, runner, cand, **kw):  # noqa: ANN001, ANN003, ANN202
        start = time.monotonic()
        time.sleep(0.2)
        device = runner.extra_env.get("CUDA_VISIBLE_DEVICES") if isinstance(runner, EnvRunner) else None
        seen.append((cand.origin, device, start, time.monotonic()))
        return Trial(id=len(seen), study=study, number=len(seen), candidate=cand)

    monkeypatch.setattr(execute, "run_candidate", fake_run_candidate)
    again = [Candidate(config={"threads": t}, origin="remeasure").model_dump(exclude={"key"}) for t in (1, 8)]
    with open_session(job, tmp_path) as session:
        assert session.executor.comparison_runner().extra_env == {"CUDA_VISIBLE_DEVICES": "3"}
        execute.run({"queue": again}, session)
    assert [(o, d) for o, d, _, _ in seen] == [("remeasure", "3"), ("remeasure", "3")]
    assert overlapping([(None, d, s, e) for _, d, s, e in seen]) == 1
