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
