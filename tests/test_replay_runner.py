"""Recording real runs and replaying them without starting any process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.runners.base import Runner, RunResult, RunSpec
from tunesmith.runners.errors import JobError
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.replay.runner import NO_RECORDING, RecordingRunner, ReplayRunner, replay_key, spec_key
from tunesmith.runners.runner_registry import RUNNERS


class CountingRunner(Runner):
    """A scripted inner runner: each run returns the next wall time, so repeats are distinguishable."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def run(self, spec: RunSpec) -> RunResult:
        self.calls += 1
        reports = [{"step": i, "loss": 1.0 / (i + 1)} for i in range(4)]
        return RunResult(
            returncode=0,
            wall_s=float(self.calls),
            stdout_tail=" ".join(spec.argv),
            result={"seconds": 0.1 * self.calls},
            reports=reports,
        )


def spec(tmp_path: Path, *argv: str, **kw) -> RunSpec:
    return RunSpec(argv=list(argv), cwd=tmp_path / "scratch", **kw)


def test_key_is_stable_and_sensitive(tmp_path: Path) -> None:
    key = replay_key(["python", "bench.py", "--block", "64"], {"A": "1", "B": "2"})
    assert key == replay_key(["python", "bench.py", "--block", "64"], {"B": "2", "A": "1"})  # env order
    assert key != replay_key(["python", "bench.py", "--block", "128"], {"A": "1", "B": "2"})
    assert key != replay_key(["python", "bench.py", "--block", "64"], {"A": "1"})
    code = (
        "from tunesmith.runners.replay.runner import replay_key;"
        "print(replay_key(['python', 'bench.py', '--block', '64'], {'A': '1', 'B': '2'}))"
    )
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other_process.stdout.strip() == key
    # the scratch folder and the limits are not part of what is measured
    a = spec(tmp_path, "x", timeout_s=5)
    b = RunSpec(argv=["x"], cwd=tmp_path / "elsewhere", memory_mb=None)
    assert spec_key(a) == spec_key(b)


def test_record_then_replay_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "runs.jsonl"
    inner = CountingRunner()
    recorder = RecordingRunner(inner, path)
    s1, s2 = spec(tmp_path, "bench", "--block=64"), spec(tmp_path, "bench", "--block=128", env={"X": "1"})
    recorded = [recorder.run(s1), recorder.run(s1), recorder.run(s2)]
    assert inner.calls == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["key"] for line in lines] == [spec_key(s1), spec_key(s1), spec_key(s2)]
    assert lines[2]["env"] == {"X": "1"} and lines[2]["runner"] == "counting"

    replay = ReplayRunner(path)
    # repeats of one run come back in the order they were recorded, then from the start again
    assert [replay.run(s1).wall_s for _ in range(3)] == [1.0, 2.0, 1.0]
    assert replay.run(s2) == recorded[2]


def test_unrecorded_run_is_a_launch_error(tmp_path: Path) -> None:
    res = ReplayRunner({}).run(spec(tmp_path, "never", "ran"))
    assert res.returncode is None and res.launch_error == NO_RECORDING
    assert "fix: record it first with RecordingRunner" in res.launch_error


def test_built_from_a_dict_of_results_or_dicts(tmp_path: Path) -> None:
    s = spec(tmp_path, "bench")
    replay = ReplayRunner({spec_key(s): [{"returncode": 3, "stderr_tail": "boom"}, RunResult(returncode=0)]})
    assert (replay.run(s).returncode, replay.run(s).returncode) == (3, 0)
    single = ReplayRunner({spec_key(s): {"returncode": 0, "result": {"v": 1}}})
    assert single.run(s).result == {"v": 1}
    added = ReplayRunner()
    assert added.add(s, RunResult(returncode=7)) == spec_key(s)
    assert added.run(s).returncode == 7


def test_replayed_reports_reach_on_report_and_can_stop(tmp_path: Path) -> None:
    s = spec(tmp_path, "train")
    recorded = CountingRunner().run(s)
    replay = ReplayRunner({spec_key(s): recorded})
    seen: list[int] = []
    full = replay.run(s.model_copy(update={"on_report": lambda r: seen.append(r["step"]) or True}))
    assert seen == [0, 1, 2, 3] and not full.stopped_early and full.result == recorded.result

    stopped = replay.run(s.model_copy(update={"on_report": lambda r: r["step"] < 1}))
    assert stopped.stopped_early and stopped.result is None and stopped.returncode != 0
    assert [r["step"] for r in stopped.reports] == [0, 1]
    assert stopped.wall_s == pytest.approx(recorded.wall_s / 2)
    # the recording itself is untouched by a replay that stopped early
    assert replay.run(s).reports == recorded.reports


def test_real_local_run_round_trips(tmp_path: Path) -> None:
    code = "import json, os; print('@@tunesmith {\"x\": 1}'); json.dump({'ok': 1}, open(os.environ['TUNESMITH_RESULT'], 'w'))"
    s = spec(tmp_path, sys.executable, "-c", code)
    live = RecordingRunner(LocalRunner(), tmp_path / "runs.jsonl").run(s)
    assert live.returncode == 0 and live.result == {"ok": 1} and live.reports == [{"x": 1}]
    again = ReplayRunner(tmp_path / "runs.jsonl").run(s)
    assert again == live


def test_bad_recording_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="cannot read recording file"):
        ReplayRunner(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k", "result": {"returncode": 0}}\n{"key": "k", "outcome": 1}\n')
    with pytest.raises(JobError, match="bad.jsonl line 2 is not a run recording") as info:
        ReplayRunner(bad)
    assert "\n" not in str(info.value)


def test_a_line_torn_by_a_kill_is_skipped_and_not_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    s1, s2 = spec(tmp_path, "one"), spec(tmp_path, "two")
    recorder = RecordingRunner(CountingRunner(), path)
    recorder.run(s1)
    with path.open("a") as fh:
        fh.write('{"key": "k", "result": {"retur')  # killed mid-write
    assert set(ReplayRunner(path).recordings) == {spec_key(s1)}
    recorder.run(s2)
    assert set(ReplayRunner(path).recordings) == {spec_key(s1), spec_key(s2)}


def test_replay_is_not_a_job_runner_kind(tmp_path: Path) -> None:
    # a job cannot give the replay runner a recording, so the registry does not offer it
    assert RUNNERS.names() == ["local", "torchrun"]
    with pytest.raises(JobError, match="unknown runner 'replay'; fix: use one of local, torchrun"):
        RUNNERS.get("replay")
    from tunesmith.agents.study import open_session
    from tunesmith.runners.job import parse_job

    job = parse_job({"name": "r", "target": "command", "runner": {"kind": "replay"},
                     "workload": {"command": ["{python}", "-c", "pass"]}})
    with pytest.raises(JobError, match="unknown runner 'replay'"):
        with open_session(job, tmp_path):
            pass
    runner = ReplayRunner()  # built in code, as tests and benchmarks do
    assert runner.name == "replay" and runner.available() == (True, "")
