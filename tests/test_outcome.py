"""The one mapping from a run's result to a status (runners/outcome.py), shared by every target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.runners.base import RunResult
from tunesmith.runners.outcome import classify_run, exit_description, result_problem
from tunesmith.runners.types import Status


def ok(**result) -> RunResult:
    return RunResult(returncode=0, result={"seconds": 1.5, **result})


def test_runner_failures_come_first_in_a_fixed_order() -> None:
    both = RunResult(returncode=None, launch_error="no such file", timed_out=True)
    assert classify_run(both) == (Status.INFRASTRUCTURE, "could not start the workload: no such file")
    st, detail = classify_run(RunResult(returncode=-15, timed_out=True, memory_exceeded=True), timeout_s=2)
    assert st == Status.TIMEOUT and "exceeded the 2 s wall-time limit (runner.timeout_s)" in detail
    st, detail = classify_run(RunResult(returncode=-9, memory_exceeded=True), memory_mb=100)
    assert st == Status.RUNTIME and detail == "out of memory (the process tree exceeded the runner's 100 MB limit)"
    st, detail = classify_run(RunResult(returncode=-9, stopped_early=True, reports=[{}, {}]))
    assert st == Status.RUNTIME and "after 2 report(s)" in detail


def test_exit_codes_constraints_and_signals() -> None:
    refused = RunResult(returncode=78, stderr_tail="x\nO_DIRECT refused\n")
    assert classify_run(refused, constraint_exit_codes=[78]) == (Status.CONSTRAINTS, "O_DIRECT refused")
    assert classify_run(refused) == (Status.RUNTIME, "O_DIRECT refused")  # 78 is not special unless named
    assert classify_run(RunResult(returncode=3)) == (Status.RUNTIME, "exit code 3")
    st, detail = classify_run(RunResult(returncode=-11, stderr_tail="Segmentation fault\n"))
    assert st == Status.RUNTIME and detail == "Segmentation fault (killed by SIGSEGV)"
    assert "out-of-memory killer" in exit_description(-9)


def test_hooks_run_before_the_generic_exit_mapping() -> None:
    def oom(res: RunResult):
        return (Status.RUNTIME, "out of memory (rank 1)") if res.returncode == 4 else None

    assert classify_run(RunResult(returncode=4), failure=[oom], constraint_exit_codes=[4]) == (
        Status.RUNTIME, "out of memory (rank 1)")
    assert classify_run(RunResult(returncode=4), failure=(), constraint_exit_codes=[4])[0] == Status.CONSTRAINTS
    hint = classify_run(RunResult(returncode=-9, timed_out=True), timeout_s=5, timeout_hint=lambda r: "; raise it")
    assert hint == (Status.TIMEOUT, "timed out: exceeded the 5 s wall-time limit; raise it")

    def needs_steps(out: dict):
        return None if "step_s" in out else (Status.RUNTIME, "no step_s")

    assert classify_run(ok(), result_check=needs_steps) == (Status.RUNTIME, "no step_s")
    assert classify_run(ok(step_s=[1]), result_check=needs_steps, metric_key="seconds") is None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "wrote no result JSON (to $TUNESMITH_RESULT)"),
        ("[1, 2]", "result.json is a JSON list, not an object"),
        ('"done"', "result.json is a JSON string, not an object"),
        ("{oops", "result.json is not valid JSON ("),
    ],
)
def test_a_missing_or_unusable_result_file_is_named(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    st, detail = classify_run(RunResult(returncode=0), result_path=path)
    assert st == Status.RUNTIME and words in detail
    assert words in result_problem(path)


def test_a_run_without_a_result_can_be_fine_when_none_is_required() -> None:
    assert classify_run(RunResult(returncode=0), require_result=False) is None


def test_result_checks_correctness_and_the_metric() -> None:
    bad = classify_run(ok(correct=False, verify_error="crc mismatch"), metric_key="seconds")
    assert bad == (Status.CORRECTNESS, "the workload reported correct=false: crc mismatch")
    for value in (float("nan"), True, "1.0", None):
        st, detail = classify_run(ok(seconds=value), metric_key="seconds")
        assert st == Status.RUNTIME and detail == "the result JSON has no finite number 'seconds'"
    assert classify_run(ok(), metric_key="seconds") is None
    assert classify_run(ok(), metric_key="mb_per_s")[0] == Status.RUNTIME
    assert classify_run(ok()) is None  # no metric asked for: any object will do


def test_the_command_target_reports_a_json_list_result(tmp_path: Path) -> None:
    """Through the real runner: the local runner drops a non-object result, the mapping says why."""
    from tunesmith.runners.context import TrialContext
    from tunesmith.runners.io.command import CommandTarget
    from tunesmith.runners.job import parse_job
    from tunesmith.runners.local import LocalRunner
    from tunesmith.runners.types import Candidate

    script = tmp_path / "w.py"
    script.write_text("import json, os\njson.dump([1, 2], open(os.environ['TUNESMITH_RESULT'], 'w'))\n")
    job = parse_job({"name": "l", "target": "command",
                     "workload": {"command": ["{python}", "w.py"], "drop_caches": False}}, base_dir=tmp_path)
    target = CommandTarget(job)
    ctx = TrialContext.for_job(job, LocalRunner(poll_s=0.05), tmp_path / "work", repeats=1, observers=())
    m = target.evaluate(Candidate(config={}), ctx)
    assert m.status == Status.RUNTIME and m.detail == "run 1/1: result.json is a JSON list, not an object"
    assert json.loads((tmp_path / "work" / "run-0" / "result.json").read_text()) == [1, 2]
