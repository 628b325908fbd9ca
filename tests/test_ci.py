"""`tune ci`: thresholds in pytest-benchmark's syntax, baseline files, the regression decision (re-measured
once before failing), fingerprints, exit codes, and the whole loop on the real example program: an injected
slowdown fails (exit 1, a readable report), and `--retune` recovers (exit 0)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState
from tunesmith.tools.ci.baseline import (
    BaselineError,
    BaselineFile,
    ConfigEntry,
    Performance,
    load_baseline,
    write_baseline,
)
from tunesmith.tools.ci.check import EntryResult, check_entry, exit_code, fingerprint_diff
from tunesmith.tools.ci.threshold import ThresholdError, parse_threshold

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ci"
ENV = {**os.environ, "LANGSMITH_TRACING": "false", "COLUMNS": "200"}


# -- thresholds ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, field, percent, difference", [
    ("median:5%", "median", 5, None), ("min:5%", "min", 5, None), ("mean:0.1", "mean", None, 0.1),
    ("max:1e-3", "max", None, 0.001), ("stddev:10%", "stddev", 10, None), ("iqr:.5", "iqr", None, 0.5),
    ("mean:0%", "mean", 0, None), ("median:3", "median", None, 3.0)])
def test_threshold_forms_pytest_benchmark_accepts(text, field, percent, difference):
    t = parse_threshold(text)
    assert (t.field, t.percent, t.difference) == (field, percent, difference)


@pytest.mark.parametrize("text", ["median:100%", "median:-5%", "foo:5%", "median5%", "median:", "ops:5%",
                                  "median:5%%", "median:1.5%"])
def test_threshold_forms_pytest_benchmark_refuses(text):
    with pytest.raises(ThresholdError) as exc:
        parse_threshold(text)
    assert "pytest-benchmark" in exc.value.line() and "fix:" in exc.value.line()


def test_threshold_rule_and_direction():
    base, slower = [1.0, 1.0, 1.0], [1.2, 1.2, 1.2]
    assert parse_threshold("median:10%").exceeded(slower, base, minimize=True)
    assert not parse_threshold("median:25%").exceeded(slower, base, minimize=True)
    assert not parse_threshold("median:10%").exceeded(slower, base, minimize=False)  # more throughput is better
    assert parse_threshold("median:10%").exceeded(base, slower, minimize=False)
    assert parse_threshold("mean:0.1").exceeded(slower, base, minimize=True)
    assert not parse_threshold("mean:0.3").exceeded(slower, base, minimize=True)
    # a 10 % loss of a time is a gain of -1/11 in the core's terms (before/now - 1)
    assert parse_threshold("median:10%").relative_effect(base, minimize=True) == pytest.approx(0.1 / 1.1)
    assert parse_threshold("median:0.5").relative_effect([2.0], minimize=False) == pytest.approx(0.25)


# -- fingerprints ----------------------------------------------------------------------------------------------
def test_fingerprint_diff_names_what_changed_and_ignores_where_the_clone_sits():
    fp = {"cpu": "AMD EPYC", "cpus": 2, "gpu": None, "filesystem": {"mount": "/", "fstype": "ext4", "options": "rw"}}
    moved = {**fp, "filesystem": {"mount": "/home", "fstype": "ext4", "options": "rw,noatime"}}
    assert fingerprint_diff(fp, moved) == []
    assert fingerprint_diff({k: v for k, v in fp.items() if k != "gpu"}, fp) == []  # absent == null (TOML)
    other = {**fp, "cpu": "Intel Xeon", "filesystem": {"mount": "/", "fstype": "xfs", "options": "rw"}}
    assert fingerprint_diff(fp, other) == ["cpu: AMD EPYC -> Intel Xeon", "filesystem type: ext4 -> xfs"]


# -- the decision, with a scripted measure ------------------------------------------------------------------------
def _entry(samples, fingerprint=None) -> ConfigEntry:
    return ConfigEntry(name="e", job="job.toml", config={"x": 2}, default_config={"x": 1},
                       performance=Performance.of(samples), default_performance=Performance.of([2.0] * 8),
                       fingerprint=fingerprint or {"cpu": "c"})


def _trial(number, samples, status=Status.OK) -> Trial:
    m = Measurement(status=status, samples=samples if status == Status.OK else [], detail=status.value)
    return Trial(study="s", number=number, candidate=Candidate(config={"x": 2}), state=TrialState.DONE, measurement=m)


def _scripted(looks):
    calls = []

    def measure(config, look):
        calls.append((config, look))
        samples, status = looks[look - 1]
        return [_trial(look, samples, status)], [_trial(100 + look, [2.0] * 8)]
    return measure, calls


BASE = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0]
SLOW = [x * 1.5 for x in BASE]


def _check(looks, fingerprint=None) -> tuple[EntryResult, list]:
    measure, calls = _scripted(looks)
    result = check_entry(_entry(BASE), parse_threshold("median:10%"), measure,
                         current_fingerprint=fingerprint or {"cpu": "c"}, min_effect=0.05)
    return result, calls


def test_a_regression_stands_only_when_the_re_measure_repeats_it():
    result, calls = _check([(SLOW, Status.OK), (SLOW, Status.OK)])
    assert result.outcome == "regression" and len(calls) == 2 and exit_code([result]) == 1
    assert result.looks[-1].comparison.decision == "worse" and "50.0% worse" in result.summary
    assert result.looks[-1].now_vs_default is not None  # the default measured alongside


def test_an_alarm_that_does_not_repeat_passes():
    result, calls = _check([(SLOW, Status.OK), (BASE, Status.OK)])
    assert result.outcome == "ok" and len(calls) == 2 and "did not repeat" in result.summary
    assert exit_code([result]) == 0


def test_no_regression_is_one_look():
    result, calls = _check([(BASE, Status.OK)])
    assert result.outcome == "ok" and len(calls) == 1


def test_a_different_fingerprint_is_reported_not_compared():
    result, calls = _check([(SLOW, Status.OK)], fingerprint={"cpu": "other"})
    assert result.outcome == "not compared" and calls == [] and "cpu: c -> other" in result.summary
    assert exit_code([result]) == 0


def test_failures_map_to_exit_codes():
    correctness, _ = _check([([], Status.CORRECTNESS), ([], Status.CORRECTNESS)])
    infra, _ = _check([([], Status.INFRASTRUCTURE), ([], Status.INFRASTRUCTURE)])
    crash, _ = _check([([], Status.RUNTIME), ([], Status.RUNTIME)])
    assert (correctness.outcome, infra.outcome, crash.outcome) == ("correctness", "infrastructure", "regression")
    assert exit_code([correctness]) == 3 and exit_code([infra]) == 4 and exit_code([crash]) == 1
    assert exit_code([infra, crash, correctness]) == 3 and exit_code([infra, crash]) == 1


# -- baseline files --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_baseline_round_trip(tmp_path, suffix):
    fp = {"cpu": 'quote " and \\ backslash', "gpu": None, "filesystem": {"fstype": "ext4"}}
    data = BaselineFile(threshold="mean:0.001", entries=[_entry([0.5, 0.25, 1e-9], fp)])
    path = tmp_path / f"b{suffix}"
    write_baseline(path, data)
    back = load_baseline(path)
    assert back == data and back.entries[0].performance.median == 0.25 and "gpu" not in back.entries[0].fingerprint


def test_the_checked_in_example_baseline_is_valid():
    b = load_baseline(EXAMPLE / "baseline.toml")
    assert b.entries[0].job == "job.toml" and (EXAMPLE / b.entries[0].job).is_file()
    assert b.entries[0].performance.n >= 8 and b.entries[0].fingerprint


@pytest.mark.parametrize("text, needle", [
    ("version = 1\nentries = [", "not valid TOML"),
    ('version = 1\nthreshold = "median:200%"\n[[entries]]\nname="a"\njob="j"\nconfig={}\n'
     'performance={samples=[1.0]}\n', "threshold"),
    ('version = 1\n[[entries]]\nname="a"\njob="j"\nconfig={}\n', "entries.0.performance: Field required"),
    ('version = 1\n[[entries]]\nkind="kernel"\nname="a"\njob="j"\nconfig={}\nperformance={samples=[1.0]}\n',
     "entries.0.kind")])
def test_a_bad_baseline_file_is_one_line(tmp_path, text, needle):
    path = tmp_path / "baseline.toml"
    path.write_text(text)
    with pytest.raises(BaselineError) as exc:
        load_baseline(path)
    assert needle in exc.value.line() and "fix:" in exc.value.line()


# -- the command line --------------------------------------------------------------------------------------------
def tune(*args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith.agents.frontends.cli", *args], cwd=cwd, text=True,
                          capture_output=True, env={**ENV, **(env or {})}, timeout=timeout)


def project(tmp_path: Path) -> Path:
    """The example program and job in a fresh folder."""
    for name in ("blocksum.py", "job.toml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    return tmp_path


def here_baseline(folder: Path, samples=(0.01, 0.011, 0.012, 0.01)) -> Path:
    """A baseline whose fingerprint is this machine's (as the target computes it) for the example job."""
    from tunesmith.runners.job import load_job
    from tunesmith.tools.plugins import TARGETS

    fp = TARGETS.create("command", load_job(folder / "job.toml")).fingerprint()
    entry = ConfigEntry(name="ci-blocksum", job="job.toml", config={"block_kib": 1024, "impl": "a"},
                        performance=Performance.of(list(samples)), fingerprint=fp)
    path = folder / "baseline.toml"
    write_baseline(path, BaselineFile(threshold="median:25%", entries=[entry]))
    return path


