"""Job files: valid ones load, every malformed one gives one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.runners.errors import JobError
from tunesmith.runners.job import load_job

GOOD = """
name = "demo"
target = "checkpoint_io"
[budget]
trials = 5
[objective]
metric = "seconds"
direction = "minimize"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "job.toml"
    p.write_text(text)
    return p


def test_good_job_loads_with_defaults(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD))
    assert job.name == "demo" and job.budget.trials == 5
    assert job.measure.repeats == 3 and job.objective.minimize
    assert job.base_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = 'x'\ntarget = 'a'\n[budget]\ntrials = 'many'\n", "budget.trials"),
        ("name = 'x'\ntarget = 'a'\n[budget]\ntrials = 0\n", "budget.trials"),
        ("name = 'x'\ntarget = 'a'\n[budgett]\ntrials = 3\n", "budgett: unknown field"),
        ("target = 'a'\n", "name: required field is missing"),
        ("name = 'x'\ntarget = 'a'\n[objective]\ndirection = 'up'\n", "objective.direction"),
        ("name = 'bad name!'\ntarget = 'a'\n", "name"),
        ("name = 'x'\ntarget = \n", "not valid TOML"),
    ],
)
def test_bad_job_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, text))
    line = str(info.value)
    assert expected in line
    assert "\n" not in line and "fix:" in line


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        load_job(tmp_path / "nope.toml")


def test_definition_hash_ignores_budget_but_not_workload(tmp_path: Path) -> None:
    a = load_job(write(tmp_path, GOOD))
    b = load_job(write(tmp_path, GOOD.replace("trials = 5", "trials = 50")))
    c = load_job(write(tmp_path, GOOD + "[workload]\nsize_mb = 4\n"))
    assert a.definition_hash() == b.definition_hash()
    assert a.definition_hash() != c.definition_hash()


# bad definitions that used to run silently wrong --------------------------------------------------------
@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("budget", "wall_time_s = nan"),
        ("budget", "wall_time_s = inf"),
        ("runner", "timeout_s = nan"),
        ("runner", "timeout_s = inf"),
        ("objective", "min_effect = nan"),
        ("llm", "price_in_per_mtok = -inf"),
    ],
)
def test_nan_and_inf_limits_are_refused(tmp_path: Path, section: str, line: str) -> None:
    with pytest.raises(JobError) as info:
        load_job(write(tmp_path, f"name = 'demo'\ntarget = 'checkpoint_io'\n[{section}]\n{line}\n"))
    text = str(info.value)
    field = f"{section}.{line.split()[0]}"
    assert f"{field}: Input should be a finite number; fix: write a finite number" in text and "\n" not in text


COMMAND = {
    "command": ["{python}", "bench.py", "--threads", "{threads}", "--mode", "{mode}"],
    "params": {
        "threads": {"kind": "pow2", "low": 1, "high": 8, "default": 1},
        "mode": {"kind": "choice", "values": ["a", "b"], "default": "a"},
        "direct": {"kind": "bool", "default": False, "apply": "env"},
    },
}


def command_target(tmp_path: Path, *, space: dict | None = None, baseline: dict | None = None, **workload):
    from tunesmith.runners.job import parse_job
    from tunesmith.tools.plugins import TARGETS

    data = {"name": "cmd", "target": "command", "workload": {**COMMAND, **workload},
            "space": space or {}, "baseline": baseline or {}}
    return TARGETS.create("command", parse_job(data, base_dir=tmp_path))


def refused(tmp_path: Path, **kw) -> str:
    with pytest.raises(JobError) as info:
        target = command_target(tmp_path, **kw)
        target.space()
        target.baseline()
    text = str(info.value)
    assert "\n" not in text and "; fix: " in text
    return text


def test_a_good_command_job_builds_its_space(tmp_path: Path) -> None:
    target = command_target(tmp_path, constraints=["not direct or threads <= 4"], space={"threads": {"values": [1, 4]}})
    assert target.space().get("threads").grid() == [1, 4]
    assert target.baseline().config == {"threads": 1, "mode": "a", "direct": False}


