"""The checked-in baseline file of ``tune ci``: tuned configs, their measured performance, their environment.

A TOML or JSON file (by its suffix) holding ``version``, a default ``threshold`` in pytest-benchmark's
syntax and ``entries``. Each entry names its job file (relative to the baseline file), the tuned config,
the default config, the samples both were measured with (with median and IQR) and the environment
fingerprint (``runners/fingerprint.py``). ``kind`` is ``"config"`` today; other kinds (generated kernels)
are new entry models added to ``Entry``'s union. Every mistake in the file is one ``BaselineError`` line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunesmith.knowledge.storage import StudyStorage
from tunesmith.runners import selection
from tunesmith.runners.errors import TunesmithError
from tunesmith.runners.space import Value
from tunesmith.runners.speedup import Rules
from tunesmith.runners.stats import iqr, median
from tunesmith.runners.types import Trial, utcnow

from .threshold import parse_threshold

VERSION = 1


class BaselineError(TunesmithError):
    """The baseline file is missing, unreadable or malformed (exit 2)."""


class Performance(BaseModel):
    """Samples of the objective metric, with the median and IQR computed from them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    samples: list[float] = Field(min_length=1)
    median: float = 0.0
    iqr: float = 0.0
    n: int = 0

    @model_validator(mode="after")
    def _summary(self) -> Performance:
        self.median, self.iqr, self.n = median(self.samples), iqr(self.samples), len(self.samples)
        return self

    @classmethod
    def of(cls, samples: list[float]) -> Performance:
        return cls(samples=[float(x) for x in samples])


