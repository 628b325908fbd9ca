"""I/O characterisation: every PyDarshan example log, the strace parser, suggestions and first-attempt priorities."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tunesmith.agents.strategies import STRATEGIES
from tunesmith.runners.iotrace import (
    IOCharacterisation,
    TraceError,
    first_attempt,
    load_trace,
    priorities_from_history,
)
from tunesmith.runners.iotrace.darshan_log import example_logs, from_darshan
from tunesmith.runners.iotrace.model import Suggestion
from tunesmith.runners.iotrace.strace_log import from_strace
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState

LOGS = example_logs()


def test_pydarshan_ships_example_logs() -> None:
    assert len(LOGS) >= 10  # the loop below must really cover something


@pytest.mark.slow
def test_every_pydarshan_example_log_is_characterised() -> None:
    for name, path in LOGS.items():
        c = from_darshan(path)
        assert c.source == "darshan", name
        assert c.nprocs >= 1 and c.run_time_s >= 0, name
        assert IOCharacterisation.model_validate_json(c.model_dump_json()) == c, name
        assert all(math.isfinite(v) for v in c.to_metrics().values()), name
        assert [s.rank for s in c.suggestions] == list(range(1, len(c.suggestions) + 1)), name
        assert all(a.score >= b.score for a, b in zip(c.suggestions, c.suggestions[1:], strict=False)), name
        if c.module("POSIX") is None:
            assert any("no POSIX module" in n for n in c.notes), name


def test_ior_hdf5_log_numbers() -> None:
    c = from_darshan(LOGS["ior_hdf5_example.darshan"])
    assert c.nprocs == 4
    assert c.mpiio is not None and c.mpiio.collective_share == 0 and c.mpiio.independent_writes > 0
    assert c.lustre is not None and c.lustre.stripe_counts == [1] and c.lustre.stripe_sizes == [1048576]
    assert c.hdf5 is not None and c.hdf5.datasets >= 1 and c.hdf5.dataset_writes > 0
    assert c.layout.kind == "shared"
    cats = [s.category for s in c.suggestions]
    assert "collective_buffering" in cats and "striping" in cats and "hdf5_layout" in cats


def test_log_without_posix_and_one_with_many_files() -> None:
    noposix = from_darshan(LOGS["noposix.darshan"])
    assert noposix.module("POSIX") is None and noposix.lustre is not None and noposix.lustre.files > 100
    dxt = from_darshan(LOGS["dxt.darshan"])
    assert dxt.nprocs == 1 and dxt.layout.shared_files == 0 and dxt.layout.files > 100
    assert dxt.suggestions[0].category == "metadata"


STRACE = """\
10:00:00.000100 openat(AT_FDCWD</work>, "data/j.log", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</work/data/j.log> <0.000050>
10:00:00.000200 write(3</work/data/j.log>, ""..., 100) = 100 <0.000010>
10:00:00.000300 fsync(3</work/data/j.log>) = 0 <0.004000>
10:00:00.000400 write(3</work/data/j.log>, ""..., 100) = 100 <0.000010>
10:00:00.000500 fsync(3</work/data/j.log>) = 0 <0.004000>
10:00:00.000600 pwrite64(3</work/data/j.log>, ""..., 50, 1000) = 50 <0.000010>
10:00:00.000700 lseek(3</work/data/j.log>, 0, SEEK_SET) = 0 <0.000001>
10:00:00.000800 read(3</work/data/j.log>, ""..., 4096) = 1050 <0.000020>
10:00:00.000900 close(3</work/data/j.log>) = 0 <0.000005>
10:00:00.001000 newfstatat(AT_FDCWD</work>, "data/j.log", {st_mode=S_IFREG|0644, st_size=1050, ...}, 0) = 0 <0.000003>
10:00:00.001100 openat(AT_FDCWD</work>, "/usr/lib/python3.11/os.py", O_RDONLY|O_CLOEXEC) = 4</usr/lib/python3.11/os.py> <0.000050>
10:00:00.001200 read(4</usr/lib/python3.11/os.py>, ""..., 4096) = 4096 <0.000010>
10:00:00.001300 write(1<pipe:[1234]>, ""..., 10) = 10 <0.000010>
10:00:00.001400 unlink("/work/data/j.log") = 0 <0.000030>
10:00:00.001500 +++ exited with 0 +++
"""


def test_strace_capture_counts_exactly(tmp_path: Path) -> None:
    (tmp_path / "strace.100").write_text(STRACE)
    (tmp_path / "strace.101").write_text(
        '10:00:00.002000 openat(AT_FDCWD</work>, "data/j.log", O_RDONLY) = 3</work/data/j.log> <0.000040>\n'
        '10:00:00.002100 read(3</work/data/j.log>, ""..., 65536) = 1050 <0.000010>\n'
    )
    c = load_trace(tmp_path)
    assert c.source == "strace" and c.nprocs == 2
    posix = c.module("POSIX")
    assert posix is not None
    assert (posix.writes, posix.bytes_written, posix.reads, posix.bytes_read) == (3, 250, 2, 2100)
    assert c.metadata.fsyncs == 2 and c.metadata.sync_time_s == pytest.approx(0.008)
    assert c.metadata.opens == 2 and c.metadata.stats == 1 and c.metadata.unlinks == 1 and c.metadata.creates == 1
    assert c.metadata.seeks == 1
    # write 2 follows write 1 (consecutive); pwrite at 1000 jumps ahead (sequential, not consecutive)
    assert c.access.consecutive_writes == 1 and c.access.sequential_writes == 2
    assert c.layout.shared_files == 1  # two processes opened the same file; os.py and the pipe are left out
    assert c.histogram("POSIX", "write").bins["100_1K"] == 2 and c.histogram("POSIX", "write").bins["0_100"] == 1
    assert c.suggestions[0].category == "fsync_policy"


def test_strace_single_file_with_pids_and_resumed_calls(tmp_path: Path) -> None:
    trace = tmp_path / "one.txt"
    trace.write_text(
        '7 10:00:00.000100 openat(AT_FDCWD</w>, "a", O_WRONLY|O_CREAT, 0644) = 3</w/a> <0.000010>\n'
        '7 10:00:00.000200 write(3</w/a>, ""..., 4096 <unfinished ...>\n'
        '8 10:00:00.000250 openat(AT_FDCWD</w>, "b", O_WRONLY|O_CREAT, 0644) = 3</w/b> <0.000010>\n'
        '7 10:00:00.000300 <... write resumed>) = 4096 <0.000090>\n'
    )
    c = from_strace(trace)
    assert c.nprocs == 2 and c.module("POSIX").bytes_written == 4096 and c.layout.files == 2


def test_load_trace_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(TraceError, match="neither a Darshan log nor strace output"):
        load_trace(other)
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "missing.darshan")
    empty = tmp_path / "e.darshan"
    empty.write_bytes(b"3.21\x00\x00\x00\x0075d\x00garbage")
    with pytest.raises(TraceError, match="not a readable Darshan log"):
        load_trace(empty)


SPACE = SearchSpace(params=(
    Param(name="buffer_kib", kind="choice", values=(8, 1024), default=8, help="the file object's write buffer in KiB"),
    Param(name="encode", kind="choice", values=("json", "csv"), default="json", help="record encoding"),
    Param(name="transfer_kib", kind="choice", values=(4, 64, 1024), default=4, help="bytes per write call"),
    Param(name="sync_every", kind="choice", values=(1, 4, 64), default=1, help="group commit: fsync after every N records"),
))


def _char(*cats: str) -> IOCharacterisation:
    sug = [Suggestion(rank=i, category=c, title=c, reason="test", score=1 - i / 10) for i, c in enumerate(cats, 1)]
    return IOCharacterisation(source="strace", suggestions=sug)


def test_first_attempt_follows_the_trace_not_the_declared_order() -> None:
    fsync = first_attempt(_char("fsync_policy", "transfer_size"), SPACE)
    assert fsync.priorities[0] == "sync_every" and fsync.config["sync_every"] == 64
    assert fsync.priorities[1:3] == ["transfer_kib", "buffer_kib"]
    small = first_attempt(_char("transfer_size"), SPACE)
    assert small.priorities[0] == "transfer_kib" and small.config["transfer_kib"] == 1024
    assert first_attempt(_char(), SPACE).priorities == SPACE.names


def _trial(number: int, config: dict, metrics: dict | None = None, value: float = 1.0) -> Trial:
    m = Measurement(status=Status.OK, samples=[value], metrics=metrics or {})
    return Trial(study="s", number=number, candidate=Candidate(config=config, origin="planner"), measurement=m,
                 state=TrialState.DONE)


def test_offline_planner_screens_the_traced_fsync_param_first() -> None:
    base = SPACE.defaults()
    traced = {"iotrace.suggest.fsync_policy": 0.9, "iotrace.suggest.transfer_size": 0.3}

    def hook(history):  # noqa: ANN001, ANN202
        return priorities_from_history(history, SPACE, base)

    with_hook = STRATEGIES.create("offline_planner", SPACE, Objective(), priorities=hook)
    without = STRATEGIES.create("offline_planner", SPACE, Objective())
    history = [_trial(1, base, traced)]
    first = with_hook.ask(history, 1)[0]
    assert {k for k in base if first.config[k] != base[k]} == {"sync_every"}
    plain = without.ask(history, 1)[0]
    assert {k for k in base if plain.config[k] != base[k]} == {"buffer_kib"}  # declared first
    assert priorities_from_history([_trial(1, base)], SPACE, base) is None  # untraced baseline: no opinion


def test_metrics_carry_the_suggestion_scores() -> None:
    c = from_darshan(LOGS["ior_hdf5_example.darshan"])
    metrics = c.to_metrics()
    assert metrics["iotrace.nprocs"] == 4 and metrics["iotrace.source_darshan"] == 1.0
    assert {k.split(".")[-1] for k in metrics if k.startswith("iotrace.suggest.")} == {s.category for s in c.suggestions}
    json.dumps(metrics)
