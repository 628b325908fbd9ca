"""Containment: nothing a run starts outlives it, a killed tunesmith's leftovers are reaped on resume,
report lines are bounded in memory, and the run's resource use is measured for the whole tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tunesmith.runners import local as local_module
from tunesmith.runners.base import RunSpec
from tunesmith.runners.cgroup_pool import sweep_dead_owners
from tunesmith.runners.containment import TOKEN_ENV, Cgroup, RunRecords, reap_leftovers
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.spawn import launcher

# A workload that leaves a daemon behind: fork, setsid, fork again, exec `sleep 300`; the middle process
# exits at once so the daemon is re-parented away from the workload, then the workload itself exits 0.
DAEMONIZE = r"""
import os, sys, time
pid_file = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, str(os.getpid()).encode()); os.close(w)
        os.execvp("sleep", ["sleep", "300"])
    os._exit(0)
os.close(w)
pid = os.read(r, 32).decode()
open(pid_file, "w").write(pid)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""

HAS_CGROUP = Cgroup.create(f"probe-{os.getpid()}") is not None


def _cleanup_probe() -> None:
    group = Cgroup.create(f"probe-{os.getpid()}")
    if group is not None:
        group.remove()


_cleanup_probe()


@pytest.fixture(params=["setpriv", "preexec"])
def spawn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the runner starts the child: behind the setpriv launcher, or with the preexec_fn fallback."""
    if request.param == "setpriv" and launcher() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    if request.param == "preexec":
        monkeypatch.setattr(local_module, "launcher", lambda: None)
    return request.param


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while running(pid) and time.monotonic() < end:
        time.sleep(0.05)
    return not running(pid)


def daemon_spec(tmp_path: Path, linger_s: float = 0.0) -> RunSpec:
    script = tmp_path / "daemonize.py"
    script.write_text(DAEMONIZE)
    return RunSpec(argv=[sys.executable, str(script), str(tmp_path / "daemon.pid"), str(linger_s)],
                   cwd=tmp_path / "run", timeout_s=60)


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "subreaper"])
def test_setsid_double_forked_grandchild_ends_with_the_run(tmp_path: Path, cgroups: bool, spawn: str) -> None:
    if cgroups and not HAS_CGROUP:
        pytest.skip("no writable cgroup here")
    res = LocalRunner(grace_s=0.5, cgroups=cgroups).run(daemon_spec(tmp_path))
    assert res.returncode == 0, res.stderr_tail
    daemon = int((tmp_path / "daemon.pid").read_text())
    try:
        assert not running(daemon), "the setsid + double-fork daemon outlived its run"
        me = os.getpid()
        leftovers = [p for p in psutil.Process(me).children() if p.pid == daemon]
        assert not leftovers, "the daemon was re-parented to us but never reaped (a zombie)"
    finally:
        if running(daemon):
            os.kill(daemon, signal.SIGKILL)


def _run_cgroup(res: object) -> str:
    """The pids (or v2) cgroup path a workload printed from /proc/self/cgroup."""
    line = next(ln for ln in res.stdout_tail.splitlines() if ":pids:" in ln or ln.startswith("0::"))
    return line.split(":", 2)[2]


def _cgroup_dir(path: str) -> Path:
    root = Path("/sys/fs/cgroup")
    return root / path.lstrip("/") if (root / "cgroup.controllers").exists() else root / "pids" / path.lstrip("/")


@pytest.mark.skipif(not HAS_CGROUP, reason="no writable cgroup here")
def test_a_run_gets_its_own_cgroup_reused_by_the_next_run_and_removed_on_close(tmp_path: Path, spawn: str) -> None:
    code = "print(open('/proc/self/cgroup').read())"
    runner = LocalRunner()
    try:
        first = runner.run(RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run"))
        second = runner.run(RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run"))
        assert first.returncode == 0 and second.returncode == 0
        path = _run_cgroup(first)
        assert "/tunesmith/" in path and _run_cgroup(second) == path  # one cgroup, reused
        assert runner.pool.made == 1
        assert _cgroup_dir(path).exists() and not (_cgroup_dir(path) / "cgroup.procs").read_text().split()
    finally:
        runner.close()
    assert not _cgroup_dir(path).exists()


@pytest.mark.skipif(not HAS_CGROUP, reason="no writable cgroup here")
def test_consecutive_runs_in_a_reused_cgroup_each_report_their_own_resources(tmp_path: Path, spawn: str) -> None:
    """CPU time and the memory peak are per run, not cumulative over the runs that shared the cgroup."""
    burn = ("import time\nprint(open('/proc/self/cgroup').read())\ndata = bytearray(60 << 20)\n"
            "end = time.process_time() + 0.5\nwhile time.process_time() < end: data[0] = 1\n")
    idle = "print(open('/proc/self/cgroup').read())"
    runner = LocalRunner()
    try:
        busy = runner.run(RunSpec(argv=[sys.executable, "-c", burn], cwd=tmp_path / "run"))
        quiet = runner.run(RunSpec(argv=[sys.executable, "-c", idle], cwd=tmp_path / "run"))
    finally:
        runner.close()
    assert busy.returncode == 0 and quiet.returncode == 0, busy.stderr_tail + quiet.stderr_tail
    assert _run_cgroup(busy) == _run_cgroup(quiet)  # the same cgroup served both runs
    b, q = busy.resources, quiet.resources
    assert b["cpu_user_s"] + b["cpu_system_s"] >= 0.45
    assert 0 < q["cpu_user_s"] + q["cpu_system_s"] < 0.3, q  # its own start-up only, not the 0.5 s before it
    assert b["peak_charged_mb"] >= 60
    assert q["peak_charged_mb"] < 40, q  # not the earlier run's 60 MB


@pytest.mark.skipif(not HAS_CGROUP, reason="no writable cgroup here")
def test_idle_cgroups_of_a_killed_tunesmith_are_swept(tmp_path: Path) -> None:
    """A pooled cgroup holds no run record; reap_leftovers removes it once its owner is gone."""
    host = subprocess.Popen([sys.executable, "-c", POOL_HOST, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        path = host.stdout.readline().strip()
        assert "/tunesmith/" in path, path
        assert _cgroup_dir(path).exists()  # kept for a next run
        host.kill()  # kill -9 between runs: nothing removes the idle cgroup
        host.wait()
        assert _cgroup_dir(path).exists()
        reap_leftovers(tmp_path / "scratch")
        assert not _cgroup_dir(path).exists()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


POOL_HOST = r"""
import sys, time
from pathlib import Path
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.base import RunSpec
runner = LocalRunner()  # alive until the kill: its idle cgroup is not removed before
res = runner.run(RunSpec(argv=["cat", "/proc/self/cgroup"], cwd=Path(sys.argv[1]) / "run"))
line = next(ln for ln in res.stdout_tail.splitlines() if ":pids:" in ln or ln.startswith("0::"))
print(line.split(":", 2)[2], flush=True)
time.sleep(300)
"""


def test_kill_9_of_tune_run_leaves_a_daemon_that_the_resume_reaps(tmp_path: Path) -> None:
    """kill -9 of `tune run` mid-trial: the workload dies with it, its daemon is ended by the next run."""
    work = tmp_path / "job"
    work.mkdir()
    (work / "daemonize.py").write_text(DAEMONIZE)
    (work / "wl.py").write_text(
        "import json, os, subprocess, sys, time\n"
        f"marker = {str(work / 'first-run-done')!r}\n"
        "if not os.path.exists(marker):\n"
        f"    subprocess.run([sys.executable, {str(work / 'daemonize.py')!r}, {str(work / 'daemon.pid')!r}])\n"
        f"    open({str(work / 'workload.pid')!r}, 'w').write(str(os.getpid()))\n"
        "    open(marker, 'w').close()\n"
        "    time.sleep(300)\n"
        "json.dump({'seconds': 0.01}, open(os.environ['TUNESMITH_RESULT'], 'w'))\n"
    )
    (work / "job.toml").write_text(
        'name = "reap"\ntarget = "command"\n'
        '[workload]\ncommand = ["{python}", "wl.py", "--n", "{n}"]\nallow_tmpfs = true\ndrop_caches = false\n'
        '[workload.params.n]\nkind = "choice"\nvalues = [1]\ndefault = 1\n'
        "[budget]\ntrials = 1\n[measure]\nrepeats = 1\nremeasure = false\n[runner]\ntimeout_s = 120\n"
        '[strategy]\nname = "grid"\n'
    )
    (work / "wl.py").chmod(0o755)
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(work / "job.toml"),
           "--state-dir", str(state), "--llm", "off", "--plain"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    daemon = workload = 0
    try:
        end = time.monotonic() + 120
        while not (work / "workload.pid").exists() and time.monotonic() < end and first.poll() is None:
            time.sleep(0.1)
        assert (work / "workload.pid").exists(), first.stdout.read().decode()[-2000:] if first.poll() is not None else ""
        daemon, workload = int((work / "daemon.pid").read_text()), int((work / "workload.pid").read_text())
        assert running(daemon) and running(workload)
        first.kill()  # kill -9 of `tune run` mid-trial
        first.wait()
        assert wait_gone(workload, 10), "the workload outlived a kill -9 of tunesmith"
        assert running(daemon)  # the daemon is not ours to see any more: only a record says it belongs to the run
        assert list((state / "scratch" / "running").glob("*.json"))
        second = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
        assert wait_gone(daemon, 10), "the resumed study did not end the daemon the killed run left behind"
        assert not list((state / "scratch" / "running").glob("*.json"))
    finally:
        if first.poll() is None:
            first.kill()
        for pid in (daemon, workload):
            if pid and running(pid):
                os.kill(pid, signal.SIGKILL)


def test_reap_leftovers_spares_a_live_owner_and_ends_a_dead_ones(tmp_path: Path) -> None:
    token_dead, token_live = "deadbeef00000001", "deadbeef00000002"
    procs = {t: subprocess.Popen(["sleep", "300"], env={**os.environ, TOKEN_ENV: t}, start_new_session=True)
             for t in (token_dead, token_live)}
    try:
        folder = tmp_path / "scratch" / "running"
        folder.mkdir(parents=True)
        dead_owner = {"pid": 2**22 + 7, "create_time": 1.0}  # no such process
        parent = psutil.Process(os.getppid())
        live_owner = {"pid": parent.pid, "create_time": parent.create_time()}
        for name, owner, token in (("1.json", dead_owner, token_dead), ("2.json", live_owner, token_live)):
            p = psutil.Process(procs[token].pid)
            run = {"pid": p.pid, "create_time": p.create_time(), "cgroups": {}}
            (folder / name).write_text(json.dumps({"owner": owner, "runs": {token: run}}))
        assert reap_leftovers(tmp_path / "scratch") >= 1
        assert wait_gone(procs[token_dead].pid)
        assert running(procs[token_live].pid)  # another live tunesmith's run is left alone
        assert not (folder / "1.json").exists() and (folder / "2.json").exists()
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_run_records_follow_live_runs(tmp_path: Path) -> None:
    records = RunRecords(tmp_path)
    records.add("t1", cgroups={})
    records.add("t1", pid=123, create_time=4.5)
    data = json.loads(records.path.read_text())
    assert data["owner"]["pid"] == os.getpid() and data["runs"]["t1"] == {"cgroups": {}, "pid": 123, "create_time": 4.5}
    records.add("t2", cgroups={"pids": "/a/much/longer/path/than/before"})
    records.remove("t2")
    records.remove("t1")  # rewritten in place: shorter content is padded, still one JSON object
    assert json.loads(records.path.read_text())["runs"] == {}
    records.close()
    assert not records.path.exists()


def test_report_lines_are_bounded_in_memory(tmp_path: Path) -> None:
    """80 MB of report lines: tunesmith keeps the latest 1000 and counts the rest, its RSS stays flat."""
    n, pad = 160_000, "x" * 480  # ~80 MB of lines
    code = (
        "import sys\nw = sys.stdout.write\n"
        f"for i in range({n}):\n    w('@@tunesmith {{\"step\": %d, \"pad\": \"{pad}\"}}\\n' % i)\n"
    )
    seen = [0]

    def count(report: dict) -> bool:
        seen[0] += 1
        return True

    me = psutil.Process()
    before = me.memory_info().rss
    res = LocalRunner().run(RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run", timeout_s=300,
                                    on_report=count))
    growth_mb = (me.memory_info().rss - before) / 2**20
    assert res.returncode == 0, res.stderr_tail
    assert seen[0] == n  # the scheduler still sees every report
    assert len(res.reports) + res.reports_dropped == n
    assert len(res.reports) <= 1000 and sum(len(json.dumps(r)) for r in res.reports) <= 1.1 * 2**20
    assert res.reports[-1]["step"] == n - 1  # the latest are kept
    assert growth_mb < 60, f"tunesmith grew by {growth_mb:.0f} MB for 80 MB of report lines"


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "rusage"])
def test_resources_cover_the_whole_tree(tmp_path: Path, cgroups: bool) -> None:
    if cgroups and not HAS_CGROUP:
        pytest.skip("no writable cgroup here")
    burn = (
        "import os, time\n"
        "end = time.process_time() + 0.4\n"
        "while time.process_time() < end: pass\n"
        "data = bytearray(os.urandom(1)) * (40 << 20)\n"  # ~40 MB resident
        "fd = os.open('out.bin', os.O_WRONLY | os.O_CREAT); os.write(fd, b'y' * (8 << 20)); os.fsync(fd)\n"
    )
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"
    res = LocalRunner(cgroups=cgroups).run(RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run"))
    assert res.returncode == 0, res.stderr_tail
    r = res.resources
    assert r["cpu_user_s"] + r["cpu_system_s"] >= 0.35  # the grandchild's busy loop counts
    assert r["peak_rss_mb"] >= 40
    assert r["write_bytes"] >= 8 << 20  # written and fsynced by the grandchild
    assert r["read_bytes"] >= 0
    if cgroups:
        assert r.get("peak_charged_mb", 0) >= 40


@pytest.mark.parametrize("how", ["join", "preexec"])
@pytest.mark.parametrize("root", ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"], ids=["default", "v2-unified"])
def test_cgroup_holds_descendants_and_counts_their_cpu(root: str, how: str) -> None:
    from tunesmith.runners.containment import child_setup

    group = Cgroup.create(f"t-{os.getpid()}", root=Path(root))
    if group is None:
        pytest.skip(f"no writable cgroup under {root}")
    try:
        # The child waits for a line on stdin before it starts its detached descendant, so a join from
        # the parent is done before anything forks (no race with a loaded machine's scheduler).
        code = ("import subprocess, sys, time; sys.stdin.readline();"
                "subprocess.Popen(['sleep', '300'], start_new_session=True);"
                "t = time.process_time() + 0.3\nwhile time.process_time() < t: pass")
        if how == "join":  # joined by the parent right after the spawn (the runner's check)
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
            group.join(proc.pid)
            if not group.contains(proc.pid):
                proc.kill()  # before it starts the detached sleep, which would be left behind
                proc.wait(30)
                pytest.skip(f"{root} refuses a join from the parent here (the runner then joins in the child)")
        else:
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                    preexec_fn=child_setup(group.procs_files))
        proc.communicate(b"\n", timeout=30)
        members = group.pids()
        assert len(members) == 1  # the detached sleep is still a member after its parent exited
        counters = group.counters()
        assert counters["cpu_user_s"] + counters["cpu_system_s"] >= 0.25
        group.kill()
        assert not group.pids()
    finally:
        group.kill()
        group.remove()
    assert not any(path.exists() for path in group.dirs.values())


# A process that runs one long workload through LocalRunner and is then killed with SIGKILL.
RUNNER_HOST = r"""
import sys
from pathlib import Path
from tunesmith.runners import local
from tunesmith.runners.base import RunSpec
if sys.argv[2] == "preexec":
    local.launcher = lambda: None
