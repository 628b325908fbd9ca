"""Kernel generation on the project's problem set: correctness, speed against eager and torch.compile, cost.

Each problem runs the whole `tune kernel` pipeline (``agents/kernel/pipeline.generate_kernel``) in a fresh
state folder (no library answers): template or LLM, configs tuned through the core's loop, re-verified,
stored. Then an independent check, in a fresh process, loads the written ``model_new.py`` and the reference
and compares them on seeds and input draws the evaluator never used (loose tolerance: 1e-2 absolute plus
1e-2 relative).

Reported per problem and overall: correctness rate at strict and loose tolerance (over all problems and over
those a template covers), the independent check, fast_1 and fast_1.2 (the share of problems whose kernel is
correct and faster than eager / ``torch.compile`` by more than 1x / 1.2x), the geometric-mean speedup, wall
time, GPU time (the wall time of the evaluations, only where a GPU ran them), LLM calls and tokens.

Without a GPU the kernels run under the Triton interpreter on the problems' small shapes: only the
correctness half runs, and every speed column says so (None in the JSON), nothing is invented.

    python benchmarks/kernels.py                      # every problem, offline (templates)
    python benchmarks/kernels.py --only softmax rms_norm --llm local --rounds 2

Prints a table and writes ``benchmarks/results/kernels.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"

CHECK = textwrap.dedent('''
    import importlib.util, json, sys, torch
    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
    ref, new = load("ref", sys.argv[1]), load("new", sys.argv[2])
    small = sys.argv[3] == "1"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    make = ref.get_small_inputs if small and hasattr(ref, "get_small_inputs") else ref.get_inputs
    init = ref.get_init_inputs()
    torch.manual_seed(9); model = ref.Model(*init).to(device)
    torch.manual_seed(9); model_new = new.ModelNew(*init).to(device)
    worst = 0.0
    for seed in (1001, 2002, 3003):
        torch.manual_seed(seed)
        xs = [x.to(device) if torch.is_tensor(x) else x for x in make()]
        if seed == 2002:
            xs = [x * 4 - 1 if torch.is_tensor(x) and x.is_floating_point() else x for x in xs]
        with torch.no_grad():
            want = model(*[x.clone() if torch.is_tensor(x) else x for x in xs])
            got = model_new(*[x.clone() if torch.is_tensor(x) else x for x in xs])
        ok = torch.is_tensor(got) and got.shape == want.shape and got.dtype == want.dtype
        if not ok:
            print(json.dumps({"ok": False, "why": "wrong output type, shape or dtype"})); sys.exit(0)
        if want.dtype.is_floating_point:  # loose tolerance: |got - want| <= 1e-2 + 1e-2 * |want|
            excess = (got.float() - want.float()).abs() / (1e-2 + 1e-2 * want.float().abs())
            worst = max(worst, excess.max().item())
        else:
            worst = max(worst, 2.0 * float((got != want).any().item()))
    print(json.dumps({"ok": worst <= 1.0, "worst_over_tolerance": worst}))
''')


def independent_check(problem: Path, model_new: Path, small: bool, interpreted: bool) -> dict[str, Any]:
    """Compare the written model_new.py with the reference in a fresh process, on fresh seeds."""
    env = {**os.environ, "TRITON_INTERPRET": "1" if interpreted else "0"}
    try:
        res = subprocess.run([sys.executable, "-c", CHECK, str(problem), str(model_new), "1" if small else "0"],
                             env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"ok": False, "why": "timed out"}
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return {"ok": False, "why": (res.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(lines[-1])


def run_problem(problem: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline on one problem in a fresh state folder, then the independent check."""
    from tunesmith.agents.kernel.pipeline import generate_kernel
    from tunesmith.knowledge.study_store import StudyStore
    from tunesmith.runners.errors import TunesmithError

    row: dict[str, Any] = {"problem": problem.stem, "result": "", "pattern": "", "strict_ok": False,
                           "loose_ok": False, "independent_ok": None, "speedup_eager": None,
                           "speedup_compile": None, "wall_s": 0.0, "gpu_s": None, "llm_calls": 0, "llm_tokens": 0}
    lines: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
        state, out = Path(tmp) / "state", Path(tmp) / "out"
        try:
            run = generate_kernel(problem, state_dir=state, out=out, budget=args.budget, llm_mode=args.llm,
                                  rounds=args.rounds, fresh=True, say=lines.append)
        except TunesmithError as exc:
            row["wall_s"] = time.monotonic() - started
            row["result"] = "needs an LLM" if "LLM is needed" in exc.line() else f"failed (exit {exc.exit_code})"
            row["detail"] = exc.line()[:300]
            return row
        rec = run.record
        row.update(result="ok", pattern=rec.pattern, strict_ok=rec.strict_ok, loose_ok=rec.loose_ok,
                   speedup_eager=rec.speedup_eager, speedup_compile=rec.speedup_compile, origin=rec.origin,
                   llm_calls=run.llm_calls, llm_tokens=run.llm_tokens, max_abs_err=rec.evidence.get("max_abs_err"))
        if run.study and not run.interpreted:
            store = StudyStore(state / "tunesmith.db", read_only=True)
            try:
                row["gpu_s"] = sum(t.measurement.wall_s for t in store.trials(run.study) if t.measurement)
            finally:
                store.close()
        row["wall_s"] = time.monotonic() - started
        check = independent_check(problem, out / "model_new.py", bool(rec.evidence.get("small")), run.interpreted)
        row["independent_ok"] = bool(check.get("ok"))
        row["independent"] = check
    return row


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarise(rows: list[dict[str, Any]], timed: bool) -> dict[str, Any]:
    """Rates over all problems and over the covered ones; speed figures only where kernels were timed."""
    n = len(rows)
    covered = [r for r in rows if r["result"] != "needs an LLM"]

    def rate(rs: list[dict[str, Any]], key: str) -> float | None:
        return sum(bool(r.get(key)) for r in rs) / len(rs) if rs else None

    out: dict[str, Any] = {
        "problems": n, "covered": len(covered), "generated": sum(r["result"] == "ok" for r in rows),
        "correct_strict": rate(rows, "strict_ok"), "correct_loose": rate(rows, "loose_ok"),
        "correct_strict_covered": rate(covered, "strict_ok"), "correct_loose_covered": rate(covered, "loose_ok"),
        "independent_ok_covered": rate(covered, "independent_ok"),
        "wall_s": sum(r["wall_s"] for r in rows), "llm_calls": sum(r["llm_calls"] for r in rows),
        "llm_tokens": sum(r["llm_tokens"] for r in rows),
    }
    for base in ("eager", "compile"):
        ups = [r[f"speedup_{base}"] for r in rows if r["strict_ok"] and r[f"speedup_{base}"] is not None]
        out[f"fast_1_{base}"] = sum(u > 1.0 for u in ups) / n if timed and n else None
        out[f"fast_1.2_{base}"] = sum(u > 1.2 for u in ups) / n if timed and n else None
        out[f"geomean_{base}"] = geomean(ups) if timed else None
    out["gpu_s"] = sum(r["gpu_s"] or 0.0 for r in rows) if timed else None
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _x(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="problem names (default: the whole set)")
    parser.add_argument("--llm", default="off", help="off | auto | endpoint | local")
    parser.add_argument("--budget", type=int, default=None, help="configs per problem (default: the CLI's)")
    parser.add_argument("--rounds", type=int, default=2, help="LLM rounds per problem")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from tunesmith.kernels.codegen_target import gpu_visible
    from tunesmith.kernels.problems import list_problems

    console = Console() if sys.stdout.isatty() else Console(width=150)
    timed = gpu_visible()
    problems = [p for p in list_problems() if args.only is None or p.stem in args.only]
    if not timed:
        console.print("no GPU: running the correctness half only (Triton interpreter, small shapes); "
                      "speed columns are not measured", highlight=False)
    rows = []
    for p in problems:
        row = run_problem(p, args)
        rows.append(row)
        console.print(f"{p.stem}: {row['result']} ({row['wall_s']:.1f} s)", highlight=False)
    summary = summarise(rows, timed)
    table = Table("problem", "result", "strict", "loose", "indep.", "x eager", "x compile", "wall s", "LLM calls",
                  "tokens", title="kernel generation" + ("" if timed else " (correctness only: no GPU)"))
    for r in rows:
        indep = "–" if r["independent_ok"] is None else ("ok" if r["independent_ok"] else "FAIL")
        table.add_row(r["problem"], r["result"], "ok" if r["strict_ok"] else "–", "ok" if r["loose_ok"] else "–",
                      indep, _x(r["speedup_eager"]), _x(r["speedup_compile"]), f"{r['wall_s']:.1f}",
                      str(r["llm_calls"]), str(r["llm_tokens"]))
    console.print(table)
    s = summary
    console.print(f"correct (strict / loose): {_pct(s['correct_strict'])} / {_pct(s['correct_loose'])} of "
                  f"{s['problems']} problems; on the {s['covered']} a template covers: "
                  f"{_pct(s['correct_strict_covered'])} / {_pct(s['correct_loose_covered'])}; independent check "
                  f"{_pct(s['independent_ok_covered'])}", highlight=False)
    if timed:
        console.print(f"fast_1 / fast_1.2 vs eager: {_pct(s['fast_1_eager'])} / {_pct(s['fast_1.2_eager'])}; "
                      f"vs torch.compile: {_pct(s['fast_1_compile'])} / {_pct(s['fast_1.2_compile'])}; geometric "
                      f"mean {_x(s['geomean_eager'])} vs eager, {_x(s['geomean_compile'])} vs torch.compile; "
                      f"GPU time {s['gpu_s']:.1f} s", highlight=False)
    else:
        console.print("fast_1, fast_1.2, geometric-mean speedup, GPU time: not measured (no GPU)", highlight=False)
    console.print(f"wall time {s['wall_s']:.1f} s; LLM calls {s['llm_calls']}, tokens {s['llm_tokens']} "
                  f"(LLM mode: {args.llm})", highlight=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from tunesmith.runners.fingerprint import environment_fingerprint

    args.out.write_text(json.dumps({
        "mode": "timed on a GPU" if timed else "correctness only: no GPU (Triton interpreter, small shapes)",
        "llm": args.llm, "machine": {**environment_fingerprint(), "platform": platform.platform()},
        "summary": summary, "problems": rows}, indent=1, default=str), encoding="utf-8")
    console.print(f"wrote {args.out}", highlight=False)


if __name__ == "__main__":
    main()
