"""The I/O domain: the bundled checkpoint writer, the generic command target and the checkpoint preset.

The writer is exercised in-process (torch is imported once) for every fsync policy and layout, and read
back here with an independent safetensors parser. The target's status mapping runs tiny fake workloads
through the real LocalRunner; one test runs the real writer through the target end to end.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.fingerprint import filesystem_of
from tunesmith.runners.io import command as command_module
from tunesmith.runners.io.checkpoint_io import CheckpointIOTarget
from tunesmith.runners.io.command import CommandTarget
from tunesmith.runners.job import load_job, parse_job
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.types import Candidate, Status

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkpoint_io"
SCRIPT = EXAMPLE / "write_checkpoint.py"


@pytest.fixture(scope="module")
def writer():
    spec = importlib.util.spec_from_file_location("write_checkpoint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_safetensors(path: Path) -> dict[str, tuple[list[int], int]]:
    """An independent reader: tensor name -> (shape, CRC-32 of its bytes); checks offsets are contiguous."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__")
    out, pos = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        lo, hi = info["data_offsets"]
        assert lo == pos and info["dtype"] == "F32"
        out[name] = (info["shape"], zlib.crc32(data[8 + n + lo : 8 + n + hi]))
        pos = hi
    assert 8 + n + pos == len(data), "trailing or missing bytes"
    return out


@pytest.mark.parametrize("fsync", ["per_chunk", "per_file", "end_syncfs"])
@pytest.mark.parametrize("layout", ["single", "shards"])
def test_writer_round_trips(writer, tmp_path, monkeypatch, fsync, layout):
    result_path = tmp_path / "result.json"
    monkeypatch.setenv("TUNESMITH_RESULT", str(result_path))
    out = tmp_path / "ckpt"
    direct = fsync == "per_file"  # cover O_DIRECT on one policy per layout (ext4 and xfs accept it)
    argv = ["--out", str(out), "--size-mb", "8", "--threads", "3", "--chunk-kib", "256", "--fsync", fsync]
    argv += ["--layout", layout, "--seed", "5"] + (["--direct"] if direct else [])
    assert writer.main(argv) == 0
    result = json.loads(result_path.read_text())
    assert result["correct"] is True and result["verify_error"] == ""
    assert result["bytes"] == 8 << 20 and result["seconds"] > 0
    assert result["mb_per_s"] == pytest.approx(8 / result["seconds"])
    expected = {
        k: (list(t.shape), zlib.crc32(t.numpy().tobytes())) for k, t in writer.build_state_dict(8, 5).items()
    }
    found: dict = {}
    files = sorted(out.glob("*.safetensors"))
    for f in files:
        found.update(read_safetensors(f))
    assert found == expected
    assert result["files"] == len(files) == (1 if layout == "single" else 3)
    assert sum(f.stat().st_size for f in files) == result["file_bytes"]
    if layout == "shards":
        index = json.loads((out / "model.safetensors.index.json").read_text())
        assert set(index["weight_map"]) == set(expected)
    if fsync == "per_chunk":
        assert result["fsyncs"] >= result["writes"]
    assert result["sync_method"] in (("syncfs", "sync") if fsync == "end_syncfs" else ("fsync",))


def test_writer_state_dict_is_exact_and_mixed(writer):
    sd = writer.build_state_dict(256, 0)
    sizes = sorted(t.numel() * 4 for t in sd.values())
    assert sum(sizes) == 256 << 20
    assert sizes[0] <= 4096 and sizes[-1] >= 16 << 20  # small norm/bias vectors and large matrices
    assert all(t.dtype.is_floating_point and t.element_size() == 4 for t in sd.values())


def test_writer_reports_refused_o_direct(writer, tmp_path, monkeypatch, capsys):
    real_open = os.open

    def refuse_direct(path, flags, *a):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(writer.os, "open", refuse_direct)
    code = writer.main(["--out", str(tmp_path / "o"), "--size-mb", "1", "--direct"])
    err = capsys.readouterr().err.strip()
    assert code == writer.EXIT_NO_DIRECT == 78
    assert len(err.splitlines()) == 1 and "refused O_DIRECT" in err and "without --direct" in err