code = "import os, time; open('workload.pid', 'w').write(str(os.getpid())); time.sleep(300)"
local.LocalRunner().run(RunSpec(argv=[sys.executable, "-c", code], cwd=Path(sys.argv[1]), timeout_s=600))
"""


@pytest.mark.parametrize("mode", ["setpriv", "preexec"])
def test_kill_9_of_the_runner_ends_its_workload_at_once(tmp_path: Path, mode: str) -> None:
    """The parent-death signal, not a later sweep: the workload dies when its runner is SIGKILLed."""
    if mode == "setpriv" and launcher() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    host = subprocess.Popen([sys.executable, "-c", RUNNER_HOST, str(tmp_path), mode])
    workload = 0
    try:
        end = time.monotonic() + 60
        while not (tmp_path / "workload.pid").exists() and time.monotonic() < end and host.poll() is None:
            time.sleep(0.05)
        workload = int((tmp_path / "workload.pid").read_text())
        assert psutil.Process(workload).ppid() == host.pid  # the direct child, nothing in between
        host.kill()
        host.wait()
        assert wait_gone(workload, 10), f"the workload outlived a kill -9 of its runner ({mode})"
    finally:
        sweep_dead_owners()  # the killed host's run cgroup (it kept no run record)
        if host.poll() is None:
            host.kill()
            host.wait()
        if workload and running(workload):
            os.kill(workload, signal.SIGKILL)


def test_the_spawn_runs_no_python_in_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the launcher there is no preexec_fn (a full fork of a large parent), yet the workload starts in its cgroup."""
    if launcher() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    seen: list[object] = []
    real = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen:
        seen.append(kwargs.get("preexec_fn"))
        return real(*args, **kwargs)

    monkeypatch.setattr(local_module.subprocess, "Popen", popen)
    res = LocalRunner().run(RunSpec(argv=["cat", "/proc/self/cgroup"], cwd=tmp_path / "run"))
    assert res.returncode == 0, res.stderr_tail
    assert seen == [None]
    if HAS_CGROUP:
        assert "/tunesmith/" in res.stdout_tail, res.stdout_tail


