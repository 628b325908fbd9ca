"""The `tune` command line as a user meets it: one-line errors, kill -9 and resume, reports."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

WORKLOAD = textwrap.dedent("""
    import json, os, sys, time
    threads, chunk = int(sys.argv[1]), int(sys.argv[2])
    time.sleep(float(os.environ.get("SLEEP", "0.3")))
    seconds = 1.0 / threads + 0.1 * abs(chunk - 4)
    json.dump({"seconds": seconds}, open(os.environ["TUNESMITH_RESULT"], "w"))
""")

JOB = """
name = "toy"
target = "command"
[workload]
command = ["{{python}}", "toy.py", "{{threads}}", "{{chunk}}"]
drop_caches = false
[workload.params.threads]
kind = "pow2"
low = 1
high = 8
default = 1
[workload.params.chunk]
kind = "int"
low = 1
high = 8
default = 1
[budget]
trials = {trials}
[measure]
repeats = 2
remeasure = false
[runner]
timeout_s = 60
[runner.env]
SLEEP = "{sleep}"
[strategy]
name = "grid"
"""


def tune(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    return subprocess.run([sys.executable, "-m", "tunesmith.agents.frontends.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env, **kw)


def make_job(tmp_path: Path, trials: int = 6, sleep: float = 0.0) -> Path:
    (tmp_path / "toy.py").write_text(WORKLOAD)
    job = tmp_path / "job.toml"
    job.write_text(JOB.format(trials=trials, sleep=sleep))
    return job


def finished_trials(db: Path) -> list[tuple[int, str, str, int]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT number, key, state, interrupted FROM trials ORDER BY number").fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_then_resume_repeats_no_finished_trial(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=8, sleep=1.5)
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--plain", "--llm", "off"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            rows = finished_trials(db) if db.exists() else []
        except sqlite3.OperationalError:  # the store is being created
            rows = []
        if sum(r[2] == "done" for r in rows) >= 2 and any(r[2] == "running" for r in rows):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the study did not reach 2 finished trials in time")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r[1] for r in finished_trials(db) if r[2] == "done"}
    result = tune("run", str(job), "--plain", "--llm", "off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resuming study 'toy'" in result.stdout
    rows = finished_trials(db)
    done = [r for r in rows if r[2] == "done"]
    assert len(done) == len({r[1] for r in done}) == 8  # every config measured exactly once
    assert before <= {r[1] for r in done}
    interrupted = [r for r in rows if r[3]]
    assert len(interrupted) == 1 and interrupted[0][1] in {r[1] for r in done}  # retried after the kill


def test_run_prints_best_and_speedup_and_writes_report(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=5)
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "LLM mode: offline" in result.stdout
    assert "best config (trial #" in result.stdout and "speedup over the default:" in result.stdout
    assert result.stdout.count("[run] trial #") == 5  # one line per trial off a terminal
    report = json.loads((tmp_path / ".tunesmith" / "reports" / "toy.json").read_text())
    assert report["speedup"]["speedup"] > 1 and len(report["trials"]) == 5
    listing = tune("list", cwd=tmp_path)
    assert "toy" in listing.stdout and listing.returncode == 0
    status = tune("status", "toy", cwd=tmp_path)
    assert status.returncode == 0 and "baseline" in status.stdout
    rep = tune("report", "toy", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert rep.returncode == 0 and (tmp_path / "out" / "toy.md").exists()


BAD_JOBS = [
    (lambda t: t.replace("[budget]", "[budgit]"), "budgit: unknown field"),
    (lambda t: t.replace('"toy.py"', '"missing.py"'), "missing.py"),
    (lambda t: t.replace('target = "command"', 'target = "nope"'), "unknown target 'nope'"),
    (lambda t: t + "\n[baseline]\nthreadz = 2\n", "unknown parameter 'threadz'"),
    (lambda t: t.replace("[runner]", "[runner]\nkind = \"moon\""), "unknown runner 'moon'"),
    (lambda t: t.replace("name = \"toy\"", "name = "), "not valid TOML"),
]


@pytest.mark.parametrize(("mutate", "needle"), BAD_JOBS)
def test_bad_job_gets_one_line_and_exit_2(tmp_path: Path, mutate, needle: str) -> None:  # noqa: ANN001
    job = make_job(tmp_path)
    job.write_text(mutate(job.read_text()))
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr


def test_bad_job_loses_no_stored_trial(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=2)
    good = job.read_text()
    assert tune("run", str(job), "--llm", "off", cwd=tmp_path).returncode == 0
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    stored = finished_trials(db)
    assert len(stored) == 2
    for mutate, needle in BAD_JOBS:
        job.write_text(mutate(good))
        result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
        assert result.returncode == 2 and needle in result.stderr
        assert finished_trials(db) == stored, needle
    job.write_text(good)
    assert "trial budget spent" in tune("run", str(job), "--llm", "off", cwd=tmp_path).stdout


def test_changed_job_is_refused_and_keeps_trials(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=2)
    assert tune("run", str(job), "--llm", "off", cwd=tmp_path).returncode == 0
    job.write_text(job.read_text().replace("high = 8\ndefault = 1\n[budget]", "high = 4\ndefault = 1\n[budget]"))
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 2 and "different job definition" in result.stderr
    assert len(finished_trials(tmp_path / ".tunesmith" / "tunesmith.db")) == 2
    result = tune("run", str(job), "--llm", "off", "--restart", cwd=tmp_path)
    assert result.returncode == 0
    listing = tune("list", cwd=tmp_path).stdout
    assert "toy@" in listing  # the old study is archived, not deleted


def test_a_dying_workload_is_a_measured_failure(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=3)
    (tmp_path / "toy.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 5, result.stderr  # the default could not be measured
    assert "every trial failed: 3 runtime (" in result.stdout and "SIGKILL" in result.stdout
    con = sqlite3.connect(tmp_path / ".tunesmith" / "tunesmith.db")
    rows = con.execute("SELECT state, measurement FROM trials").fetchall()
    assert len(rows) == 3 and all(json.loads(m)["status"] == "runtime" for _, m in rows)


def study_status(tmp_path: Path, name: str = "toy") -> str | None:
    con = sqlite3.connect(tmp_path / ".tunesmith" / "tunesmith.db")
    try:
        row = con.execute("SELECT status FROM studies WHERE name=?", (name,)).fetchone()
        return row[0] if row else None
    finally:
        con.close()


def wait_for_done(tmp_path: Path, proc: subprocess.Popen, done: int = 1, timeout: float = 240) -> None:
    db = tmp_path / ".tunesmith" / "tunesmith.db"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if db.exists() and sum(r[2] == "done" for r in finished_trials(db)) >= done:
                return
        except sqlite3.OperationalError:  # the store is being created
            pass
        if proc.poll() is not None:
            pytest.fail(f"tune run ended early with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the study did not finish {done} trial(s) in time")


def background_run(job: Path, tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LANGSMITH_TRACING": "false"}
    cmd = [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--plain", "--llm", "off", *extra]
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.parametrize(("args", "rename", "needle"), [
    (("--trials", "0"), None, "--trials 0"),
    (("--trials", "-5"), None, "--trials -5"),
    (("--strategy", "bogus"), None, "--strategy 'bogus'"),
    ((), "..", "'..' cannot name a study"),
    ((), ".hidden", "'.hidden' cannot name a study"),
])
def test_bad_overrides_and_names_are_one_line_and_store_nothing(tmp_path: Path, args, rename, needle) -> None:  # noqa: ANN001
    job = make_job(tmp_path, trials=2)
    if rename is not None:
        job.write_text(job.read_text().replace('name = "toy"', f'name = "{rename}"'))
    result = tune("run", str(job), "--llm", "off", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "fix:" in lines[0], result.stderr
    state = tmp_path / ".tunesmith"
    assert not (state / "tunesmith.db").exists()  # no study row, no store at all
    hidden = [p for p in tmp_path.rglob(".*") if p != state and p.name != ".tunesmith"]
    assert hidden == []


def test_restart_while_another_process_runs_is_refused_before_anything_changes(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=4, sleep=0.5)
    proc = background_run(job, tmp_path)
    try:
        wait_for_done(tmp_path, proc)
        result = tune("run", str(job), "--llm", "off", "--restart", "--plain", cwd=tmp_path)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"being run by pid {proc.pid}" in result.stderr
        con = sqlite3.connect(tmp_path / ".tunesmith" / "tunesmith.db")
        names = [r[0] for r in con.execute("SELECT name FROM studies")]
        studies_of_trials = {r[0] for r in con.execute("SELECT DISTINCT study FROM trials")}
        con.close()
        assert names == ["toy"] and studies_of_trials == {"toy"}  # nothing archived, no trial moved
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "speedup over the default:" in stdout and study_status(tmp_path) == "finished"


def test_every_trial_failing_says_why_and_exits_5(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=3)
    job.write_text(job.read_text() + '\n[objective]\nmetric = "secnds"\n')
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("every trial failed:"))
    assert line.startswith("every trial failed: 3 runtime (") and "no finite number 'secnds'" in line
    assert "timing unavailable" not in result.stdout and "report:" in result.stdout


def test_a_result_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=2)
    (tmp_path / "toy.py").write_text('import json, os\njson.dump([1, 2], open(os.environ["TUNESMITH_RESULT"], "w"))\n')
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("every trial failed:"))
    assert line.startswith("every trial failed: 2 runtime (") and "result.json is a JSON list, not an object" in line
    assert "no result JSON" not in result.stdout


def test_default_that_cannot_be_measured_exits_5_and_one_that_is_wrong_exits_3(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=3)
    crash_default = WORKLOAD.replace("seconds = ", "assert chunk > 1, 'the default crashes'\nseconds = ")
    (tmp_path / "toy.py").write_text(crash_default)
    result = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "the default configuration (trial #1) could not be measured (runtime:" in result.stdout
    assert "every trial failed" not in result.stdout
    wrong_default = WORKLOAD.replace('{"seconds": seconds}', '{"seconds": seconds, "correct": chunk > 1}')
    (tmp_path / "toy.py").write_text(wrong_default)
    result = tune("run", str(job), "--llm", "off", "--restart", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr


def test_closed_output_pipe_stops_quietly_and_resumes(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=6, sleep=0.2)
    py = f"{sys.executable} -m tunesmith.agents.frontends.cli"
    script = f"{py} run {job} --llm off | head -2; echo ${{PIPESTATUS[0]}} > rc"
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "LANGSMITH_TRACING": "false"})
    assert (tmp_path / "rc").read_text().strip() == "141", result.stderr
    assert result.stderr == "" and len(result.stdout.splitlines()) == 2
    assert study_status(tmp_path) == "interrupted"
    again = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert again.returncode == 0 and "resuming study 'toy'" in again.stdout
    assert study_status(tmp_path) == "finished"


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_signal_marks_the_study_interrupted_and_it_resumes(tmp_path: Path, sig, code: int, word: str) -> None:  # noqa: ANN001
    job = make_job(tmp_path, trials=4, sleep=1.0)
    proc = background_run(job, tmp_path)
    wait_for_done(tmp_path, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert f"{word}: finished trials are stored" in stderr and "Traceback" not in stderr
    assert study_status(tmp_path) == "interrupted"
    assert "interrupted" in tune("list", cwd=tmp_path).stdout
    again = tune("run", str(job), "--llm", "off", cwd=tmp_path)
    assert again.returncode == 0 and "resuming study 'toy'" in again.stdout, again.stderr
    done = [r for r in finished_trials(tmp_path / ".tunesmith" / "tunesmith.db") if r[2] == "done"]
    assert len(done) == len({r[1] for r in done}) == 4


@pytest.mark.slow
def test_kill_during_remeasure_reuses_the_finished_remeasure(tmp_path: Path) -> None:
    job = make_job(tmp_path, trials=2, sleep=1.5)
    job.write_text(job.read_text().replace("remeasure = false", "remeasure = true"))
    proc = background_run(job, tmp_path)
    db = tmp_path / ".tunesmith" / "tunesmith.db"

    def remeasures() -> list[tuple[str, int]]:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT state, interrupted FROM trials WHERE json_extract(candidate, '$.origin')"
                               " = 'remeasure' ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the store is being created
            return []
        finally:
            con.close()

    deadline = time.time() + 300
    while time.time() < deadline:  # the first re-measure finished, the second is running: kill now
        rows = remeasures() if db.exists() else []
        if len(rows) == 2 and rows[0][0] == "done" and rows[1][0] == "running":
            break
        if proc.poll() is not None:
            pytest.fail("the study ended before its re-measures")
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("no re-measure seen in time")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    result = tune("run", str(job), "--plain", "--llm", "off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = remeasures()
    assert [r for r in rows if not r[1]] == [("done", 0), ("done", 0)]  # the finished one was not run again
    assert sum(r[1] for r in rows) == 1  # only the killed one is retried
    assert "confirmed" in result.stdout or "speedup over the default" in result.stdout


def test_live_view_reads_a_bounded_number_of_rows_per_event_and_renders_after_close() -> None:
    """A big study: each event reads only the newest rows (no full re-read), and the last render, after the
    session closed the store, comes from memory (it used to end every terminal run in an internal error)."""
    import io
    import tempfile
    from types import SimpleNamespace

    from rich.console import Console

    from tunesmith.agents.frontends.live import LiveView
    from tunesmith.knowledge.study_store import StudyStore
    from tunesmith.runners.job import parse_job
    from tunesmith.runners.types import Candidate, Measurement, Status, Verdict

    class Counting:
        def __init__(self, store: StudyStore) -> None:
            self.store, self.full_reads, self.rows = store, 0, []

        def trials(self, *args, **kw):  # noqa: ANN002, ANN003, ANN202
            self.full_reads += 1
            return self.store.trials(*args, **kw)

        def trials_since(self, *args, **kw):  # noqa: ANN002, ANN003, ANN202
            found = self.store.trials_since(*args, **kw)
            self.rows.append(len(found))
            return found

        def trial_by_number(self, *args, **kw):  # noqa: ANN002, ANN003, ANN202
            found = self.store.trial_by_number(*args, **kw)
            self.rows.append(1)
            return found

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.store, name)

    def add(store: StudyStore, x: int, verdict: Verdict | None = None) -> int:
        t = store.start_trial("big", Candidate(config={"x": x}, origin="baseline" if x == 0 else "sampler"))
        store.finish_trial(t.id, Measurement(status=Status.OK, samples=[10.0 - x / 1000, 10.0 - x / 1000]))
        if verdict is not None:
            store.set_verdict(t.id, verdict, "")
        return t.number

    with tempfile.TemporaryDirectory() as tmp:
        raw = StudyStore(Path(tmp) / "db.sqlite")
        big = parse_job({"name": "big", "target": "replay", "workload": {}, "budget": {"trials": 2000}})
        raw.open_study(big)
        add(raw, 0, Verdict.BASELINE)
        for x in range(1, 1500):
            add(raw, x, Verdict.NOISE)
        store = Counting(raw)
        session = SimpleNamespace(store=store, study="big", llm_description="offline", job=big,
                                  budget=SimpleNamespace(trials_used=1500, elapsed_s=1.0, tokens_used=0))
        screen = io.StringIO()
        view = LiveView(Console(file=screen, width=120, force_terminal=True), [session])  # type: ignore[list-item]
        with view:
            view("session", "resuming", {})
            for x in range(1500, 1530):
                number = add(raw, x, Verdict.BETTER)
                view("judge", f"trial #{number}: better", {"trial": number, "verdict": "better"})
            raw.close()  # the session closes the store before the view's last render
        assert store.full_reads == 1  # once, to see where the resumed study stands
        assert sum(store.rows) <= 31  # then the one trial each event names (31 events), nothing else
        assert view.best is not None and view.best.number == 1530 and view.baseline.number == 1
        text = screen.getvalue()
        assert "budget: 1500/2000 trials" in text and "1530" in text


def test_list_shows_a_killed_study_as_interrupted_not_running(tmp_path: Path) -> None:
    from tunesmith.knowledge.study_store import StudyStore
    from tunesmith.runners.job import parse_job

    store = StudyStore(tmp_path / ".tunesmith" / "tunesmith.db")
    store.open_study(parse_job({"name": "gone", "target": "replay", "workload": {}}))  # stored as running
    store.lock("gone")
    held = tune("list", cwd=tmp_path)
    store.close()  # the writer dies: its lock goes with it, the row still says running
    killed = tune("list", cwd=tmp_path)
    assert held.returncode == killed.returncode == 0
    assert "running" in held.stdout and "killed" not in held.stdout
    assert "running" not in killed.stdout and "interrupted" in killed.stdout and "(killed)" in killed.stdout
