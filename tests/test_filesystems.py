"""Real file systems on loopback: GlusterFS volumes and JuiceFS mounts started and torn down by the project,
and a setting a study applies on them put back after the study, after Ctrl-C, and after kill -9 and a rerun.

The live tests are slow and skip, with the reason, where glusterd, FUSE or root is missing. The option
lists parsed from the tools' help output are tested on text recorded from glusterfs 10.3 and juicefs 1.4.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tunesmith.runners.appliers import gluster as gluster_applier
from tunesmith.runners.changes import ChangeLedger
from tunesmith.runners.filesystems import options
from tunesmith.runners.filesystems.gluster import GlusterVolume, gluster_usable, volumes
from tunesmith.runners.filesystems.juicefs import JuiceFSMount, is_mounted, read_state

DATA = Path(__file__).parent / "data" / "appliers"
OPTION = "performance.write-behind"


# -- option lists from the tools' own help --------------------------------------------------------------
def test_gluster_help_becomes_params_with_their_quotes() -> None:
    text = (DATA / "gluster_set_help.txt").read_text()
    docs = options.parse_gluster_help(text)
    assert len(docs) > 200 and {d.name for d in docs} >= {OPTION, "performance.io-thread-count"}
    params = {p.setting: p for p in options.gluster_params(text, "vol")}
    threads = params["gluster:vol:performance.io-thread-count"]
    assert (threads.kind, threads.default, threads.low, threads.high) == ("int", 16, 1, 64)  # bounds from the text
    wb = params[f"gluster:vol:{OPTION}"]
    assert wb.kind == "bool" and wb.default is True and wb.apply == "setting"
    assert wb.source.kind == "manual" and wb.source.ref == "gluster volume set help" and len(wb.source.quote) > 20
    window = params["gluster:vol:performance.write-behind-window-size"]
    assert window.kind == "choice" and window.default == "1MB" and "4MB" in window.values


def test_juicefs_help_becomes_params() -> None:
    text = (DATA / "juicefs_mount_help.txt").read_text()
    docs = {d.name: d for d in options.parse_juicefs_help(text)}
    assert docs["writeback"].category == "DATA CACHE" and not docs["writeback"].takes_value
    assert docs["buffer-size"].default == "300M" and docs["max-uploads"].default == "20"
    params = {p.name: p for p in options.juicefs_params(text, "/mnt/jfs", ["writeback", "buffer-size", "max-uploads"])}
    assert params["writeback"].kind == "bool" and params["writeback"].setting == "juicefs:/mnt/jfs:writeback"
    assert params["buffer_size"].values == ("75M", "300M", "1200M") and params["max_uploads"].default == 20


# -- live file systems -----------------------------------------------------------------------------------
def _skip_without_gluster() -> None:
    ok, why = gluster_usable()
    if not ok:
        pytest.skip(why)


def _value(volume: str) -> dict:
    return gluster_applier.current(volume, OPTION)


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory):
    _skip_without_gluster()
    root = tmp_path_factory.mktemp("gluster")
    name = f"tstest{os.getpid()}"
    with GlusterVolume(root / "fs", name, ChangeLedger(root / "fs-changes.jsonl")) as vol:
        yield vol
    assert name not in volumes() and not is_mounted(vol.mountpoint)


PROBE = textwrap.dedent("""
    import json, os, subprocess, sys, time
    vol, log, hold = sys.argv[1], sys.argv[2], sys.argv[3]
    out = subprocess.run(["gluster", "volume", "get", vol, "performance.write-behind"], capture_output=True,
                         text=True).stdout.split()[-1]
    with open(log, "a") as fh:
        fh.write(out + "\\n")
    t = time.perf_counter()
    with open(os.path.join(sys.argv[4], "data"), "wb") as fh:
        fh.write(b"x" * 65536)
    while out == "off" and os.path.exists(hold):
        time.sleep(0.1)
    json.dump({"seconds": time.perf_counter() - t}, open(os.environ["TUNESMITH_RESULT"], "w"))
