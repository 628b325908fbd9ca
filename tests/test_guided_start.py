"""The guided start: rules as data find knobs by name and help, one config changes every pointed knob, then
coordinate moves from the best so far; the offline planner takes it only on a small budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunesmith.agents.strategies import STRATEGIES
from tunesmith.agents.strategies import guided_start as gs
from tunesmith.runners.iotrace.model import IOCharacterisation, Metadata, ModuleSummary
from tunesmith.runners.iotrace.suggest import suggest
from tunesmith.runners.job import Objective
from tunesmith.runners.space import Param, SearchSpace
from tunesmith.runners.types import Candidate, Measurement, Status, Trial, TrialState


def P(name: str, values: tuple[Any, ...] | None = None, default: Any = None, help: str = "", kind: str = "choice") -> Param:  # noqa: A002
    if kind == "bool":
        return Param(name=name, kind="bool", default=bool(default), help=help)
    return Param(name=name, kind="choice", values=values, default=default if default is not None else values[0], help=help)


# A space no example uses: a log shipper writing segments (names and help only; nothing recorded).
SHIPPER = SearchSpace(params=(
    P("commit_mode", ("every_record", "end_of_segment", "periodic"), help="when the segment is made durable"),
    P("io_size_kib", (4, 32, 256, 2048), help="bytes per write call, in KiB"),
    P("writers", (1, 2, 8), help="writer threads"),
    P("odirect", default=False, kind="bool", help="open the segment with O_DIRECT (page-aligned buffers)"),
    P("codec", ("none", "lz4", "zstd"), help="compression of each segment"),
))


def trial(number: int, config: dict[str, Any], value: float | None, metrics: dict[str, float] | None = None,
          origin: str = "planner") -> Trial:
    m = Measurement(status=Status.OK, samples=[value] * 3, metrics=metrics or {}) if value is not None else None
    return Trial(study="t", number=number, candidate=Candidate(config=config, origin=origin),
                 state=TrialState.DONE if m else TrialState.PENDING, measurement=m)


def run(space: SearchSpace, f: Callable[[dict[str, Any]], float], budget: int | None, trials: int = 5,
        metrics: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The offline planner's configs, one ask per trial, on the objective ``f`` (minimised)."""
    strat = STRATEGIES.create("offline_planner", space, Objective(), seed=0, budget=budget)
    history: list[Trial] = []
    for i in range(trials):
        (c,) = strat.ask(history, 1)
        history.append(trial(i, c.config, f(c.config), metrics if i == 0 else None, c.origin))
    return [t.candidate.config for t in history]


def test_rules_find_parameters_by_name_before_help() -> None:
    batch = P("batch", (1, 16), help="records joined into one write() call (never across an fsync)")
    assert gs.rule_for(batch).key == "larger-transfers"  # the name outvotes an fsync mentioned in passing
    assert gs.rule_for(SHIPPER.get("odirect")).key == "direct-for-large-writes"  # not "aligned" -> alignment
    assert gs.rule_for(P("fanout", (1, 8), help="directory fan-out")).key == "spread-directories"
    assert gs.rule_for(P("directory_listing", default=True, kind="bool", help="list directory entries sorted")) is None
    assert gs.rule_for(SHIPPER.get("codec")) is None


def test_guided_config_changes_every_pointed_knob_each_its_way() -> None:
    base = SHIPPER.defaults()
    guided, knobs = gs.plan(SHIPPER, base, gs.context(SHIPPER, None), SHIPPER.names)
    assert guided == {"commit_mode": "end_of_segment", "io_size_kib": 2048, "writers": 8, "odirect": True,
                      "codec": "none"}
    assert [k.name for k in knobs][:2] == ["commit_mode", "io_size_kib"]  # the surest rules first
    # the trace caps the transfer at what a process writes (1 MiB here), and then O_DIRECT stays off
    per_proc = {"iotrace.bytes_written": 4 * 2**20, "iotrace.nprocs": 4.0}
    capped, _ = gs.plan(SHIPPER, base, gs.context(SHIPPER, per_proc), SHIPPER.names)
    assert capped["io_size_kib"] == 256 and capped["odirect"] is False


def test_chunks_match_the_writes_and_file_per_process_only_off_parallel_fs() -> None:
    space = SearchSpace(params=(
        P("rows_per_write", (8, 64, 512), help="rows per dataset write"),
        P("chunk_rows", (0, 16, 256, 1024), help="HDF5 chunk shape in rows (0: contiguous)"),
        P("layout", ("shared", "fpp"), help="one shared file or a file per process"),
    ))
    guided, _ = gs.plan(space, space.defaults(), gs.context(space, None), space.names)
    assert guided == {"rows_per_write": 512, "chunk_rows": 256, "layout": "fpp"}  # 256 <= 512 rows, not 1024
    lustre = SearchSpace(params=(*space.params, P("stripe_count", (1, 4), help="lfs setstripe -c")))
    guided, _ = gs.plan(lustre, lustre.defaults(), gs.context(lustre, None), lustre.names)
    assert guided["layout"] == "shared" and guided["stripe_count"] == 1  # parallel FS; stripes need a trace