def test_writer_records_a_failed_cache_drop(writer, tmp_path, monkeypatch):
    real_open = open

    def no_proc(path, *a, **k):
        if str(path) == "/proc/sys/vm/drop_caches":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(writer, "open", no_proc, raising=False)
    monkeypatch.setenv("TUNESMITH_RESULT", str(tmp_path / "r.json"))
    assert writer.main(["--out", str(tmp_path / "o"), "--size-mb", "1", "--drop-caches"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["page_cache_dropped"] is False and result["drop_caches_error"].startswith("PermissionError")
    assert result["correct"] is True


# -- the generic command target -----------------------------------------------------------------------


def make_job(tmp_path: Path, workload: dict, **extra) -> dict:
    runner = {"kind": "local", "timeout_s": 20, "memory_mb": 1024, **extra.pop("runner", {})}
    return parse_job({"name": "t", "target": "command", "workload": workload, "runner": runner, **extra},
                     base_dir=tmp_path)  # fmt: skip


def fake(tmp_path: Path, body: str) -> dict:
    (tmp_path / "w.py").write_text("import json, os, sys, time\n" + textwrap.dedent(body))
    return {
        "command": ["{python}", "w.py", "--n", "{n}", "{fast}", "--out", "{out}"],
        "drop_caches": False,  # a real drop would evict every process's pages on a shared test machine
        "params": {
            "n": {"kind": "int", "low": 1, "high": 4, "default": 2, "help": "a number"},
            "fast": {"kind": "bool", "default": False},
            "mode": {"kind": "choice", "values": ["a", "b"], "default": "a", "apply": "env"},
        },
    }


def evaluate(target, tmp_path: Path, config: dict | None = None, repeats: int = 1):
    cand = Candidate(config=target.space().validate_config(config or {}))
    ctx = TrialContext.for_job(target.job, LocalRunner(poll_s=0.05), tmp_path / "work", repeats=repeats)
    return ctx.finish(target.evaluate(cand, ctx))


OK_BODY = """
    out = sys.argv[sys.argv.index("--out") + 1]
    assert os.listdir(out) == [], "output dir not emptied"
    open(os.path.join(out, "data"), "w").write("x")
    n = int(sys.argv[sys.argv.index("--n") + 1])
    result = {"seconds": 0.5 * n, "mb_per_s": 10.0 * n, "fast": "--fast" in sys.argv, "tag": "text"}
    if os.environ["MODE"] == "b":  # the workload tried to drop the cache itself and says how it went
        result.update(page_cache_dropped=False, drop_caches_error="PermissionError: not root")
    json.dump(result, open(os.environ["TUNESMITH_RESULT"], "w"))
"""


def test_command_ok_renders_params_and_averages_metrics(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        command_module, "drop_page_cache", lambda: calls.append(1) or (False, "EACCES: no root")
    )
    target = CommandTarget(make_job(tmp_path, {**fake(tmp_path, OK_BODY), "drop_caches": True}))
    target.preflight()
    m = evaluate(target, tmp_path, {"n": 3, "fast": True}, repeats=2)
    assert m.status == Status.OK, m.detail
    assert m.samples == [1.5, 1.5] and m.metrics["mb_per_s"] == 30.0 and "tag" not in m.metrics
    assert (
        len(calls) == 2
        and m.metrics["page_cache_dropped"] == 0.0
        and "NOT dropped (EACCES: no root)" in m.detail
    )
    assert m.fingerprint["filesystem"]["fstype"] == filesystem_of(tmp_path)["fstype"]
    assert not (tmp_path / "work" / "out").exists(), "scratch output left behind"
    argv, env = target.render({"n": 3, "fast": False, "mode": "b"}, tmp_path)
    assert argv[1] == str(tmp_path / "w.py") and "--fast" not in argv and argv[3] == "3"
    assert env == {"MODE": "b"}

    class SelfDropping(CommandTarget):
        workload_drops_caches = True

    m = evaluate(SelfDropping(target.job), tmp_path, {"n": 1, "mode": "b"})
    assert len(calls) == 2, "the parent dropped although the workload does it"
    assert (
        m.samples == [0.5]
        and m.metrics["page_cache_dropped"] == 0.0
        and "PermissionError: not root" in m.detail
    )


WARMUP_BODY = """
    counter = os.path.join(os.environ["COUNT_DIR"], "runs")
    with open(counter, "a") as f:
        f.write("x")
    n = len(open(counter).read())
    json.dump({"seconds": 100.0 if n == 1 else float(n)}, open(os.environ["TUNESMITH_RESULT"], "w"))
"""


def test_warmup_runs_are_untimed(tmp_path):
    job = make_job(tmp_path, fake(tmp_path, WARMUP_BODY), measure={"repeats": 2, "warmup": 1},
                   runner={"env": {"COUNT_DIR": str(tmp_path)}})  # fmt: skip
    m = evaluate(CommandTarget(job), tmp_path, repeats=2)
    assert m.status == Status.OK and m.samples == [2.0, 3.0], m.detail  # the slow first run is discarded
    failing = make_job(tmp_path, fake(tmp_path, "sys.exit(5)"), measure={"warmup": 2})
    m = evaluate(CommandTarget(failing), tmp_path, repeats=2)
    assert m.status == Status.RUNTIME and m.detail.startswith("warm-up run 1/2: ")


FAILURES = {
    "runtime": ("sys.stderr.write('first\\nboom: disk on fire\\n'); sys.exit(3)", "boom: disk on fire", {}),
    "timeout": ("time.sleep(30)", "exceeded the 1 s wall-time limit", {"runner": {"timeout_s": 1}}),
    "correctness": (
        "json.dump({'seconds': 1.0, 'correct': False, 'verify_error': 'crc mismatch'}, "
        "open(os.environ['TUNESMITH_RESULT'], 'w'))",
        "correct=false: crc mismatch",
        {},
    ),
    "constraints": ("sys.stderr.write('O_DIRECT refused\\n'); sys.exit(78)", "O_DIRECT refused", {}),
    "memory": (
        'x = b"x" * (400 << 20); time.sleep(20)',
        "exceeded the runner's 100 MB limit",
        {"runner": {"memory_mb": 100}},
    ),
    "no_result": ("pass", "no result JSON", {}),
    "no_metric": (
        "json.dump({'mb_per_s': 3}, open(os.environ['TUNESMITH_RESULT'], 'w'))",
        "no finite number",
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_command_failure_mapping(tmp_path, case):
    body, detail, extra = FAILURES[case]
    target = CommandTarget(make_job(tmp_path, fake(tmp_path, body), **extra))
    m = evaluate(target, tmp_path, repeats=3)
    want = {"memory": "runtime", "no_result": "runtime", "no_metric": "runtime"}.get(case, case)
    assert m.status.value == want and detail in m.detail and m.detail.startswith("run 1/3: ")
    assert m.samples == [] and "\n" not in m.detail


def test_command_launch_error_is_infrastructure(tmp_path):
    target = CommandTarget(
        make_job(tmp_path, {"command": ["/nonexistent/tool", "{out}"], "drop_caches": False})
    )
    assert evaluate(target, tmp_path).status == Status.INFRASTRUCTURE
    with pytest.raises(JobError, match="does not exist"):
        target.preflight()


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"command": ["x"], "colour": 1}, "workload.colour: unknown field"),
        ({"command": ["x", "{nope}"]}, "unknown placeholder {nope}"),
        ({"command": ["x"], "params": {"n": {"kind": "int", "low": 1, "high": 2, "default": 1}}}, "not used"),
        ({"command": ["x", "{n}"], "params": {"n": {"kind": "int", "default": 1}}}, "workload.params.n"),
    ],
)
def test_command_workload_errors_are_one_line(tmp_path, workload, message):
    with pytest.raises(JobError, match=message) as info:
        CommandTarget(make_job(tmp_path, workload))
    assert "\n" not in str(info.value) and "fix:" in str(info.value)