def test_launch_errors_are_found_before_the_workload_runs(tmp_path: Path, spawn: str) -> None:
    bad_interpreter = tmp_path / "bad.sh"
    bad_interpreter.write_text("#!/nonexistent/interpreter\n")
    bad_interpreter.chmod(0o755)
    not_executable = tmp_path / "plain.sh"
    not_executable.write_text("#!/bin/sh\necho hi\n")
    not_executable.chmod(0o644)
    cases = [
        (["no-such-tool-anywhere"], "no such file"),
        ([str(bad_interpreter)], "no such file"),
        ([str(not_executable)], "permission denied"),
        (["../plain.sh"], "permission denied"),  # relative to the run's folder, as the child sees it
        ([str(tmp_path)], "permission denied"),  # a folder
    ]
    for argv, message in cases:
        res = LocalRunner().run(RunSpec(argv=argv, cwd=tmp_path / "run"))
        assert res.returncode is None and message in res.launch_error, (argv, res.launch_error)
        assert "\n" not in res.launch_error and "fix:" in res.launch_error
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mytool").write_text("#!/bin/sh\necho found-it\n")
    (tools / "mytool").chmod(0o755)
    env = {"PATH": f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}"}  # the child's PATH finds the tool
    res = LocalRunner().run(RunSpec(argv=["mytool"], cwd=tmp_path / "run", env=env))
    assert res.returncode == 0 and "found-it" in res.stdout_tail, res.launch_error


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "subreaper"])
def test_a_clean_exit_needs_no_scan_of_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   cgroups: bool) -> None:
    def scan() -> list[int]:
        raise AssertionError("looked at every process on the machine after a clean exit")

    monkeypatch.setattr(psutil, "pids", scan)
    res = LocalRunner(cgroups=cgroups).run(RunSpec(argv=["true"], cwd=tmp_path / "run"))
    assert res.returncode == 0 and res.launch_error == "", res.stderr_tail


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "subreaper"])
def test_an_orphan_that_already_exited_is_reaped(tmp_path: Path, cgroups: bool) -> None:
    """A child the workload never waited for is re-parented to us as a zombie; the run reaps it."""
    code = ("import subprocess, time; p = subprocess.Popen(['true']);"
            "open('child.pid', 'w').write(str(p.pid)); time.sleep(0.5)")
    res = LocalRunner(cgroups=cgroups).run(RunSpec(argv=[sys.executable, "-c", code], cwd=tmp_path / "run"))
    assert res.returncode == 0, res.stderr_tail
    child = int((tmp_path / "run" / "child.pid").read_text())
    zombies = [p.pid for p in psutil.Process().children() if p.pid == child]
    assert not zombies, "the workload's exited child was left a zombie of tunesmith"


