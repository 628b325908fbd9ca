"""`tune knowledge ...` through the real console script (pipes and a terminal), and [space] from_manual."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.agents.study import prepare_job
from tunesmith.runners.errors import JobError

DATA = Path(__file__).parent / "data" / "knowledge"
TUNE = shutil.which("tune") or str(Path(sys.executable).with_name("tune"))


def tune(*args: str, kdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNESMITH_KNOWLEDGE": str(kdir), "TUNESMITH_EMBEDDER": "hashing"}
    return subprocess.run([TUNE, "knowledge", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def kdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("k")
    manual = d / "juicefs-mount-help.txt"
    manual.write_text((DATA / "juicefs-mount-help.txt").read_text())
    r = tune("ingest", str(manual), str(DATA / "mount.fuse3.8"), str(d / "missing.pdf"), kdir=d / "store")
    assert r.returncode == 2, r.stderr
    assert "ingested juicefs-mount-help: 13 chunks" in r.stdout and "ingested mount.fuse3:" in r.stdout
    assert r.stderr.strip().splitlines() == [f"error: {d / 'missing.pdf'}: no such file; fix: check the path"]
    return d / "store"


def test_ingest_again_is_unchanged_and_list_shows_sources(kdir):
    r = tune("ingest", str(DATA / "mount.fuse3.8"), kdir=kdir)
    assert r.returncode == 0 and "unchanged mount.fuse3: already ingested" in r.stdout
    listing = tune("list", kdir=kdir).stdout
    assert "juicefs-mount-help" in listing and "mount.fuse3" in listing and "man" in listing


def test_search_and_params_as_json(kdir):
    r = tune("search", "max number of cached items in the local cache", "--k", "3", "--json", kdir=kdir)
    hits = json.loads(r.stdout)
    assert r.returncode == 0 and len(hits) == 3 and hits[0]["citation"] and "lines" in hits[0]["citation"]
    p = tune("params", "juicefs-mount-help", "--json", kdir=kdir)
    data = json.loads(p.stdout)
    by = {x["name"]: x for x in data["params"]}
    assert len(by) == 71 and by["cache-size"]["default"] == "100G" and by["cache-size"]["chunk"]
    assert by["writeback"]["apply"] == "juicefs mount --writeback"


def test_forget_and_usage_errors_in_process(kdir, monkeypatch):
    from typer.testing import CliRunner

    from tunesmith.agents.frontends.cli import app

    monkeypatch.setenv("TUNESMITH_KNOWLEDGE", str(kdir))
    run = CliRunner().invoke
    wrong = run(app, ["knowledge", "search", "x", "--collection", "manual"])
    assert wrong.exit_code == 2 and "use one of manuals" in wrong.output
    assert run(app, ["knowledge", "reflections"]).output.startswith("no lessons stored yet")
    gone = run(app, ["knowledge", "forget", "mount.fuse3"])
    assert gone.exit_code == 0 and "forgot mount.fuse3: 30 chunks removed" in gone.output
    assert run(app, ["knowledge", "forget", "mount.fuse3"]).exit_code == 2
    bad = run(app, ["knowledge", "params", "nothing-like-this"])
    assert bad.exit_code == 2 and "error: no manual named 'nothing-like-this' is ingested; fix:" in bad.output
    nothing = run(app, ["knowledge", "ingest"])
    assert nothing.exit_code == 2 and "error: nothing to ingest; fix:" in nothing.output


def test_search_in_a_terminal(kdir):
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "TUNESMITH_KNOWLEDGE": str(kdir), "TUNESMITH_EMBEDDER": "hashing", "COLUMNS": "200"}
    child = pexpect.spawn(TUNE, ["knowledge", "search", "upload blocks in background", "--k", "2"], env=env,
                          encoding="utf-8", timeout=60)
    child.expect(r"1\. \[\d\.\d+\] juicefs-mount-help")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def _job(tmp_path: Path, kdir: Path, select: str, params: str = "") -> Path:
    (tmp_path / "bench.py").write_text("print(1)\n")
    job = tmp_path / "job.toml"
    job.write_text(f'''name = "jfs"
target = "command"
[workload]
command = ["{{python}}", "bench.py", "--prefetch", "{{prefetch}}", "{{writeback}}", "--eviction", "{{cache_eviction}}"]
{params}
[space]
from_manual = "juicefs-mount-help"
select = {select}
knowledge_dir = "{kdir}"
''')
    return job


def test_a_job_takes_its_space_from_a_manual(kdir, tmp_path):
    job = prepare_job(_job(tmp_path, kdir, '["prefetch", "writeback", "cache-eviction"]',
                           "[workload.params.prefetch]\nlow = 1\nhigh = 8\n"))
    params = job.workload["params"]
    assert params["prefetch"]["kind"] == "int" and params["prefetch"]["default"] == 1 and params["prefetch"]["high"] == 8
    assert params["writeback"]["kind"] == "bool" and params["writeback"]["default"] is False
    assert params["cache_eviction"] == {**params["cache_eviction"], "kind": "choice", "values": ["none", "2-random", "lru"],
                                        "default": "2-random"}
    assert "[juicefs-mount-help line" in params["prefetch"]["help"]
    with pytest.raises(JobError, match=r"'prefetch' \(juicefs-mount-help line \d+\) states no range.*fix: give "
                                       r"\[workload.params.prefetch\] low and high"):
        prepare_job(_job(tmp_path, kdir, '["prefetch", "writeback", "cache-eviction"]'))
    with pytest.raises(JobError, match="'prefetch-depth' is not a parameter of manual"):
        prepare_job(_job(tmp_path, kdir, '["prefetch-depth"]'))