def test_missing_script_fails_preflight_in_one_line(tmp_path):
    target = CommandTarget(make_job(tmp_path, {"command": ["{python}", "missing.py", "{out}"]}))
    with pytest.raises(JobError, match="missing.py does not exist") as info:
        target.preflight()
    assert "\n" not in str(info.value)
    job = parse_job(
        {"name": "c", "target": "checkpoint_io", "workload": {"script": "nope.py"}}, base_dir=tmp_path
    )
    with pytest.raises(JobError, match="nope.py does not exist"):
        CheckpointIOTarget(job).preflight()


def test_tmpfs_output_dir_is_refused(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or filesystem_of(shm)["fstype"] != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    target = CommandTarget(make_job(tmp_path, {**fake(tmp_path, OK_BODY), "output_dir": "/dev/shm"}))
    with pytest.raises(JobError, match="on tmpfs, which measures memory") as info:
        target.preflight()
    assert "\n" not in str(info.value)
    assert evaluate(target, tmp_path).status == Status.INFRASTRUCTURE
    allowed = CommandTarget(
        make_job(tmp_path, {**fake(tmp_path, OK_BODY), "output_dir": "/dev/shm", "allow_tmpfs": True})
    )
    allowed.preflight()


def test_user_output_dir_keeps_other_files(tmp_path):
    mine = tmp_path / "storage"
    mine.mkdir()
    (mine / "keep.txt").write_text("user data")
    target = CommandTarget(make_job(tmp_path, {**fake(tmp_path, OK_BODY), "output_dir": str(mine)}))
    target.preflight()
    assert evaluate(target, tmp_path).status == Status.OK
    target.close()
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


# -- the checkpoint preset ----------------------------------------------------------------------------


def test_checkpoint_target_space_rules_and_signature(tmp_path):
    job = load_job(EXAMPLE / "job.toml")
    target = CheckpointIOTarget(job)
    target.preflight()
    base = target.baseline().config
    assert base == {"direct": False, "fsync": "per_file", "chunk_kib": 1024, "threads": 1, "layout": "single"}
    assert target.rules() == ["direct", "fsync", "chunk_kib", "threads", "layout"]
    assert (
        target.signature()
        == f"io/checkpoint size={job.workload['size_mb']}MB fs={filesystem_of(EXAMPLE)['fstype']}"
    )
    text = target.describe()
    assert all(f". {n}: " in text for n in target.rules())
    argv, _ = target.render({**base, "direct": True, "threads": 4}, tmp_path)
    assert (
        argv[:2] == [sys.executable, str(SCRIPT)]
        and "--direct" in argv
        and argv[argv.index("--threads") + 1] == "4"
    )
    narrowed = target.space().restrict({"chunk_kib": {"values": [6, 64], "default": 64}})
    assert narrowed.violations({**base, "direct": True, "chunk_kib": 6})
    assert not narrowed.violations({**base, "direct": True, "chunk_kib": 64})
    default = CheckpointIOTarget(parse_job({"name": "c", "target": "checkpoint_io"}))
    assert "--drop-caches" in default.render({}, tmp_path)[0] and default.workload.size_mb == 256
    with pytest.raises(JobError, match="workload.size: unknown field"):
        CheckpointIOTarget(parse_job({"name": "c", "target": "checkpoint_io", "workload": {"size": 1}}))


def test_checkpoint_target_runs_the_real_writer(tmp_path):
    job = parse_job(
        {"name": "ck", "target": "checkpoint_io",
         # no global cache drop here: it would evict every process's pages on a shared test machine
         "workload": {"script": str(SCRIPT), "size_mb": 8, "drop_caches": False},
         "runner": {"timeout_s": 120, "memory_mb": 2048}},
        base_dir=tmp_path,
    )  # fmt: skip
    target = CheckpointIOTarget(job)
    target.preflight()
    m = evaluate(target, tmp_path, {"threads": 2, "layout": "shards", "chunk_kib": 256}, repeats=2)
    assert m.status == Status.OK, (m.detail, m.stderr_tail)
    assert len(m.samples) == 2 and all(s > 0 for s in m.samples)
    assert m.metrics["bytes"] == 8 << 20 and m.metrics["files"] == 2 and m.metrics["mb_per_s"] > 0
    assert (
        "page_cache_dropped" not in m.metrics and "page cache not dropped (drop_caches = false)" in m.detail
    )
    assert "--drop-caches" not in target.render({}, tmp_path)[0]
    assert m.fingerprint["filesystem"]["fstype"] == filesystem_of(tmp_path)["fstype"]


def test_command_reads_the_mount_table_once_per_study(tmp_path, monkeypatch):
    reads = []
    real = command_module.read_mounts
    monkeypatch.setattr(command_module, "read_mounts", lambda: reads.append(1) or real())
    target = CommandTarget(make_job(tmp_path, fake(tmp_path, OK_BODY)))
    for _ in range(2):
        assert evaluate(target, tmp_path, repeats=2).status == Status.OK
    assert target.fingerprint()["filesystem"] == filesystem_of(tmp_path / "work" / "out")
    assert len(reads) == 1, "the mount table was read again for every run"
    target.close()  # the end of a study: the next one reads the mounts afresh
    assert evaluate(target, tmp_path).status == Status.OK and len(reads) == 2


def test_scratch_folder_is_emptied_and_removed(tmp_path):
    from tunesmith.runners.io.scratch import clear_folder, remove_folder

    folder = tmp_path / "a" / "out"
    clear_folder(folder)  # missing: created, empty
    assert folder.is_dir() and not any(folder.iterdir())
    (folder / "sub").mkdir()
    (folder / "sub" / "f").write_text("x")
    (folder / "g").write_text("y")
    clear_folder(folder)
    assert folder.is_dir() and not any(folder.iterdir())
    folder.rmdir()
    folder.write_text("a file where the folder goes")
    clear_folder(folder)
    assert folder.is_dir() and not any(folder.iterdir())
    (folder / "f").write_text("x")
    remove_folder(folder)
    assert not folder.exists()
    remove_folder(folder)  # already gone: nothing to do, no error
    assert (tmp_path / "a").is_dir()
