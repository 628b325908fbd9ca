"""Appliers: the setting syntax, Lustre/Gluster/block command construction and output parsing on recorded
text, and apply-then-restore through the change ledger (normal exit, failure, kill -9 then a fresh process)
against stand-in tools on PATH (tests/data/appliers/fake_tool.py). Nothing here touches a live Lustre."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.runners.appliers import (
    SETTINGS_ENV,
    TrialSettings,
    block,
    gluster,
    lustre,
    parse_setting,
    settings_of,
)
from tunesmith.runners.appliers import apply as apply_mod
from tunesmith.runners.appliers.shell import ApplyError
from tunesmith.runners.changes import ChangeLedger
from tunesmith.runners.errors import JobError
from tunesmith.runners.space import Param

DATA = Path(__file__).parent / "data" / "appliers"
LCTL_DEVICES = [f"osc.lustre-OST000{i}-osc-ffff9a2b3c4d5e00.max_rpcs_in_flight" for i in range(4)]


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """gluster, lctl, lfs and blockdev stand-ins on PATH; returns their state file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gluster", "lctl", "lfs", "blockdev"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DATA / "fake_tool.py"}" {tool} "$@"\n')
        script.chmod(0o755)
    state = tmp_path / "tools.json"
    state.write_text(json.dumps({
        "gluster": {"vol": {"performance.write-behind": {"default": "on", "set": None},
                            "performance.io-thread-count": {"default": "16", "set": "8"}}},
        "lctl": {name: "8" for name in LCTL_DEVICES} | {LCTL_DEVICES[2]: "16"},
        "blockdev": {"/dev/sdz": 256},
    }))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TOOL_STATE", str(state))
    monkeypatch.setattr(apply_mod, "is_root", lambda: True)
    return state


def _state(path: Path) -> dict:
    return json.loads(path.read_text())


# -- the job-file syntax ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "family", "scope", "key"), [
    ("romio:cb_buffer_size", "romio", "", "cb_buffer_size"),
    ("lustre:stripe_count", "lustre", "", "stripe_count"),
    ("lustre:osc.*.max_rpcs_in_flight", "lustre", "", "osc.*.max_rpcs_in_flight"),
    ("gluster:vol:performance.write-behind", "gluster", "vol", "performance.write-behind"),
    ("juicefs:/mnt/a:b:writeback", "juicefs", "/mnt/a:b", "writeback"),
    ("block:sda:read_ahead", "block", "sda", "read_ahead"),
    ("hdf5:alignment_size", "hdf5", "", "alignment_size"),
])
def test_settings_parse(text: str, family: str, scope: str, key: str) -> None:
    s = parse_setting(text, where="p")
    assert (s.family, s.scope, s.key, s.text) == (family, scope, key, text)


@pytest.mark.parametrize(("text", "needle"), [
    ("lustre.stripe_count", 'fix: write "lustre:stripe_count"'),
    ("osc:max_rpcs", "unknown family 'osc'"),
    ("lustre:osc.*.checksums", "off-limits"),
    ("lustre:llite.*.checksum_pages", "off-limits"),
    ("gluster:performance.write-behind", 'fix: write "gluster:VOLUME:performance.write-behind"'),
    ("juicefs:mnt:writeback", "not absolute"),
    ("hdf5:alignment", "unknown HDF5 property"),
    ("block:sda:nr_requests", "use read_ahead or scheduler"),
    ("", "missing or empty"),
    ("romio:cb buffer", "has characters"),
])
def test_bad_settings_are_one_line_with_a_fix(text: str, needle: str) -> None:
    with pytest.raises(JobError) as err:
        parse_setting(text, where="workload.params.x")
    line = err.value.line()
    assert needle in line and "; fix: " in line and "\n" not in line and line.startswith("workload.params.x.setting")


