"""One conformance suite for every runner that executes processes here; adding a runner is one parameter.

Each case runs the same workload script. Under torchrun it runs as 2 workers: it checks RANK and
WORLD_SIZE, rank 0 writes result.json and reports, and every rank leaves a grandchild behind in the
timeout test. ``startup_s`` and ``overhead_mb`` are what the runner itself costs (torchrun's launcher
imports torch), so limits are set relative to them.
"""

from __future__ import annotations

import _thread
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tunesmith.runners.base import Runner, RunResult, RunSpec
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.runner_registry import RUNNERS
from tunesmith.runners.training.torchrun import TorchrunRunner, torchrun_argv

WORKLOAD = r"""
import json, os, signal, subprocess, sys, time
mode = sys.argv[1]
rank = int(os.environ.get("RANK", "0"))
world = int(os.environ.get("WORLD_SIZE", "1"))
assert world == int(os.environ["EXPECT_WORLD"]), ("WORLD_SIZE", world)
assert 0 <= rank < world, ("RANK", rank)
if mode == "ok":
    print(f"hello from rank {rank}")
    print(f"note from rank {rank}", file=sys.stderr)
    if rank == 0:
        print('@@tunesmith {"step": 1, "loss": 0.5}')
        print("@@tunesmith not json")
        result = {"value": 42, "world": world, "extra": os.environ.get("EXTRA")}
        with open(os.environ["TUNESMITH_RESULT"], "w") as fh:
            json.dump(result, fh)
elif mode == "crash":
    if rank == world - 1:
        raise RuntimeError(f"boom in rank {rank}")
    time.sleep(0.5)
elif mode == "hang":
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    child = subprocess.Popen([sys.executable, "-c", code])
    with open(f"pids-{rank}.json", "w") as fh:
        json.dump({"self": os.getpid(), "grandchild": child.pid}, fh)
    print("ready")
    time.sleep(120)
elif mode == "hog":
    hoard = []
    for _ in range(40):  # up to 2 GB, 50 MB at a time, every byte touched
        hoard.append(bytearray(b"x" * (50 << 20)) if rank == 0 else b"")
        time.sleep(0.02)
    time.sleep(30)
elif mode == "chatty":
    for step in range(200):
        if rank == 0:
            print("@@tunesmith " + json.dumps({"step": step}))
        time.sleep(0.05)
"""


@dataclass
class Case:
    """A runner under test and what the runner itself costs in time and memory."""

    name: str
    make: Callable[[], Runner]
    nproc: int = 1
    startup_s: float = 1.0
    overhead_mb: int = 50
    exit_code_passes_through: bool = True


CASES = [
    Case("local", lambda: LocalRunner(grace_s=0.5)),
    Case(
        "torchrun",
        lambda: TorchrunRunner(LocalRunner(grace_s=0.5)),
        nproc=2,
        startup_s=4.0,
        overhead_mb=400,
        exit_code_passes_through=False,
    ),
]


MEASURED_START: dict[str, float] = {}  # case name -> wall time of its last complete run


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    ok, why = c.make().available()
    if not ok:
        pytest.skip(f"{c.name} runner unavailable: {why}")
    return c


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "workload.py"
    path.write_text(WORKLOAD)
    return path


def spec_for(case: Case, script: Path, mode: str, tmp_path: Path, **kw) -> RunSpec:
    env = {"EXPECT_WORLD": str(case.nproc), **kw.pop("env", {})}
    kw.setdefault("timeout_s", case.startup_s + 20)
    kw.setdefault("memory_mb", case.overhead_mb + 200)
    return RunSpec(
        argv=[sys.executable, str(script), mode], cwd=tmp_path / "scratch", env=env, nproc=case.nproc, **kw
    )


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_success_result_tails_and_reports(case: Case, script: Path, tmp_path: Path) -> None:
    seen: list[dict] = []
    spec = spec_for(
        case, script, "ok", tmp_path, env={"EXTRA": "yes"}, on_report=lambda r: seen.append(r) or True
    )
    res = case.make().run(spec)
    assert res.launch_error == ""
    assert res.returncode == 0, res.stderr_tail
    assert not (res.timed_out or res.memory_exceeded or res.stopped_early)
    assert res.result == {"value": 42, "world": case.nproc, "extra": "yes"}
    for rank in range(case.nproc):
        assert f"hello from rank {rank}" in res.stdout_tail
        assert f"note from rank {rank}" in res.stderr_tail
    assert res.reports == [{"step": 1, "loss": 0.5}]  # the malformed report line is not a report
    assert seen == res.reports
    assert res.wall_s > 0
    MEASURED_START[case.name] = res.wall_s  # lets the timeout test skip attempts on a loaded machine


