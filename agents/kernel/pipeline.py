"""`tune kernel PROBLEM.py` in one function: library, plan, template or LLM, tune through the core's loop,
verify, store.

1. A problem already solved on this hardware (same signature: op graph, shapes, dtypes) is answered from the
   kernel library, with no new search.
2. The template planner reads what the reference computes. With an LLM, the kernel agents (planner, coder,
   judge) get rounds to write a better kernel, starting from the template's where there is one; without an
   LLM, a pattern no template covers is a one-line "an LLM is needed" error.
3. The chosen kernel's configs (a template's meta parameters) are tuned as a study of the ``kernel`` target in
   the core's loop. Without a GPU the kernels run under the Triton interpreter: correctness only, no timing,
   and only the default config is checked unless a budget is given (configs cannot be compared untimed).
4. The best correct kernel is evaluated once more on its own, then stored in the library with its evidence,
   and written to ``OUT/model_new.py`` when asked.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.kernels.codegen_target import declares_small_inputs, evaluation_summary, gpu_visible
from tunesmith.kernels.library import LIBRARY_FILE, KernelLibrary, KernelRecord, hardware_fingerprint
from tunesmith.runners.errors import InfrastructureError, JobError, TunesmithError
from tunesmith.runners.types import Status, Trial

INTERPRETER_LINE = ("timing unavailable: no GPU here, so the Triton interpreter checked correctness only "
                    "(no speedup is claimed)")
GPU_TRIALS = 8


class NoCorrectKernel(TunesmithError):
    """Neither the templates nor the LLM produced a kernel the evaluator found correct (exit code 3)."""

    exit_code = 3


@dataclass
class KernelRun:
    """What one `tune kernel` produced."""

    problem: Path
    record: KernelRecord
    from_library: bool
    interpreted: bool
    study: str | None = None
    trials: int = 0
    llm_calls: int = 0
    llm_tokens: int = 0
    llm_attempts: list[str] = field(default_factory=list)
    out_path: Path | None = None
    wall_s: float = 0.0


def generate_kernel(problem: Path, *, state_dir: Path, out: Path | None = None, budget: int | None = None,
                    llm_mode: str | None = "auto", small: bool | None = None, rounds: int = 4, fresh: bool = False,
                    say: Callable[[str], None] = print, llm_setup: Any = None) -> KernelRun:
    """Generate, verify and store a kernel for ``problem`` (see the module docstring for the steps)."""
    started = time.monotonic()
    problem = _problem_path(problem)  # before the heavy imports: a wrong path is answered at once
    from tunesmith.kernels.generation import NeedsLLM, plan_kernel

    state_dir = state_dir.resolve()
    interpreted = not gpu_visible()
    if small is None:  # without a GPU always small: derived from the shape constants when not declared
        small = interpreted
    if interpreted:
        say("no GPU: kernels run under the Triton interpreter (correctness only, no timing)"
            + ("; using small shapes" + (" (get_small_inputs)" if declares_small_inputs(problem) else "")
               if small else ""))
    if small and not declares_small_inputs(problem):
        from tunesmith.kernels.small_inputs import small_shapes_note

        say(small_shapes_note(problem))
    plan = _plan(plan_kernel, problem, small)
    covered = not isinstance(plan, NeedsLLM)
    signature = plan.signature if covered else _uncovered_signature(problem, small)
    if covered:
        say(f"pattern: {plan.pattern}")
    hardware, hardware_id = hardware_fingerprint(interpreted=interpreted)
    library = KernelLibrary(state_dir / LIBRARY_FILE)
    with library:
        hit = None if fresh or not library.exists() else library.lookup(signature, hardware_id)
        if hit is not None:
            say(f"answered from the kernel library: kernel #{hit.id} ({hit.origin}, verified "
                f"{hit.created_at[:19]}; {hit.speed_text()})")
            run = KernelRun(problem, hit, True, interpreted, wall_s=time.monotonic() - started)
            run.out_path = write_model(hit.source, out, say) if out else None
            return run
        with _llm(llm_mode, llm_setup, needed=not covered, reason=getattr(plan, "reason", "")) as setup:
            client = setup.client if setup is not None else None
            source_file, origin, attempts = None, "template", []
            if client is not None:
                say(f"LLM: {setup.description}" + ("" if covered else f" (no template: {plan.reason})"))
                tokens = 1000 if setup.mode == "local" else 2500  # a small local model has a 4096-token context
                try:
                    best, attempts = _llm_rounds(client, problem, plan if covered else None, library, small, rounds,
                                                 state_dir, say, tokens,
                                                 graph=json.dumps(signature) if covered else plan.reason)
                finally:
                    total = client.ledger.total
                    say(f"LLM usage: {total.calls} call(s), {total.tokens} tokens")
                if best is not None and best.origin == "llm":
                    source_file, origin = _save_source(state_dir, problem, best.source), "llm"
                elif not covered:
                    raise NoCorrectKernel(f"no correct kernel for {problem.name} after {len(attempts)} LLM "
                                          f"attempt(s): {attempts[-1] if attempts else 'the LLM wrote none'}",
                                          "try a stronger model (--llm endpoint) or more --rounds")
                else:
                    say("keeping the template's kernel (no LLM kernel beat it)")
            usage = client.ledger.total if client is not None else None
        trials = budget or (1 if interpreted else GPU_TRIALS)
        if interpreted and budget is None and source_file is None:
            say("configs cannot be compared without timing: checking the template's default config only "
                "(--budget N checks N configs for correctness)")
        study, trial = _tune(problem, small, source_file, trials, state_dir, say, signature)
        ev = _verify(problem, trial, small, state_dir)
        evidence = {**evaluation_summary(ev), "study": study, "trial": trial.number, "small": small,
                    "interpreted": interpreted, "llm_attempts": attempts}
        record = library.add(problem=problem.stem, pattern=plan.pattern if covered else "LLM-written kernel",
                             signature=signature, hardware=hardware, source=trial.candidate.source or "",
                             origin=origin, evidence=evidence, config=dict(trial.candidate.config))
    tol = "strict" if ev.strict_ok else "loose"
    say(f"verified: correct at {tol} tolerance (max abs err {ev.max_abs_err})")
    say(INTERPRETER_LINE if ev.timing is None else f"speed: {record.speed_text()}")
    say(f"stored in the kernel library as #{record.id} ({library.path})")
    run = KernelRun(problem, record, False, interpreted, study=study, trials=trials, llm_attempts=attempts,
                    llm_calls=usage.calls if usage else 0, llm_tokens=usage.tokens if usage else 0)
    run.out_path = write_model(record.source, out, say) if out else None
    run.wall_s = time.monotonic() - started
    return run


def _problem_path(problem: Path) -> Path:
    path = Path(problem).expanduser().resolve()
    if not path.is_file() or path.suffix != ".py":
        raise JobError(f"problem file {str(problem)!r} does not exist or is not a .py file",
                       "give a KernelBench-format .py file (class Model, get_inputs, get_init_inputs)")
    return path


def _plan(plan_kernel: Callable[..., Any], problem: Path, small: bool) -> Any:
    try:
        return plan_kernel(problem, small=small)
    except TunesmithError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's file did not load or trace: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise JobError(f"{problem.name}: cannot read the reference ({type(exc).__name__}: {first})",
                       "check that it runs: class Model, get_inputs() and get_init_inputs() at top level") from None


def _uncovered_signature(problem: Path, small: bool) -> dict[str, Any]:
    digest = hashlib.sha256(problem.read_bytes()).hexdigest()[:16]
    return {"ops": [], "reference_sha256": digest, "small": small}


class _llm:  # noqa: N801 - a context manager used like a function
    """The LLM for the kernel agents: the injected one, or ``resolve_llm``'s; None offline.

    ``needed``: the problem has no template, so offline is a one-line "an LLM is needed" error (exit 2).
    """

    def __init__(self, mode: str | None, setup: Any, *, needed: bool, reason: str) -> None:
        self.mode, self.setup, self.needed, self.reason, self.owned = mode, setup, needed, reason, None

    def __enter__(self) -> Any:
        from tunesmith.agents.llm.config import resolve_llm

        if self.setup is None and self.mode != "off" and (self.needed or self.mode in ("local", "endpoint")):
            self.setup = self.owned = resolve_llm(None, self.mode)
        if self.needed and (self.setup is None or self.setup.client is None):
            raise JobError(self.reason or "no template covers this problem: an LLM is needed",
                           "pass --llm local or --llm endpoint (with an endpoint configured)")
        return self.setup if self.setup is not None and self.setup.client is not None else None

    def __exit__(self, *exc: object) -> None:
        if self.owned is not None:
            self.owned.close()


def _evaluator(problem: Path, small: bool, scratch: Path) -> Callable[[str], Any]:
    from tunesmith.kernels.evaluation import evaluate_source

    count = iter(range(1, 10_000))

    def evaluate(source: str) -> Any:
        where = scratch / f"llm-{next(count):03d}"
        where.mkdir(parents=True, exist_ok=True)
        return evaluate_source(problem, source, scratch=where, small=small)

    return evaluate


def _llm_rounds(client: Any, problem: Path, plan: Any, library: KernelLibrary, small: bool, rounds: int,
                state_dir: Path, say: Callable[[str], None], coder_tokens: int, graph: str) -> tuple[Any, list[str]]:
    from tunesmith.agents.kernel.loop import improve_kernel

    ops = [str(op) for op in (plan.signature.get("ops", []) if plan is not None else [])]
    similar = [{"pattern": r.pattern, "ops": " ".join(map(str, r.signature.get("ops", []))), "speed": r.speed_text()}
               for r in (library.similar(ops) if library.exists() else [])]
    scratch = state_dir / "scratch" / f"kernel-llm-{problem.stem}"
    start = plan.render(plan.default_config()) if plan is not None else None
    result = improve_kernel(client, reference=problem.read_text(encoding="utf-8"),
                            evaluate=_evaluator(problem, small, scratch), rounds=rounds, start=start, graph=graph,
                            similar=similar, lessons=_lessons(state_dir), on_event=lambda line: say(f"  {line}"),
                            coder_tokens=coder_tokens)
    say(f"LLM rounds ended: {result.stopped}")
    return result.best, [a.line() for a in result.attempts]


def _lessons(state_dir: Path, limit: int = 5) -> list[str]:
    """Past reflections of kernel studies in this state folder (none when there is no store yet)."""
    from tunesmith.knowledge.study_store import StudyStore

    path = state_dir / "tunesmith.db"
    if not path.is_file():
        return []
    store = StudyStore(path, read_only=True)
    try:
        return [r.insight for r in store.reflections(workload_prefix="kernel", limit=limit)]
    finally:
        store.close()


def _save_source(state_dir: Path, problem: Path, source: str) -> Path:
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    path = state_dir / "kernels" / f"{problem.stem}-llm-{digest}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def _tune(problem: Path, small: bool, source_file: Path | None, trials: int, state_dir: Path,
          say: Callable[[str], None], signature: dict[str, Any]) -> tuple[str, Trial]:
    """Run the ``kernel`` target's study in the core's loop; return its name and the trial to keep."""
    from tunesmith.agents.study import drive, failure_summary, open_session
    from tunesmith.kernels.library import signature_key
    from tunesmith.runners.job import parse_job

    name = f"kernel-{problem.stem[:40]}-{signature_key(signature)[:8]}"
    workload: dict[str, Any] = {"problem": str(problem), "small": small}
    if source_file is not None:
        workload["source_file"] = str(source_file)
    job = parse_job({"name": name, "target": "kernel", "workload": workload, "budget": {"trials": trials},
                     "objective": {"metric": "ms", "direction": "minimize"}, "llm": {"mode": "off"},
                     "measure": {"observers": []}}, origin="tune kernel")
    with open_session(job, state_dir, restart=True, job_path=str(problem)) as session:
        outcome = drive(session)
    say(f"study {name}: {len([t for t in outcome.trials if t.candidate.origin != 'remeasure'])} trial(s), "
        f"stopped: {outcome.stop_reason}")
    keep = _keep(outcome)
    if keep is None and any(t.measurement is not None and t.measurement.status == Status.INFRASTRUCTURE
                            for t in outcome.trials):
        raise InfrastructureError(f"the evaluator could not run for {problem.name}: "
                                  f"{failure_summary(outcome.trials)}", f"see `tune status {name}`")
    if keep is None:
        raise NoCorrectKernel(f"no correct kernel for {problem.name}: {failure_summary(outcome.trials)}",
                              f"see `tune status {name}`")
    return name, keep


def _keep(outcome: Any) -> Trial | None:
    """The study's best trial when timed; untimed, the default config if correct, else the first correct one."""
    best = outcome.best
    if best is not None and best.measurement is not None and best.measurement.ok and best.candidate.source:
        return best
    ok = [t for t in outcome.trials if t.measurement is not None and t.measurement.ok and t.candidate.source]
    return next((t for t in ok if t.candidate.origin == "baseline"), ok[0] if ok else None)