""")

JOB = """
name = "gluster-setting"
target = "command"
[workload]
command = ["{{python}}", "probe.py", "{volume}", "{log}", "{hold}", "{{out}}"]
output_dir = "{mount}"
drop_caches = false
[workload.params.write_behind]
kind = "bool"
default = true
apply = "setting"
setting = "gluster:{volume}:performance.write-behind"
[budget]
trials = 2
[measure]
repeats = 1
remeasure = false
[runner]
timeout_s = 120
[strategy]
name = "grid"
"""


def _job(tmp: Path, vol: GlusterVolume) -> tuple[Path, Path, Path]:
    (tmp / "probe.py").write_text(PROBE)
    log, hold = tmp / "seen.log", tmp / "hold"
    job = tmp / "job.toml"
    job.write_text(JOB.format(volume=vol.name, log=log, hold=hold, mount=vol.mountpoint))
    return job, log, hold


def _tune(job: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "tunesmith.agents.frontends.cli", "run", str(job), "--plain", "--llm", "off",
            "--state-dir", str(tmp / "state")]


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            pytest.fail(f"tune run ended ({proc.returncode}) before the setting was applied")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the setting was never applied")


ENV = {**os.environ, "LANGSMITH_TRACING": "false"}


@pytest.mark.slow
def test_a_gluster_option_set_in_a_study_is_back_after_it(volume: GlusterVolume, tmp_path: Path) -> None:
    job, log, _ = _job(tmp_path, volume)
    done = subprocess.run(_tune(job, tmp_path), capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert log.read_text().split() == ["on", "off"]  # the default, then the trial that turned it off
    assert _value(volume.name) == {"volume": volume.name, "option": OPTION, "value": "on", "reconfigured": False}


@pytest.mark.slow
def test_ctrl_c_puts_the_gluster_option_back(volume: GlusterVolume, tmp_path: Path) -> None:
    job, log, hold = _job(tmp_path, volume)
    hold.touch()
    proc = subprocess.Popen(_tune(job, tmp_path), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(log, "off", proc)
    assert _value(volume.name)["value"] == "off"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert _value(volume.name)["value"] == "on" and not _value(volume.name)["reconfigured"]


@pytest.mark.slow
def test_kill_9_then_a_rerun_puts_the_gluster_option_back(volume: GlusterVolume, tmp_path: Path) -> None:
    job, log, hold = _job(tmp_path, volume)
    hold.touch()
    proc = subprocess.Popen(_tune(job, tmp_path), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(log, "off", proc)
    proc.kill()
    proc.wait(timeout=60)
    assert _value(volume.name)["value"] == "off"  # nobody restored it: the ledger entry is pending
    assert ChangeLedger(tmp_path / "state" / "changes.jsonl").pending()
    hold.unlink()
    done = subprocess.run(_tune(job, tmp_path), capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert log.read_text().split()[0:2] == ["on", "off"] and log.read_text().split()[-1] == "off"  # retried
    assert _value(volume.name)["value"] == "on" and not ChangeLedger(tmp_path / "state" / "changes.jsonl").pending()


@pytest.mark.slow
def test_a_killed_file_system_holder_is_torn_down_by_cleanup(tmp_path: Path) -> None:
    _skip_without_gluster()
    ledger = tmp_path / "changes.jsonl"
    name = f"tskill{os.getpid()}"
    cmd = [sys.executable, "-m", "tunesmith.runners.filesystems", "gluster", "--root", str(tmp_path / "g"),
           "--name", name, "--ledger", str(ledger)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=ENV)
    mountpoint = Path(proc.stdout.readline().strip())  # printed once it is mounted
    assert is_mounted(mountpoint) and name in volumes()
    proc.kill()
    proc.wait()
    assert is_mounted(mountpoint) and name in volumes()  # a kill -9 leaves it up ...
    subprocess.run([*cmd[:3], "cleanup", "--ledger", str(ledger)], check=True, env=ENV, timeout=120)
    assert not is_mounted(mountpoint) and name not in volumes()  # ... and the ledger takes it down


@pytest.mark.slow
def test_juicefs_mount_remounts_with_options_and_is_removed(tmp_path: Path) -> None:
    if not Path("/dev/fuse").exists() or os.geteuid() != 0:
        pytest.skip("JuiceFS needs FUSE and root here")
    from tunesmith.runners.appliers import TrialSettings, parse_setting

    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    with JuiceFSMount(tmp_path / "j", "tsjfs", ledger) as fs:
        (fs.mountpoint / "f").write_bytes(b"x" * 4096)
        setting = parse_setting(f"juicefs:{fs.mountpoint}:writeback", where="p")
        with TrialSettings({setting: True}, ledger, tmp_path):
            assert read_state(fs.mountpoint)["options"]["writeback"] is True and is_mounted(fs.mountpoint)
            assert (fs.mountpoint / "f").read_bytes() == b"x" * 4096  # same volume, remounted
        assert "writeback" not in read_state(fs.mountpoint)["options"] and is_mounted(fs.mountpoint)
    assert not is_mounted(fs.mountpoint) and not (tmp_path / "j").exists() and not ledger.pending()


@pytest.mark.parametrize("name", ["metadata_gluster.toml", "hdf5_juicefs.toml"])
def test_the_file_system_example_jobs_name_their_settings(name: str) -> None:
    from tunesmith.runners.appliers import settings_of
    from tunesmith.runners.job import load_job
    from tunesmith.tools.plugins import TARGETS

    job = load_job(Path(__file__).parent.parent / "examples" / "io" / "fs" / name)
    target = TARGETS.create(job.target, job)
    settings = settings_of(target.space().params)
    assert len(settings) == 2 and {s.family for s in settings.values()} <= {"gluster", "juicefs"}
    assert all(s.needs_root for s in settings.values())
    assert job.resolve(target.command_template()[1]).is_file()  # the workload script, relative to the job
