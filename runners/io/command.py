"""A generic target for any workload command with knobs: argv placeholders in, a result JSON out.

The job names a command such as ``["{python}", "bench.py", "--threads", "{threads}", "{direct}", "--out",
"{out}"]`` and the parameters that fill it. Each repeat is a fresh process whose scratch output folder is
emptied first; the workload writes a JSON object to the path in ``$TUNESMITH_RESULT`` and the objective
metric is read from it. Storage rules from docs/measuring.md apply: the output must not sit on tmpfs (that
measures memory, not storage), the page cache is dropped before each run where allowed, and the file
system with its mount options is part of the measurement's fingerprint.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..appliers import TrialSettings, settings_of
from ..base import RESULT_ENV, RunResult, Target
from ..context import TrialContext
from ..errors import JobError
from ..fingerprint import environment_fingerprint, filesystem_of, read_mounts
from ..job import Job
from ..outcome import classify_run
from ..param_fields import build_param
from ..space import SearchSpace, Value
from ..stats import median
from ..types import Candidate, Measurement, Status
from .scratch import clear_folder, remove_folder

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RESERVED = ("out", "python")
MEMORY_FS = ("tmpfs", "ramfs")
EXIT_CONSTRAINT = 78  # EX_CONFIG (sysexits.h): "this configuration cannot run here", e.g. no O_DIRECT


class StorageWorkload(BaseModel):
    """Where a storage workload writes and how honestly it is measured (shared by the I/O targets)."""

    model_config = ConfigDict(extra="forbid")
    output_dir: str | None = None  # default: a scratch folder inside each trial's workdir
    allow_tmpfs: bool = False
    drop_caches: bool = True


class CommandWorkload(StorageWorkload):
    """The ``[workload]`` table of the ``command`` target."""

    command: list[str] = Field(min_length=1)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> Param fields
    constraints: list[str] = Field(default_factory=list)
    metric_key: str | None = None  # key in the result JSON; default: the objective's metric
    flags: Literal["presence", "true_false", "one_zero"] = "presence"  # how a bool param is written
    constraint_exit_codes: list[int] = Field(default_factory=lambda: [EXIT_CONSTRAINT])


def drop_page_cache() -> tuple[bool, str]:
    """Flush dirty pages, then drop the page cache (root only); returns (dropped, reason if not)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True, ""
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc.strerror or exc}"


