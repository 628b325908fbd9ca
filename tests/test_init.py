"""`tune init -- CMD` and `tune run -- CMD`: a small program of the tests' own (numeric and on/off flags, an
argparse --help, JSON on stdout) through the real `tune` console script, in a pipe and on a pseudo-terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tunesmith.runners.job import load_job
from tunesmith.tools.initjob import guess_direction, parse_command, parse_help, propose
from tunesmith.tools.plugins import TARGETS

PROG = '''import argparse, json, time
ap = argparse.ArgumentParser(description="a tiny benchmark")
ap.add_argument("--threads", type=int, default=4, help="worker threads (default: 4)")
ap.add_argument("-n", "--size", type=int, default=8, help="problem size, range 1-64")
ap.add_argument("--scale", type=float, default=1.0, help="work scale factor")
ap.add_argument("--mode", choices=["a", "b"], default="a", help="which loop")
ap.add_argument("--fast", action="store_true", help="take the fast path")
ap.add_argument("--no-cache", action="store_true", help="disable the cache")
ap.add_argument("--depth", type=int, default=3, help="tree depth (default: 3)")
ap.add_argument("label", nargs="?", default="x")
a = ap.parse_args()
n = int(20000 * a.scale * (1 if a.fast else 3))
s = sum(i * i for i in range(n))
print("working on", a.label)
print(json.dumps({"throughput": 1e6 / (n + a.threads), "checksum": s % 97}))
'''
TUNE = Path(sys.executable).with_name("tune")
PY = sys.executable
CMD = [PY, "prog.py", "--threads", "2", "--size=16", "--scale", "0.5", "--fast", "--no-cache", "mylabel"]


def tune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    argv = [str(TUNE)] if TUNE.exists() else [sys.executable, "-m", "tunesmith.agents.frontends.cli"]
    env = {**os.environ, "LANGSMITH_TRACING": "false", "TUNESMITH_LLM_BASE_URL": ""}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "prog.py").write_text(PROG)
    return tmp_path


def test_init_writes_a_commented_job_that_loads_with_the_users_values(folder: Path) -> None:
    res = tune("init", "--metric", "throughput", "--env", "OMP_NUM_THREADS=2", "--env", "MY_MODE=fast",
               "--", *CMD, cwd=folder)
    assert res.returncode == 0, res.stderr
    assert "wrote prog.toml" in res.stdout and "--help: read" in res.stdout
    text = (folder / "prog.toml").read_text()
    job = load_job(folder / "prog.toml")
    params = job.workload["params"]
    assert set(params) >= {"threads", "size", "scale", "fast", "no_cache", "omp_num_threads"}
    assert 2 in params["threads"]["values"] and params["threads"]["default"] == 2
    assert 16 in params["size"]["values"] and max(params["size"]["values"]) <= 64  # --help's "range 1-64"
    assert 0.5 in params["scale"]["values"] and params["scale"]["default"] == 0.5
    assert params["fast"] == {"kind": "bool", "default": True, "help": "take the fast path"}
    assert params["omp_num_threads"]["apply"] == "env" and job.runner.env == {"MY_MODE": "fast"}
    assert job.objective.metric == "throughput" and job.objective.direction == "maximize"
    assert "# flag --threads: you run it with 2" in text and "# --help: worker threads (default: 4)" in text
    assert "# [workload.params.depth]" in text  # documented by --help, not used: offered commented out
    target = TARGETS.create(job.target, job)
    argv, env = target.render(target.baseline().config, folder / "out")
    assert argv[argv.index("--") + 1:] == CMD and env == {"OMP_NUM_THREADS": "2"}  # the default is the user's command
    target.close()


@pytest.mark.slow
def test_run_dash_dash_tunes_a_command_line_end_to_end(folder: Path) -> None:
    res = tune("run", "--plain", "--llm", "off", "--trials", "2", "--", PY, "prog.py", "--threads", "2", "--fast",
               cwd=folder)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "drafted job" in res.stdout and "stopped: trial budget spent (2/2)" in res.stdout
    assert "best config (trial #" in res.stdout
    job = load_job(folder / ".tunesmith" / "jobs" / "prog.toml")
    assert job.objective.metric == "seconds" and set(job.workload["params"]) == {"threads", "fast"}
    status = tune("status", "prog", cwd=folder)
    assert status.returncode == 0 and "threads" in status.stdout


@pytest.mark.parametrize("args, needle", [
    (["--", "no-such-program-xyz", "--threads", "2"], "not found"),
    (["--", PY, "missing.py", "--threads", "2"], "not found"),
    (["--", PY, "prog.py", "mylabel"], "nothing to tune"),
    (["--metric", "latency_ms", "--", PY, "prog.py", "--threads", "2"], "reported no number 'latency_ms'"),
    ([], "no command given"),
    (["--", PY, "prog.py", "--threads", "2", "--token", "sk-abcdef1234567890"], "holds a secret"),
])
def test_bad_commands_are_one_line_exit_2(folder: Path, args: list[str], needle: str) -> None:
    res = tune("init", *args, cwd=folder)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and needle in res.stderr and "fix:" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (folder / "prog.toml").exists()


def test_missing_metric_says_how_to_report_one_through_tune_run(folder: Path) -> None:
    res = tune("run", "--plain", "--llm", "off", "--metric", "qps", "--", PY, "prog.py", "--threads", "2", cwd=folder)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert '{"qps": 123.4}' in res.stderr and "--metric-file" in res.stderr


def test_init_on_a_terminal(folder: Path) -> None:
    argv = [str(TUNE)] if TUNE.exists() else [sys.executable, "-m", "tunesmith.agents.frontends.cli"]
    child = pexpect.spawn(argv[0], [*argv[1:], "init", "--", PY, "prog.py", "-n", "8", "--fast"], cwd=str(folder),
                          env={**os.environ, "TERM": "xterm"}, encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "wrote prog.toml: 2 knobs (size, fast)" in " ".join(child.before.split())
    assert 8 in load_job(folder / "prog.toml").workload["params"]["size"]["values"]


def test_parse_command_splits_knobs_from_fixed_arguments() -> None:
    p = parse_command(["prog", "in.txt", "--bs=64", "-n", "8", "--name", "x", "--lr", "0.1", "--fast", "--out", "o.bin",
                       "--verbose"], flag_only={"--verbose"})
    kinds = {k.name: (k.flag, k.kind, k.value, k.style) for k in p.knobs}
    assert kinds == {"bs": ("--bs", "int", 64, "equals"), "n": ("-n", "int", 8, "space"),
                     "lr": ("--lr", "float", 0.1, "space"), "fast": ("--fast", "bool", True, "presence"),
                     "verbose": ("--verbose", "bool", True, "presence")}
    assert p.template == ["prog", "in.txt", "--bs={bs}", "-n", "{n}", "--name", "x", "--lr", "{lr}", "{fast}",
                          "--out", "o.bin", "{verbose}"]


def test_help_parser_and_proposed_ranges() -> None:
    opts = parse_help("options:\n  -t N, --threads N   threads (default: 4)\n  --mode {a,b,c}\n"
                      "                      the mode\n  --fast              go fast\n")
    by = {o.flags[-1]: o for o in opts}
    assert by["--threads"].flags == ["-t", "--threads"] and by["--threads"].default == 4
    assert by["--mode"].choices == ["a", "b", "c"] and by["--mode"].description == "the mode"
    assert not by["--fast"].takes_value
    knob = parse_command(["p", "--bs", "48"]).knobs[0]
    values, why = propose(knob)
    assert 48 in values and min(values) == 12 and max(values) == 192 and "48" in why
    assert guess_direction("tokens_per_s") == "maximize" and guess_direction("latency_ms") == "minimize"