def test_cli_bad_baseline_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "baseline.json").write_text("{not json")
    done = tune("ci", "baseline.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: baseline.json: not valid JSON") and "fix:" in done.stderr
    missing = tune("ci", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and missing.stderr.count("\n") == 1


def test_cli_bad_threshold_on_a_terminal_is_one_line_exit_2(tmp_path):
    here_baseline(project(tmp_path))
    child = pexpect.spawn(sys.executable, ["-m", "tunesmith.agents.frontends.cli", "ci", "baseline.toml",
                                           "--threshold", "p99:5%"], cwd=str(tmp_path), env=ENV, encoding="utf-8",
                          timeout=60, dimensions=(40, 200))
    child.expect(pexpect.EOF)
    child.close()
    text = child.before.replace("\r", "")
    assert child.exitstatus == 2 and "error: threshold 'p99:5%' is not in pytest-benchmark's syntax" in text
    assert text.strip().count("\n") == 0


def test_cli_correctness_failure_exits_3(tmp_path):
    here_baseline(project(tmp_path))
    done = tune("ci", "baseline.toml", "--samples", "2", "--no-retune", cwd=tmp_path,
                env={"CI_EXAMPLE_CORRUPT": "1"})
    assert done.returncode == 3, done.stdout + done.stderr
    report = (tmp_path / "ci-report.md").read_text()
    assert "CORRECTNESS FAILURE" in report and "correct=false" in report


def test_cli_broken_store_exits_4(tmp_path):
    here_baseline(project(tmp_path))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "tunesmith.db").write_bytes(b"this is not a database" * 100)
    done = tune("ci", "baseline.toml", "--state-dir", "state", cwd=tmp_path)
    assert done.returncode == 4 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