class ConfigEntry(BaseModel):
    """A tuned configuration of one job, as measured when the baseline was written."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["config"] = "config"
    name: str = Field(min_length=1)
    job: str = Field(min_length=1)  # the job file, relative to the baseline file
    study: str = ""
    metric: str = "seconds"
    direction: Literal["minimize", "maximize"] = "minimize"
    config: dict[str, Value]
    performance: Performance
    default_config: dict[str, Value] | None = None
    default_performance: Performance | None = None
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    basis: str = ""  # which runs the samples come from
    measured_at: str = ""

    @model_validator(mode="after")
    def _no_nulls(self) -> ConfigEntry:
        self.fingerprint = without_nulls(self.fingerprint)  # TOML has no null: an absent key reads as None
        return self

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"


def without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without None values, nested dicts included."""
    return {k: without_nulls(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


Entry = ConfigEntry  # a union of entry kinds once there are several (discriminated by ``kind``)


class BaselineFile(BaseModel):
    """The whole baseline file."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = VERSION
    threshold: str = "median:5%"
    entries: list[Entry] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> BaselineFile:
        parse_threshold(self.threshold)
        names = [e.name for e in self.entries]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"two entries are named {dup!r}")
        return self


def load_baseline(path: Path) -> BaselineFile:
    """Read and validate a baseline file; any problem is one ``BaselineError`` line."""
    if not path.is_file():
        raise BaselineError(f"baseline file {path} does not exist",
                            "pass the checked-in file, or create it with `tune ci FILE --write-baseline --study NAME`")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        what = "JSON" if path.suffix == ".json" else "TOML"
        raise BaselineError(f"{path}: not valid {what} ({' '.join(str(exc).split())})",
                            f"fix the {what} syntax (or regenerate the file with --write-baseline)") from None
    try:
        return BaselineFile.model_validate(data)
    except TunesmithError as exc:
        raise BaselineError(f"{path}: threshold: {exc.problem}", exc.fix) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "file"
        raise BaselineError(f"{path}: {where}: {first['msg']}",
                            "fix that field (see examples/ci/baseline.toml), or regenerate the file with "
                            "--write-baseline") from None


def write_baseline(path: Path, baseline: BaselineFile) -> None:
    """Write the file as JSON (``.json``) or TOML (any other suffix); read back and checked before it lands."""
    data = baseline.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, indent=2) + "\n" if path.suffix == ".json" else to_toml(data)
    parsed = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    if BaselineFile.model_validate(parsed) != baseline:
        raise BaselineError(f"{path}: the written baseline does not read back the same", "report this as a bug")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def job_path(entry: Entry, baseline_path: Path) -> Path:
    """The entry's job file, resolved against the baseline file's folder."""
    p = Path(entry.job).expanduser()
    return p if p.is_absolute() else (baseline_path.parent / p).resolve()


# -- from a finished study -----------------------------------------------------------------------------------
def entry_from_study(store: StudyStorage, study: str, *, job_file: Path, baseline_path: Path,
                     name: str | None = None) -> Entry:
    """The baseline entry of a finished study: its best confirmed config and the default, with the samples
    of the final interleaved re-measure when there is one (else their own runs)."""
    info = store.study(study)
    trials = store.trials(study)
    rules = Rules.from_definition(info.job)
    result = selection.study_result(trials, rules, selection.verdict_records(store.events(study)))
    best, default = result.best, result.baseline
    if best is None or not selection.is_timed(best):
        raise BaselineError(f"study {study!r} has no measured best configuration",
                            "let the study finish (`tune run JOB`) and check `tune status` before writing a baseline")
    final = selection.final_runs(trials, best, default) if default is not None and result.final else []
    ours, theirs, basis = _samples_of(trials, best, default, final)
    obj = info.job.get("objective", {})
    return Entry(name=name or study, job=os.path.relpath(job_file.resolve(), baseline_path.resolve().parent),
                 study=study, metric=str(obj.get("metric", "seconds")), direction=obj.get("direction", "minimize"),
                 config=best.candidate.config, performance=Performance.of(ours),
                 default_config=default.candidate.config if default is not None else None,
                 default_performance=Performance.of(theirs) if theirs else None,
                 fingerprint=best.measurement.fingerprint if best.measurement else {}, basis=basis,
                 measured_at=(final[-1].finished_at if final else best.finished_at) or utcnow())


def _samples_of(trials: list[Trial], best: Trial, default: Trial | None,
                final: list[Trial]) -> tuple[list[float], list[float], str]:
    def of(runs: list[Trial], key: str) -> list[float]:
        return [x for t in runs if t.candidate.key == key and t.measurement for x in t.measurement.samples]

    if final:
        first, last = final[0].number, final[-1].number
        return (of(final, best.candidate.key), of(final, default.candidate.key),  # type: ignore[union-attr]
                f"final re-measure of trial #{best.number} against the default, interleaved (trials #{first}-#{last})")
    theirs = list(default.measurement.samples) if default is not None and selection.is_timed(default) else []
    if default is not None and default.id == best.id:
        return list(best.measurement.samples), theirs, f"the default's run (trial #{best.number}); nothing beat it"  # type: ignore[union-attr]
    return list(best.measurement.samples), theirs, f"first runs of trial #{best.number} and the default"  # type: ignore[union-attr]


def merge(old: BaselineFile | None, entries: list[Entry], threshold: str | None) -> BaselineFile:
    """``old`` with ``entries`` replacing those of the same name (others kept, order kept, new ones last)."""
    kept = {e.name: e for e in (old.entries if old else [])}
    for e in entries:
        kept[e.name] = e
    return BaselineFile(threshold=threshold or (old.threshold if old else "median:5%"), entries=list(kept.values()))


# -- a TOML writer for this file's shapes (tables, arrays, scalars); write_baseline checks the round trip -------
def to_toml(data: dict[str, Any]) -> str:
    """TOML text for the baseline's data: top-level scalars, then ``[[entries]]`` with inline tables."""
    lines = ["# tunesmith CI baseline: tuned configs, their measured performance and environment.",
             "# Written by `tune ci --write-baseline`; `tune ci` re-measures each entry and compares.", ""]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in data.items() if k != "entries"]
    for entry in data.get("entries", []):
        lines += ["", "[[entries]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise BaselineError("a baseline value is not a finite number", "re-measure; TOML has no place for it")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON's escapes (\" \\ \n \uXXXX) are TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if v is None:
        raise BaselineError("a baseline value is empty", "report this as a bug")
    return json.dumps(str(v))