class CommandTarget(Target):
    """Tunes the knobs of any command that writes a result JSON; one fresh process per repeat.

    Subclasses (presets such as ``checkpoint_io``) override ``command_template`` and ``base_space``.
    Bool parameters in ``presence`` style turn a lone ``{name}`` argument into ``--name`` or nothing.
    """

    name: ClassVar[str] = "command"
    domain: ClassVar[str] = "io"
    workload_model: ClassVar[type[BaseModel]] = CommandWorkload
    workload_drops_caches: ClassVar[bool] = False  # True when the workload drops the cache itself
    # command-line placeholders, environment variables, outside settings (runners/appliers, restored after each trial)
    applies: ClassVar[tuple[str, ...]] = ("arg", "env", "setting")

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self._template = self.command_template()
        self._program = self._program_index(self._template)
        if self._program is not None and not PLACEHOLDER.search(self._template[self._program]):
            prog = self._template[self._program]
            if "/" in prog or self._program > 0:  # a script path, not a program found on PATH
                self._template[self._program] = str(self.job.resolve(prog))
        self._scratch: set[Path] = set()
        self._last_out: Path | None = None
        self._mounts: list[tuple[str, str, str]] | None = None  # the mount table, read once per target (study)
        if self.workload.output_dir:  # one output folder for every candidate: they must not run at once
            self.shared_resource = "disk"  # type: ignore[misc]
        space = self.base_space()
        self._settings = settings_of(space.params)  # apply = "setting": parsed now, one line if wrong
        used = {ph for elem in self._template for ph in PLACEHOLDER.findall(elem)}
        for ph in sorted(used - set(space.names) - set(RESERVED)):
            known = ", ".join(space.names) or "none"
            raise JobError(
                f"workload.command: unknown placeholder {{{ph}}}", f"use {{out}}, {{python}} or {known}"
            )
        for p in space.params:
            if p.name in RESERVED:
                raise JobError(f"workload.params.{p.name}: the name is reserved", "rename the parameter")
            if p.apply == "arg" and p.name not in used:
                fix = f'add {{{p.name}}} to workload.command or set apply = "env"'
                raise JobError(f"workload.params.{p.name}: not used in the command", fix)

    # -- what the workload is ------------------------------------------------------------------------
    def command_template(self) -> list[str]:
        """The argv with ``{param}``, ``{out}`` and ``{python}`` placeholders."""
        return list(self.workload.command)

    def setting(self, key: str, default: Any) -> Any:
        """A workload field that presets may not have (``metric_key``, ``flags``, ``constraint_exit_codes``)."""
        value = getattr(self.workload, key, None)
        return default if value is None else value

    @property
    def metric_key(self) -> str:
        return self.setting("metric_key", self.job.objective.metric)

    def base_space(self) -> SearchSpace:
        params = [build_param(n, f, where=f"workload.params.{n}") for n, f in self.workload.params.items()]
        try:
            return SearchSpace(params=tuple(params), constraints=tuple(self.workload.constraints))
        except ValidationError as exc:
            raise JobError(f"workload.params: {exc.errors()[0]['msg']}", "rename the duplicate") from None

    @staticmethod
    def _program_index(template: list[str]) -> int | None:
        """Index of the script or program that must exist: argv[0], or the file after python's flags."""
        if template[0] != "{python}" and not re.fullmatch(r"python[0-9.]*", Path(template[0]).name):
            return 0
        for i, elem in enumerate(template[1:], start=1):
            if elem in ("-m", "-c"):
                return None
            if not elem.startswith("-"):
                return i
        return None

    def render(self, config: dict[str, Value], out: Path) -> tuple[list[str], dict[str, str]]:
        """The argv and extra environment for one candidate writing into ``out``."""
        params = self.space().params
        cfg = {**self.space().defaults(), **config}
        style = self.setting("flags", "presence")
        values = {"out": str(out), "python": sys.executable}
        for p in params:
            v = cfg[p.name]
            if isinstance(v, bool):
                values[p.name] = ("1" if v else "0") if style == "one_zero" else str(v).lower()
            else:
                values[p.name] = str(v)
        argv = []
        for elem in self._template:
            m = PLACEHOLDER.fullmatch(elem)
            if m and style == "presence" and isinstance(cfg.get(m.group(1)), bool):
                argv += ["--" + m.group(1).replace("_", "-")] if cfg[m.group(1)] else []
                continue
            argv.append(PLACEHOLDER.sub(lambda mm: values[mm.group(1)], elem))
        return argv, {p.name.upper(): values[p.name] for p in params if p.apply == "env"}

    # -- where it writes -----------------------------------------------------------------------------
    def output_root(self, workdir: Path | None) -> Path:
        """The scratch folder the workload writes into: ours alone, emptied between runs, removed after."""
        if self.workload.output_dir:
            return self.job.resolve(self.workload.output_dir) / f"tunesmith-scratch-{self.job.name}"
        return (workdir or self.job.base_dir) / "out"

    def filesystem(self, path: Path) -> dict[str, str]:
        """The file system holding ``path`` (mount, fstype, options), from a mount table read once per target."""
        if self._mounts is None:
            self._mounts = read_mounts()
        return filesystem_of(path, self._mounts)

    def _check_storage(self, path: Path) -> None:
        fs = self.filesystem(path)
        if fs["fstype"] in MEMORY_FS and not self.workload.allow_tmpfs:
            raise JobError(
                f"output dir {path} is on {fs['fstype']}, which measures memory, not storage",
                "set workload.output_dir to a folder on a disk file system (or allow_tmpfs = true)",
            )

    def preflight(self) -> None:
        i = self._program
        if i is not None and not PLACEHOLDER.search(self._template[i]):
            prog = self._template[i]
            if ("/" in prog or i > 0) and not Path(prog).is_file():
                fix = "fix the path in the workload (relative paths start at the job file's folder)"
                raise JobError(f"workload script {prog} does not exist", fix)
            if "/" not in prog and i == 0 and shutil.which(prog) is None:
                raise JobError(
                    f"workload program {prog!r} is not on PATH", "install it or give its full path"
                )
        if self.workload.output_dir:
            out = self.output_root(None)
            self._check_storage(out)
            try:
                out.mkdir(parents=True, exist_ok=True)
                (out / ".write-test").write_bytes(b"ok")
                shutil.rmtree(out)
            except OSError as exc:
                problem = f"output dir {out.parent} is not writable ({exc.strerror or exc})"
                raise JobError(problem, "set workload.output_dir to a writable folder") from None

    # -- running it ----------------------------------------------------------------------------------
    def classify(
        self, res: RunResult, ctx: TrialContext, result_path: Path | None = None
    ) -> tuple[Status, str] | None:
        """The failure status and one-line reason of a run, or None when it succeeded (``runners/outcome.py``)."""
        return classify_run(
            res,
            timeout_s=ctx.timeout_s,
            memory_mb=ctx.memory_mb,
            metric_key=self.metric_key,
            constraint_exit_codes=self.setting("constraint_exit_codes", [EXIT_CONSTRAINT]),
            result_path=result_path,
        )

    def evaluate(self, candidate: Candidate, ctx: TrialContext) -> Measurement:
        workdir, repeats = ctx.workdir, ctx.repeats
        out = self._last_out = self.output_root(workdir)
        fp = self.fingerprint()
        try:
            self._check_storage(out)
        except JobError as exc:
            return Measurement(status=Status.INFRASTRUCTURE, detail=exc.line(), fingerprint=fp)
        argv, env = self.render(candidate.config, out)
        samples: list[float] = []
        extra: dict[str, list[float]] = {}
        dropped: list[float] = []  # 1.0 / 0.0 per run where a drop was attempted
        reasons: list[str] = []  # why a drop failed
        wall, last = 0.0, RunResult(returncode=None)
        self._scratch.add(out)
        warmup = ctx.warmup
        applied = TrialSettings({s: candidate.config.get(n, self.space().get(n).default)
                                 for n, s in self._settings.items()}, ctx.ledger, workdir).__enter__()
        env = {**env, **applied.env}
        try:
            for r in range(-warmup, repeats):  # r < 0: untimed warm-up runs (imports, allocator, caches)
                clear_folder(out)
                applied.prepare_output(out)
                run_dir = workdir / (f"run-{r}" if r >= 0 else f"warmup{-r}")
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "result.json").unlink(missing_ok=True)
                if self.workload.drop_caches and not self.workload_drops_caches:
                    ok, why = drop_page_cache()
                    if r >= 0:
                        dropped.append(float(ok))
                        reasons += [why] if why else []
                spec = ctx.spec(argv, cwd=run_dir, env={**env, RESULT_ENV: str(run_dir / "result.json")})
                last = ctx.run(spec, timed=r >= 0, label=f"run-{r}" if r >= 0 else f"warmup{-r}")
                wall += last.wall_s
                failure = self.classify(last, ctx, spec.result_path)
                if failure is not None:
                    tails = {"stdout_tail": last.stdout_tail, "stderr_tail": last.stderr_tail}
                    which = f"run {r + 1}/{repeats}" if r >= 0 else f"warm-up run {warmup + r + 1}/{warmup}"
                    detail = f"{which}: {failure[1]}"
                    return Measurement(status=failure[0], detail=detail, fingerprint=fp, wall_s=wall, **tails)
                result = last.result or {}
                if r < 0:
                    continue
                samples.append(float(result[self.metric_key]))
                if isinstance(result.get("page_cache_dropped"), bool):  # the workload tried it itself
                    dropped.append(float(result["page_cache_dropped"]))
                    reasons += (
                        [str(result.get("drop_caches_error"))] if not result["page_cache_dropped"] else []
                    )
                for key, value in result.items():
                    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
                    if key != self.metric_key and numeric and math.isfinite(value):
                        extra.setdefault(key, []).append(float(value))
        finally:
            remove_folder(out)
            self._scratch.discard(out)
            applied.__exit__(None, None, None)  # settings restored on every path (Ctrl-C included)
        metrics = {k: sum(v) / len(v) for k, v in extra.items() if len(v) == len(samples)}
        if dropped:
            metrics["page_cache_dropped"] = sum(dropped) / len(dropped)
        detail = self._ok_detail(samples, metrics, reasons)
        tails = {"stdout_tail": last.stdout_tail, "stderr_tail": last.stderr_tail}
        return Measurement(
            status=Status.OK,
            samples=samples,
            metrics=metrics,
            fingerprint=fp,
            wall_s=wall,
            detail=detail,
            notes=applied.notes,
            **tails,
        )

    def _ok_detail(self, samples: list[float], metrics: dict[str, float], reasons: list[str]) -> str:
        text = f"{len(samples)} runs, {self.metric_key} median {median(samples):.4g}"
        if "mb_per_s" in metrics:
            text += f", {metrics['mb_per_s']:.0f} MB/s mean"
        share = metrics.get("page_cache_dropped")
        if share is None:
            return text + "; page cache not dropped (drop_caches = false)"
        if share == 1:
            return text + "; page cache dropped before each run"
        return text + f"; page cache NOT dropped ({reasons[0] if reasons else 'unknown reason'})"

    def close(self) -> None:
        for path in list(self._scratch):
            remove_folder(path)
        self._scratch.clear()
        self._mounts = None  # a later study reads the mounts afresh

    # -- what to tell the agents ---------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        where = self._last_out or (self.output_root(None) if self.workload.output_dir else self.job.base_dir)
        return {**environment_fingerprint(), "filesystem": self.filesystem(where)}

    def priorities(self, history: list[Any]) -> list[str] | None:
        """Parameters to try first, from the baseline's I/O trace (``[measure] observers = ["iotrace"]``)."""
        if not {"iotrace", "darshan"} & set(self.job.measure.observers):
            return None
        from ..iotrace.priorities import priorities_from_history

        return priorities_from_history(history, self.space(), self.baseline().config, self.rules())

    def signature(self) -> str:
        prog = Path(self._template[self._program]).name if self._program is not None else self._template[0]
        return f"{self.domain}/command {prog} fs={self.fingerprint()['filesystem']['fstype']}"