def test_failure_is_a_result_not_an_exception(case: Case, script: Path, tmp_path: Path) -> None:
    res = case.make().run(spec_for(case, script, "crash", tmp_path))
    assert res.launch_error == ""
    assert res.returncode not in (0, None)
    if case.exit_code_passes_through:
        assert res.returncode == 1
    assert f"boom in rank {case.nproc - 1}" in res.stderr_tail
    assert res.result is None and not res.timed_out


def test_timeout_kills_the_whole_group(case: Case, script: Path, tmp_path: Path) -> None:
    # The timeout counts from launch; if a loaded machine starts the workers later than that, retry longer.
    startup = max(case.startup_s, 1.5 * MEASURED_START.get(case.name, 0.0))
    for timeout in (startup + 1.0, 3 * startup + 1.0, 8 * startup + 1.0):
        spec = spec_for(case, script, "hang", tmp_path, timeout_s=timeout)
        t0 = time.monotonic()
        res = case.make().run(spec)
        assert res.timed_out and not res.memory_exceeded and not res.stopped_early
        assert res.returncode != 0
        assert time.monotonic() - t0 < spec.timeout_s + 10
        pid_files = [spec.cwd / f"pids-{rank}.json" for rank in range(case.nproc)]
        if all(f.exists() for f in pid_files):
            break
    for rank, pid_file in enumerate(pid_files):
        pids = json.loads(pid_file.read_text())
        assert gone(pids["self"]), f"rank {rank} survived the timeout"
        assert gone(pids["grandchild"]), f"rank {rank}'s grandchild (ignores SIGTERM) survived"


def test_memory_limit_kills_the_tree(case: Case, script: Path, tmp_path: Path) -> None:
    res = case.make().run(spec_for(case, script, "hog", tmp_path))
    assert res.memory_exceeded, (res.returncode, res.stderr_tail[-500:])
    assert not res.timed_out
    assert res.returncode != 0  # killed: the workload itself would sleep 30 s, then exit 0


def test_report_can_stop_the_run(case: Case, script: Path, tmp_path: Path) -> None:
    calls: list[int] = []

    def keep_going(report: dict) -> bool:
        calls.append(report["step"])
        return report["step"] < 2

    res = case.make().run(spec_for(case, script, "chatty", tmp_path, on_report=keep_going))
    assert res.stopped_early and not res.timed_out
    assert calls == [0, 1, 2]  # nothing is passed on after the stop
    assert [r["step"] for r in res.reports] == [0, 1, 2]
    assert res.returncode != 0  # killed: the full run exits 0 after 200 reports


def test_missing_executable_is_a_launch_error(case: Case, script: Path, tmp_path: Path) -> None:
    spec = spec_for(case, script, "ok", tmp_path)
    spec = spec.model_copy(update={"argv": ["/nonexistent/bin/python3", *spec.argv[1:]]})
    res = case.make().run(spec)
    assert res.returncode is None
    assert "no such file" in res.launch_error and "\n" not in res.launch_error


# -- runner-specific behaviour --------------------------------------------------------------------------
def local_spec(tmp_path: Path, code: str, **kw) -> RunSpec:
    return RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run", **kw)


def test_registry_names_the_runners() -> None:
    assert {"local", "torchrun"} <= set(RUNNERS.names())
    assert RUNNERS.get("local") is LocalRunner
    assert RUNNERS.get("torchrun") is TorchrunRunner