def test_settings_of_reads_the_param_field_and_refuses_a_stray_one() -> None:
    params = [Param(name="wb", kind="bool", default=True, apply="setting", setting="gluster:v:performance.write-behind"),
              Param(name="t", kind="int", low=1, high=4, default=1)]
    assert settings_of(params)["wb"].scope == "v"
    stray = [Param(name="t", kind="int", low=1, high=4, default=1, setting="romio:cb_nodes")]
    with pytest.raises(JobError, match='only used with apply = "setting"'):
        settings_of(stray)


# -- Lustre: commands and parsing (recorded text; unverified on a live Lustre) ------------------------
def test_lfs_getstripe_file_dir_and_pfl_forms() -> None:
    f = lustre.parse_getstripe((DATA / "lfs_getstripe_file.txt").read_text())
    assert (f["stripe_count"], f["stripe_size"], f["pattern"], f["stripe_offset"]) == (4, 1048576, "raid0", 2)
    d = lustre.parse_getstripe((DATA / "lfs_getstripe_dir.txt").read_text())
    assert (d["stripe_count"], d["stripe_offset"]) == (1, -1)
    pfl = lustre.parse_getstripe((DATA / "lfs_getstripe_pfl.txt").read_text())
    assert pfl["pattern"] == "mdt"  # the first component
    with pytest.raises(ApplyError, match="no stripe_count"):
        lustre.parse_getstripe("lfs: not on a Lustre file system")


def test_lfs_setstripe_command() -> None:
    argv = lustre.setstripe_argv("/lus/out", {"stripe_count": 4, "stripe_size": "4M"})
    assert argv == ["lfs", "setstripe", "-c", "4", "-S", str(4 << 20), "/lus/out"]
    dom = lustre.setstripe_argv("/lus/out", {"stripe_count": -1, "layout": "mdt", "stripe_size": 1 << 20})
    assert dom == ["lfs", "setstripe", "-E", "1048576", "-L", "mdt", "-E", "-1", "-c", "-1", "/lus/out"]
    for bad in ({"stripe_size": "100K"}, {"stripe_count": 0}, {"layout": "raid1"}):
        with pytest.raises(ApplyError):
            lustre.setstripe_argv("/lus/out", bad)


def test_lctl_parsing_and_set_param_never_persistent() -> None:
    values = lustre.parse_get_param((DATA / "lctl_get_param.txt").read_text())
    assert len(values) == 4 and values[LCTL_DEVICES[2]] == "16"
    stats = lustre.parse_get_param((DATA / "lctl_get_param_stats.txt").read_text())
    assert stats == {"llite.lustre-ffff9a2b3c4d5e00.max_read_ahead_mb": "64"}  # multi-line stats skipped
    argv = lustre.set_param_argv("osc.*.max_rpcs_in_flight", 32)
    assert argv == ["lctl", "set_param", "osc.*.max_rpcs_in_flight=32"] and "-P" not in argv
    with pytest.raises(ApplyError, match="off-limits"):
        lustre.set_param_argv("osc.*.checksums", 0)


# -- Gluster and block parsing (recorded on glusterfs 10.3) -------------------------------------------
def test_gluster_output_parsing() -> None:
    assert gluster.parse_volume_get((DATA / "gluster_volume_get.txt").read_text(), "performance.io-thread-count") == "8"
    reconf = gluster.parse_reconfigured((DATA / "gluster_volume_info_reconfigured.txt").read_text())
    assert reconf["performance.io-thread-count"] == "8" and "Bricks" not in reconf
    assert "performance.io-thread-count" not in gluster.parse_reconfigured((DATA / "gluster_volume_info.txt").read_text())
    assert gluster.gluster_value(False) == "off" and gluster.gluster_value(4) == "4"