def test_a_flagged_trace_category_raises_its_rules_into_the_guided_config() -> None:
    space = SearchSpace(params=(P("fanout", (1, 16, 128), help="subfolders"), P("fsync", ("each", "end"))))
    plain, _ = gs.plan(space, space.defaults(), gs.context(space, None), space.names)
    flagged, knobs = gs.plan(space, space.defaults(), gs.context(space, {"iotrace.suggest.metadata": 0.6}), space.names)
    assert plain == {"fanout": 1, "fsync": "end"}
    assert flagged == {"fanout": 128, "fsync": "end"}


def test_small_budget() -> None:
    assert gs.small_budget(SHIPPER, 5) and gs.small_budget(SHIPPER, 10)
    assert not gs.small_budget(SHIPPER, 11) and not gs.small_budget(SHIPPER, None)
    tiny = SearchSpace(params=(P("a", (1, 2)), P("b", (1, 2))))
    assert not gs.small_budget(tiny, 4)  # the budget covers the whole space: nothing to guess


def shipper_seconds(c: dict[str, Any]) -> float:
    """An optimum that needs three knobs changed together and the transfer one step below the top."""
    t = {"every_record": 4.0, "end_of_segment": 1.0, "periodic": 1.5}[c["commit_mode"]]
    t *= {4: 3.0, 32: 1.6, 256: 1.0, 2048: 1.3}[c["io_size_kib"]]
    t *= {1: 1.0, 2: 0.8, 8: 0.7}[c["writers"]]
    return t * (0.9 if c["odirect"] else 1.0) * {"none": 1.0, "lz4": 1.1, "zstd": 1.4}[c["codec"]]


def test_planner_reaches_a_multi_knob_optimum_in_five_with_a_small_budget() -> None:
    configs = run(SHIPPER, shipper_seconds, budget=5)
    assert configs[0] == SHIPPER.defaults()
    assert configs[1] == {"commit_mode": "end_of_segment", "io_size_kib": 2048, "writers": 8, "odirect": True,
                          "codec": "none"}
    assert configs[2] == {**configs[1], "io_size_kib": 256}  # back one step from the far end, from the best
    best = min(shipper_seconds(c) for c in configs)
    assert best == min(shipper_seconds(c) for c in SHIPPER.grid())
    # the same planner without a budget screens one knob at a time from the default
    screening = run(SHIPPER, shipper_seconds, budget=None)
    assert sum(a != b for a, b in zip(screening[1].values(), SHIPPER.defaults().values(), strict=True)) == 1
    assert min(shipper_seconds(c) for c in screening) > best * 1.5
    # a large budget keeps the screening too
    assert run(SHIPPER, shipper_seconds, budget=40)[1] == screening[1]


def test_a_guided_config_that_loses_is_undone_one_knob_at_a_time_least_sure_first() -> None:
    def odirect_hurts(c: dict[str, Any]) -> float:
        return shipper_seconds(c) * (20.0 if c["odirect"] else 1.0)

    configs = run(SHIPPER, odirect_hurts, budget=5)
    guided = configs[1]
    changed = [k for k in guided if guided[k] != configs[0][k]]
    undos = [{**guided, k: configs[0][k]} for k in changed]
    assert changed == ["commit_mode", "io_size_kib", "writers", "odirect"]
    assert sorted(map(str, configs[2:4])) == sorted(map(str, undos[2:]))  # least sure first (0.6 each)
    assert {**guided, "odirect": False} in configs[2:]
    assert min(odirect_hurts(c) for c in configs) < odirect_hurts(configs[0])


def test_an_fsync_dominated_trace_ranks_fsync_above_metadata() -> None:
    # the live metadata workload's baseline: 62 % of the I/O time in fsync, 37 % in metadata calls, yet
    # 2.7 metadata calls per access; the count-based score used to put metadata (fan-out) first
    c = IOCharacterisation(
        source="strace",
        modules=[ModuleSummary(module="POSIX", files=511, bytes_written=256_000, bytes_read=256_000, reads=1000,
                               writes=501, write_time_s=2.4, read_time_s=0.0, meta_time_s=1.4)],
        metadata=Metadata(opens=1003, stats=2024, fsyncs=501, creates=502, unlinks=502, meta_time_s=1.4,
                          sync_time_s=2.33, ops_per_access=2.7, fsyncs_per_write=1.0),
    )
    ranked = [s.category for s in suggest(c)]
    assert ranked.index("fsync_policy") < ranked.index("metadata")