def test_cli_missing_runner_exits_4(tmp_path):
    """A job whose runner cannot run here (torchrun without torch.distributed) is infrastructure, exit 4."""
    folder = project(tmp_path)
    job = (folder / "job.toml").read_text().replace('kind = "local"', 'kind = "torchrun"')
    (folder / "job.toml").write_text(job)
    here_baseline(folder)
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    done = tune("ci", "baseline.toml", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "fake")})
    assert done.returncode == 4, done.stdout + done.stderr
    assert "runner 'torchrun' cannot run here" in done.stderr and done.stderr.count("\n") == 1


def test_cli_other_machine_is_not_compared(tmp_path):
    path = here_baseline(project(tmp_path))
    data = load_baseline(path)
    data.entries[0].fingerprint["cpu"] = "a machine from elsewhere"
    write_baseline(path, data)
    done = tune("ci", "baseline.toml", cwd=tmp_path, env={"CI_EXAMPLE_SLOWDOWN": "5"})
    assert done.returncode == 0 and "not compared" in done.stdout
    assert not list(tmp_path.glob("*.candidate.toml"))


@pytest.mark.slow
def test_ci_end_to_end_injected_slowdown_fails_and_retune_recovers(tmp_path):
    folder = project(tmp_path)
    study = tune("run", "job.toml", "--plain", cwd=folder)
    assert study.returncode == 0, study.stdout + study.stderr
    wrote = tune("ci", "baseline.toml", "--write-baseline", "--study", "ci-blocksum", "--threshold", "median:25%",
                 cwd=folder)
    assert wrote.returncode == 0, wrote.stderr
    baseline = load_baseline(folder / "baseline.toml")
    assert baseline.entries[0].config["impl"] == "a"  # the implementation the injected regression slows

    # the regression, on a terminal as a person runs it
    child = pexpect.spawn(sys.executable, ["-m", "tunesmith.agents.frontends.cli", "ci", "baseline.toml",
                                           "--no-retune"], cwd=str(folder), env={**ENV, "CI_EXAMPLE_SLOWDOWN": "5"},
                          encoding="utf-8", timeout=300, dimensions=(40, 200))
    child.expect("look 2")  # re-measured once before failing
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1, child.before
    report = (folder / "ci-report.md").read_text()
    assert report.startswith("## tunesmith CI: REGRESSION") and "**regression**" in report
    assert "95% interval" in report and "median:25%" in report
    data = json.loads((folder / "ci-report.json").read_text())
    assert data["exit_code"] == 1 and len(data["entries"][0]["looks"]) == 2
    bench = json.loads((folder / "ci-benchmark.json").read_text())
    assert bench[0]["name"] == "ci-blocksum" and bench[0]["unit"] == "seconds" and bench[0]["value"] > 0
    assert set(bench[0]) == {"name", "unit", "value", "range", "extra"}

    # the re-tune finds the implementation the regression did not touch
    done = tune("ci", "baseline.toml", "--retune", cwd=folder, env={"CI_EXAMPLE_SLOWDOWN": "5"})
    assert done.returncode == 0, done.stdout + done.stderr
    candidate = load_baseline(folder / "baseline.candidate.toml")
    assert candidate.entries[0].config["impl"] == "b"
    assert "re-tune" in (folder / "ci-report.md").read_text()
    status = tune("status", "ci-blocksum.ci-check", cwd=folder)  # the checks live in the same study store
    assert status.returncode == 0 and "ci-blocksum.ci-check" in status.stdout
