"""The HTML report: one self-contained page (plotly.js embedded once, no network) written by `tune report`
beside the Markdown and JSON; rendered in headless Chromium, every plot draws."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.test_cli import make_job, tune
from tunesmith.knowledge.report_html import PLOTS, importance, optuna_study
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory) -> Path:
    """A real study of the toy command (8 trials), reported through `tune report` on a pseudo-terminal."""
    folder = tmp_path_factory.mktemp("html")
    job = make_job(folder, trials=8)
    run = tune("run", str(job), "--plain", "--llm", "off", cwd=folder)
    assert run.returncode == 0, run.stderr
    child = pexpect.spawn(sys.executable, ["-m", "tunesmith.agents.frontends.cli", "report", "toy", "--out", "out"],
                          cwd=str(folder), encoding="utf-8", timeout=120, dimensions=(40, 200))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "toy.html" in child.before.replace("\r", "").replace("\n", "")
    for suffix in ("md", "json", "html"):
        assert (folder / "out" / f"toy.{suffix}").is_file()
    return folder / "out" / "toy.html"


def test_the_page_is_self_contained_with_plotly_once(html_report):
    page = html_report.read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1  # the library's banner: embedded once
    assert not re.search(r"<script[^>]+src=", page) and "cdn" not in page.split("<body>")[1].lower()
    for name in PLOTS:
        assert f'id="plot-{name}"' in page, name
    for section in ("Reasoning trail", "Environment", "Observer highlights", "fANOVA"):
        assert section in page
    assert "resource use:" in page  # the observer's finding for the best and the default


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (CI installs Debian's chromium)")
def test_every_plot_draws_in_headless_chromium(html_report):
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                           "--enable-unsafe-swiftshader", "--virtual-time-budget=20000", "--dump-dom",
                           html_report.as_uri()], capture_output=True, text=True, timeout=180)
    dom = done.stdout
    assert "</html>" in dom, done.stderr[-2000:]
    for name in PLOTS:
        start = dom.index(f'id="plot-{name}"')
        nxt = dom.find('id="plot-', start + 1)
        block = dom[start:nxt if nxt > 0 else len(dom)]
        assert "main-svg" in block, f"the {name} plot did not draw"
    assert 'class="parcoords' in dom or "parcoords" in dom


def _trial(n: int, x: int, y: str, value: float) -> Trial:
    return Trial(study="s", number=n, candidate=Candidate(config={"x": x, "y": y}, origin="planner"),
                 state=TrialState.DONE, measurement=Measurement(status=Status.OK, samples=[value, value * 1.01]))


def test_importance_needs_enough_trials_and_says_so():
    ranked, note = importance([_trial(1, 1, "a", 1.0), _trial(2, 2, "a", 2.0)], minimize=True)
    assert ranked == {} and "at least 4" in note
    many = [_trial(i, i, "ab"[i % 2], float(i)) for i in range(1, 9)]  # x drives the metric, y does not
    ranked, note = importance(many, minimize=True)
    assert "fANOVA" in note and ranked["x"] > ranked["y"]


def test_optuna_study_keeps_values_states_and_attrs():
    failed = Trial(study="s", number=3, candidate=Candidate(config={"x": 3, "y": "a"}), state=TrialState.FAILED,
                   measurement=Measurement(status=Status.RUNTIME, detail="crashed"))
    study = optuna_study([_trial(1, 1, "a", 2.0), _trial(2, 2, "b", 1.0), failed], minimize=True)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.best_trial.params == {"x": 2, "y": "b"} and study.best_value == pytest.approx(1.005)
    assert study.trials[2].user_attrs["status"] == "runtime"