def test_block_scheduler_and_read_ahead_commands(tmp_path: Path) -> None:
    assert block.parse_scheduler("mq-deadline kyber [bfq] none\n") == ("bfq", ["mq-deadline", "kyber", "bfq", "none"])
    assert block.setra_argv("sda", 4096) == ["blockdev", "--setra", "4096", "/dev/sda"]
    sched = tmp_path / "scheduler"
    sched.write_text("[mq-deadline] none\n")
    with pytest.raises(ApplyError, match="not offered"):
        block.set_scheduler(sched, "bfq")
    with pytest.raises(ApplyError):
        block.device_path("../../etc/passwd")


# -- applying and restoring -----------------------------------------------------------------------------
def test_workload_settings_become_a_romio_hints_file_and_variables(tmp_path: Path) -> None:
    settings = {parse_setting("romio:romio_cb_write", where="p"): False,
                parse_setting("romio:cb_buffer_size", where="p"): 16777216,
                parse_setting("hdf5:alignment_size", where="p"): 1048576,
                parse_setting("posix:transfer_size", where="p"): 65536}
    with TrialSettings(settings, None, tmp_path) as ts:
        env = ts.env
    hints = Path(env["ROMIO_HINTS"]).read_text().splitlines()
    assert hints == ["romio_cb_write disable", "cb_buffer_size 16777216"]
    assert env["TUNESMITH_HDF5_ALIGNMENT_SIZE"] == "1048576" and env["TUNESMITH_POSIX_TRANSFER_SIZE"] == "65536"
    assert json.loads(env[SETTINGS_ENV])["romio"]["cb_buffer_size"] == 16777216


def test_outside_settings_are_recorded_before_and_restored_after(tools: Path, tmp_path: Path) -> None:
    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    settings = {parse_setting("gluster:vol:performance.write-behind", where="p"): False,
                parse_setting("gluster:vol:performance.io-thread-count", where="p"): 32,
                parse_setting("lustre:osc.*.max_rpcs_in_flight", where="p"): 64,
                parse_setting("block:sdz:read_ahead", where="p"): 8192}
    with TrialSettings(settings, ledger, tmp_path):
        during = _state(tools)
        assert len(ledger.pending()) == 4
    after = _state(tools)
    assert during["gluster"]["vol"]["performance.write-behind"]["set"] == "off"
    assert set(during["lctl"].values()) == {"64"} and during["blockdev"]["/dev/sdz"] == 8192
    assert after["gluster"]["vol"]["performance.write-behind"]["set"] is None  # reset: it was a default
    assert after["gluster"]["vol"]["performance.io-thread-count"]["set"] == "8"  # set back: it was reconfigured
    assert after["lctl"][LCTL_DEVICES[2]] == "16" and after["lctl"][LCTL_DEVICES[0]] == "8"  # per device
    assert after["blockdev"]["/dev/sdz"] == 256 and not ledger.pending() and not after.get("forbidden")
    calls = [c for c in after["calls"] if c[0] == "gluster" and "set" in c]
    assert calls[0][-3:] == ["vol", "performance.write-behind", "off"]


def test_a_failing_setting_restores_what_was_already_applied(tools: Path, tmp_path: Path) -> None:
    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    settings = {parse_setting("gluster:vol:performance.write-behind", where="p"): False,
                parse_setting("lustre:mdc.*.max_rpcs_in_flight", where="p"): 4}  # matches no device
    with pytest.raises(ApplyError, match="matched nothing"):
        TrialSettings(settings, ledger, tmp_path).__enter__()
    assert _state(tools)["gluster"]["vol"]["performance.write-behind"]["set"] is None and not ledger.pending()


def test_without_root_a_root_setting_is_skipped_and_said(tools: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply_mod, "is_root", lambda: False)
    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    with TrialSettings({parse_setting("block:sdz:read_ahead", where="p"): 8192}, ledger, tmp_path) as ts:
        assert ts.notes == ["setting block:sdz:read_ahead=8192 skipped: it needs root"]
    assert _state(tools)["blockdev"]["/dev/sdz"] == 256 and not ledger.pending()