def test_malformed_result_json_becomes_a_note(tmp_path: Path) -> None:
    code = "import os; open(os.environ['TUNESMITH_RESULT'], 'w').write('{not json')"
    res = LocalRunner().run(local_spec(tmp_path, code))
    assert res.returncode == 0 and res.result is None
    assert "result.json is not valid JSON" in res.stderr_tail


def test_stale_result_is_not_read_and_tails_are_bounded(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "result.json").write_text('{"stale": true}')
    res = LocalRunner(tail_chars=1000).run(local_spec(tmp_path, "print('x' * 5000 + 'END')"))
    assert res.result is None
    assert len(res.stdout_tail) == 1000 and res.stdout_tail.rstrip().endswith("END")


def test_background_leftover_is_killed_after_a_normal_exit(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "open('leftover.pid', 'w').write(str(p.pid))"
    )
    t0 = time.monotonic()
    res = LocalRunner(grace_s=0.5).run(local_spec(tmp_path, code))
    assert res.returncode == 0
    assert time.monotonic() - t0 < 10  # did not wait for the leftover holding the stdout pipe
    assert gone(int((tmp_path / "run" / "leftover.pid").read_text()))


def test_interrupt_in_the_parent_leaves_no_orphans(tmp_path: Path) -> None:
    code = (
        "import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "open('pids', 'w').write(f'{os.getpid()} {p.pid}'); time.sleep(60)"
    )
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            LocalRunner(grace_s=0.5).run(local_spec(tmp_path, code))
    finally:
        timer.cancel()
    for pid in (tmp_path / "run" / "pids").read_text().split():
        assert gone(int(pid))


def test_failing_callback_kills_the_run_and_propagates(tmp_path: Path) -> None:
    code = "import time\nfor i in range(100):\n    print('@@tunesmith {\"i\": %d}' % i); time.sleep(0.05)"

    def explode(report: dict) -> bool:
        raise ValueError("scheduler bug")

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="scheduler bug"):
        LocalRunner(grace_s=0.5).run(local_spec(tmp_path, code, on_report=explode))
    assert time.monotonic() - t0 < 4


def test_permission_denied_and_empty_argv(tmp_path: Path) -> None:
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o644)
    res = LocalRunner().run(RunSpec(argv=[str(tool)], cwd=tmp_path / "run"))
    assert res.returncode is None and "permission denied" in res.launch_error
    res = LocalRunner().run(RunSpec(argv=[], cwd=tmp_path / "run"))
    assert res.returncode is None and "empty command" in res.launch_error


def test_torchrun_command_line() -> None:
    py = sys.executable
    assert torchrun_argv([py, "train.py", "--lr", "1"], 4) == [
        py, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=4",
        "train.py", "--lr", "1",
    ]  # fmt: skip
    assert torchrun_argv(["python3", "-m", "pkg.train"], 2)[-3:] == ["--nproc-per-node=2", "-m", "pkg.train"]
    spec = RunSpec(argv=[py, "t.py"], cwd=Path("/tmp"), env={"OMP_NUM_THREADS": "4"})
    assert TorchrunRunner().prepare(spec).env["OMP_NUM_THREADS"] == "4"
    assert TorchrunRunner().prepare(spec.model_copy(update={"env": {}})).env["OMP_NUM_THREADS"] == "1"
    for bad in (["bash", "t.sh"], [py], [py, "-u", "t.py"], [py, "-m"]):
        res: RunResult = TorchrunRunner().run(RunSpec(argv=bad, cwd=Path("/tmp/unused")))
        assert res.returncode is None and "fix:" in res.launch_error, bad


def test_environment_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYER", "parent")
    spec = local_spec(tmp_path, "", env={"LAYER": "spec"})
    env = LocalRunner().environment(spec)
    assert env["LAYER"] == "spec" and env["TUNESMITH_RESULT"] == str(spec.result_path)
    assert os.environ["LAYER"] == "parent"