def test_a_program_found_before_is_checked_again_each_run(tmp_path: Path) -> None:
    """check_program remembers where a bare name was found, yet sees it become unusable."""
    from tunesmith.runners.spawn import check_program

    tools = tmp_path / "bin"
    tools.mkdir()
    tool = tools / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    env = {"PATH": str(tools)}
    for i in range(2):  # a different run folder each time: the remembered place still counts
        check_program("mytool", tmp_path / f"run-{i}", env)
    tool.chmod(0o644)
    with pytest.raises(PermissionError):
        check_program("mytool", tmp_path / "run-2", env)
    tool.unlink()
    with pytest.raises(FileNotFoundError):
        check_program("mytool", tmp_path / "run-3", env)


@pytest.mark.skipif(not HAS_CGROUP, reason="no writable cgroup here")
def test_a_study_gives_back_its_reused_cgroups_when_it_ends(tmp_path: Path) -> None:
    """The runner's pool of idle cgroups goes with the session, not only at interpreter exit."""
    from tunesmith.agents.study import drive, open_session
    from tunesmith.runners.job import parse_job

    job = parse_job({
        "name": "pool", "target": "command", "budget": {"trials": 2}, "llm": {"mode": "off"},
        "strategy": {"name": "grid"}, "measure": {"repeats": 1, "remeasure": False},
        "workload": {"command": ["sh", "-c", 'cat /proc/self/cgroup; echo \'{"seconds": 1}\' > "$TUNESMITH_RESULT"',
                                 "{n}"], "drop_caches": False,
                     "params": {"n": {"kind": "int", "low": 1, "high": 2, "default": 1}}},
    }, base_dir=tmp_path)
    with open_session(job, tmp_path / "state") as session:
        outcome = drive(session)
    lines = [ln for t in outcome.trials for ln in t.measurement.stdout_tail.splitlines()
             if (":pids:" in ln or ln.startswith("0::")) and "/tunesmith/" in ln]
    assert lines, "the runs were not in a cgroup of their own"
    for line in lines:
        assert not _cgroup_dir(line.split(":", 2)[2]).exists()
