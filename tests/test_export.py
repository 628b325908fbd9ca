"""`tune export STUDY --optuna URL`: an Optuna storage that optuna.load_study (and optuna-dashboard) opens,
with the study's first runs as trials: values, parameters with the space's distributions, states, user attrs."""

from __future__ import annotations

import json
import sys

import optuna
import pexpect
import pytest

from tests.test_cli import make_job, tune


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    run = tune("run", str(make_job(folder, trials=6)), "--plain", "--llm", "off", cwd=folder)
    assert run.returncode == 0, run.stderr
    return folder


def test_export_loads_back_in_optuna(toy_study):
    url = f"sqlite:///{toy_study / 'optuna.db'}"
    child = pexpect.spawn(sys.executable, ["-m", "tunesmith.agents.frontends.cli", "export", "toy", "--optuna", url],
                          cwd=str(toy_study), encoding="utf-8", timeout=120, dimensions=(40, 250))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "exported 6 trials of toy" in child.before.replace("\r\n", " ")

    report = json.loads((toy_study / ".tunesmith" / "reports" / "toy.json").read_text())
    first = {t["number"]: t for t in report["trials"] if t["origin"] not in ("remeasure", "final")}
    study = optuna.load_study(study_name="toy", storage=url)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and len(study.trials) == len(first)
    for trial in study.trials:
        ours = first[trial.user_attrs["tunesmith_trial"]]
        assert trial.params == ours["config"] and trial.value == pytest.approx(ours["median"])
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.user_attrs["samples"] == ours["samples"] and trial.user_attrs["rationale"] == ours["rationale"]
    # distributions come from the job's space (threads is a power of two from 1 to 8, chunk an int 1..8)
    dists = study.trials[0].distributions
    assert dists["threads"] == optuna.distributions.IntDistribution(1, 8, log=True)
    assert dists["chunk"] == optuna.distributions.IntDistribution(1, 8)
    fastest = min(first.values(), key=lambda t: t["median"])
    assert study.best_trial.user_attrs["tunesmith_trial"] == fastest["number"]
    assert study.user_attrs["best_trial"] == report["best"]["number"] and study.user_attrs["metric"] == "seconds"


def test_export_refuses_to_overwrite_without_asking(toy_study):
    url = f"sqlite:///{toy_study / 'twice.db'}"
    assert tune("export", "toy", "--optuna", url, cwd=toy_study).returncode == 0
    again = tune("export", "toy", "--optuna", url, cwd=toy_study)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    assert tune("export", "toy", "--optuna", url, "--overwrite", cwd=toy_study).returncode == 0
    assert len(optuna.get_all_study_names(url)) == 1


def test_export_bad_input_is_one_line(toy_study):
    bad_url = tune("export", "toy", "--optuna", "sqlite:////no/such/folder/x.db", cwd=toy_study)
    assert bad_url.returncode == 2 and bad_url.stderr.startswith("error: --optuna") and "fix:" in bad_url.stderr
    missing = tune("export", "nosuch", "--optuna", f"sqlite:///{toy_study / 'm.db'}", cwd=toy_study)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