def _verify(problem: Path, trial: Trial, small: bool, state_dir: Path) -> Any:
    """Evaluate the kept kernel once more, on its own; anything but ``ok`` is refused."""
    from tunesmith.kernels.evaluation import evaluate_source

    scratch = state_dir / "scratch" / f"kernel-verify-{problem.stem}"
    scratch.mkdir(parents=True, exist_ok=True)
    ev = evaluate_source(problem, trial.candidate.source or "", scratch=scratch, small=small)
    if ev.status != "ok":
        raise NoCorrectKernel(f"the kept kernel (trial #{trial.number}) failed re-verification: {ev.status}: "
                              f"{ev.detail}", "run it again; a kernel that passes only sometimes is not stored")
    return ev


def foreign_imports(source: str) -> list[str]:
    """Top-level modules ``source`` imports beyond torch, triton and the standard library."""
    allowed = {"torch", "triton", *sys.stdlib_module_names}
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return sorted(found - allowed)


def write_model(source: str, out: Path, say: Callable[[str], None]) -> Path:
    """Write ``OUT/model_new.py``; refused if it imports anything but torch, triton and the standard library."""
    foreign = foreign_imports(source)
    if foreign:
        raise TunesmithError(f"the kernel imports {', '.join(foreign)}: not writing it as a standalone model_new.py",
                             "regenerate it (--fresh); model_new.py may import only torch, triton and the stdlib")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model_new.py"
    path.write_text(source, encoding="utf-8")
    say(f"wrote {path}")
    return path