@pytest.mark.parametrize(
    ("constraints", "needle"),
    [
        (["thread <= 4"], "workload.constraints[1]: unknown parameter 'thread' in 'thread <= 4'; "
                          "fix: use one of threads, mode, direct"),
        (["threads <= 4", "threads <"], "workload.constraints[2]: 'threads <' does not parse"),
        (["open('x') is None"], "workload.constraints[1]: \"open('x') is None\" calls open()"),
    ],
)
def test_bad_constraint_is_a_job_error(tmp_path: Path, constraints: list, needle: str) -> None:
    assert needle in refused(tmp_path, constraints=constraints)


def test_baseline_breaking_a_constraint_names_it(tmp_path: Path) -> None:
    text = refused(tmp_path, constraints=["threads >= 2"])
    assert text.startswith("baseline: the default configuration breaks the constraint 'threads >= 2'")
    assert "mode > 3" in refused(tmp_path, constraints=["mode > 3"])  # a TypeError on the baseline, named
    assert refused(tmp_path, constraints=["threads <= 4"], baseline={"threads": 8}).startswith("baseline:")
    target = command_target(tmp_path, constraints=["threads >= 2"], baseline={"threads": 2})
    assert target.baseline().config["threads"] == 2


def test_command_target_applies_arg_env_and_named_settings(tmp_path: Path) -> None:
    params = {**COMMAND["params"], "direct": {"kind": "bool", "default": False, "apply": "meta"}}
    text = refused(tmp_path, params=params)
    assert text.startswith("parameter 'direct': apply = 'meta' is not applied by the command target")
    assert "fix: use 'arg' or 'env' or 'setting'" in text
    params["direct"]["apply"] = "setting"  # a setting must say which one (runners/appliers/spec.py)
    assert refused(tmp_path, params=params).startswith("workload.params.direct.setting: missing or empty")


def test_targets_say_what_they_apply() -> None:
    from tunesmith.kernels.target import TritonConfigTarget
    from tunesmith.runners.io.checkpoint_io import CheckpointIOTarget
    from tunesmith.runners.training.target import TrainingTarget

    assert CheckpointIOTarget.applies == ("arg", "env", "setting") and TritonConfigTarget.applies == ("meta",)
    assert TrainingTarget.applies == ("arg",)


@pytest.mark.parametrize(
    ("param", "needle"),
    [
        ({"kind": "int", "low": 8, "high": 2, "default": 2}, "workload.params.threads: low 8 is above high 2; fix: swap them"),
        ({"kind": "float", "low": 0.0, "high": float("nan"), "default": 0.0}, "threads.high: nan is not a finite number"),
        ({"kind": "int", "low": 1, "high": 8, "default": 1, "vlaues": [1]}, "workload.params.threads.vlaues: unknown field"),
        ({"kind": "choice", "values": [], "default": 1}, "workload.params.threads.values: must be a non-empty list"),
        ({"kind": "pow2", "low": 1, "high": 8, "default": 3}, "workload.params.threads: default 3 is outside its range"),
        ({"kind": "integer", "low": 1, "high": 8, "default": 1}, "workload.params.threads.kind: Input should be"),
        ({"kind": "int", "low": "1", "high": 8, "default": 1}, "workload.params.threads.low: '1' is not a number"),
    ],
)
def test_bad_workload_param_is_one_line(tmp_path: Path, param: dict, needle: str) -> None:
    assert needle in refused(tmp_path, params={**COMMAND["params"], "threads": param})


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ({"threads": {"values": ["1", "2"]}}, "space.threads.values: '1' is not a number"),
        ({"threads": {"values": [1.0, 2.0]}}, "space.threads.values: 1.0 is not a whole number"),
        ({"threads": {"values": [1, 32]}}, "space.threads.values: 32 is outside the range of threads"),
        ({"threads": {"values": []}}, "space.threads.values: must be a non-empty list"),
        ({"direct": {"values": [True, False]}}, "space.direct.values: a bool parameter has no values list"),
        ({"threads": {"vlaues": [1, 2]}}, "space.threads.vlaues: unknown field"),
        ({"threads": {"low": 8, "high": 2}}, "space.threads: low 8 is above high 2; fix: swap them"),
        ({"threads": {"high": float("inf")}}, "space.threads.high: inf is not a finite number"),
        ({"thread": {"values": [1]}}, "space: unknown parameter 'thread'"),
    ],
)
def test_bad_space_override_is_a_job_error(tmp_path: Path, space: dict, needle: str) -> None:
    assert needle in refused(tmp_path, space=space)