def test_lustre_striping_is_set_on_each_fresh_output_folder(tools: Path, tmp_path: Path) -> None:
    ledger = ChangeLedger(tmp_path / "changes.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    settings = {parse_setting("lustre:stripe_count", where="p"): 2,
                parse_setting("lustre:stripe_size", where="p"): "1M"}
    with TrialSettings(settings, ledger, tmp_path) as ts:
        ts.prepare_output(out)
        ts.prepare_output(out)
    lfs = [c for c in _state(tools)["calls"] if c[0] == "lfs" and c[1] == "setstripe"]
    assert lfs[0] == ["lfs", "setstripe", "-c", "2", "-S", "1048576", str(out)] and len(lfs) == 3
    assert lfs[2] == ["lfs", "setstripe", "-d", str(out)] and not ledger.pending()
    state = _state(tools)
    tools.write_text(json.dumps({**state, "lfs_count_override": 1}))  # the layout did not take
    with pytest.raises(ApplyError, match="stripe_count 1 after setting 2"), TrialSettings(settings, ledger, tmp_path) as ts:
        ts.prepare_output(out)
    assert not ledger.pending()


KILLED = """
import os, signal, sys
from pathlib import Path
from tunesmith.runners.appliers import TrialSettings, parse_setting
from tunesmith.runners.appliers import apply as a
from tunesmith.runners.changes import ChangeLedger
a.is_root = lambda: True
ts = TrialSettings({parse_setting("gluster:vol:performance.write-behind", where="p"): False,
                    parse_setting("block:sdz:read_ahead", where="p"): 8192}, ChangeLedger(sys.argv[1]), Path(sys.argv[2]))
ts.__enter__()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_leaves_pending_entries_a_fresh_process_restores(tools: Path, tmp_path: Path) -> None:
    ledger_path = tmp_path / "changes.jsonl"
    done = subprocess.run([sys.executable, "-c", KILLED, str(ledger_path), str(tmp_path)], check=False)
    assert done.returncode == -signal.SIGKILL
    killed = _state(tools)
    assert killed["gluster"]["vol"]["performance.write-behind"]["set"] == "off" and killed["blockdev"]["/dev/sdz"] == 8192
    restore = "import sys; from tunesmith.runners.changes import ChangeLedger; print(ChangeLedger(sys.argv[1]).restore_all())"
    out = subprocess.run([sys.executable, "-c", restore, str(ledger_path)], capture_output=True, text=True, check=True)
    after = _state(tools)
    assert after["gluster"]["vol"]["performance.write-behind"]["set"] is None and after["blockdev"]["/dev/sdz"] == 256
    assert "reset to its default" in out.stdout and not ChangeLedger(ledger_path).pending()


def test_the_workload_reads_its_settings_into_mpi_info_and_h5py(tmp_path: Path) -> None:
    import h5py
    from mpi4py import MPI

    from tunesmith.runners.appliers import client

    settings = {parse_setting("romio:romio_cb_write", where="p"): True,
                parse_setting("romio:cb_nodes", where="p"): 2,
                parse_setting("hdf5:alignment_size", where="p"): 65536,
                parse_setting("hdf5:chunk_cache_mb", where="p"): 4,
                parse_setting("posix:fsync", where="p"): "end"}
    with TrialSettings(settings, None, tmp_path) as ts:
        env = ts.env
    info = client.romio_info(MPI, env)
    assert info.Get("romio_cb_write") == "enable" and info.Get("cb_nodes") == "2"
    info.Free()
    kwargs = client.h5py_file_kwargs(env)
    assert kwargs == {"alignment_interval": 65536, "alignment_threshold": 1, "rdcc_nbytes": 4 << 20}
    with h5py.File(tmp_path / "a.h5", "w", **kwargs) as f:  # h5py takes them as they are
        f.create_dataset("x", shape=(4,), dtype="f4")
        assert f.id.get_access_plist().get_alignment() == (1, 65536)
    assert client.posix_settings(env) == {"fsync": "end"} and client.settings("romio", {}) == {}
