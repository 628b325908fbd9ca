"""The training target: its space, memory model, status mapping (fake scripts) and one real torchrun run."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from tunesmith.runners.base import RunResult, RunSpec
from tunesmith.runners.context import TrialContext
from tunesmith.runners.errors import JobError
from tunesmith.runners.job import parse_job
from tunesmith.runners.local import LocalRunner
from tunesmith.runners.training import target as training
from tunesmith.runners.training.target import TrainingTarget, classify, error_line
from tunesmith.runners.types import Candidate, Status

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "examples" / "tiny_gpt" / "train.py"
TINY = {"global_batch": 4, "seq_len": 16, "layers": 2, "d_model": 32, "heads": 2, "vocab": 64}

FAKE = """
import json, os, sys, time
argv = sys.argv
mode = argv[argv.index("--mode") + 1]
rank = int(os.environ.get("RANK", "0"))
out = os.environ["TUNESMITH_RESULT"]
def write(data):
    with open(out, "w") as fh:
        json.dump(data, fh)
if mode == "crash":
    raise RuntimeError("fake kernel exploded")
if mode == "oom":
    print("tiny_gpt: out of memory on rank 0: fake allocation of 9 GB", file=sys.stderr)
    write({"error": "oom", "message": "out of memory on rank 0: fake allocation of 9 GB"})
    sys.exit(4)
if mode == "oom_rank1":
    if rank == 1:
        sys.exit(4)
    time.sleep(60)
if mode == "mismatch":
    print("tiny_gpt: micro_batch 1 x grad_accum 1 x world_size 1 = 1, not the global batch 4", file=sys.stderr)
    sys.exit(3)
if mode == "hog":
    block = bytearray(600 * 2**20)
    time.sleep(30)
if mode == "hang":
    time.sleep(60)
result = {"tokens_per_s": 100.0, "step_s": [0.5, 0.4, 0.6], "tokens_per_step": 50, "peak_mem_mb": 12.0,
          "loss": float("nan") if mode == "nan" else 1.5, "world_size": 1, "params": 10, "mfu": None}
result["correct"] = mode != "nan"
write(result)
"""


def make_job(tmp_path: Path, nproc: int = 2, **workload):
    data = {
        "name": "t",
        "target": "training",
        "workload": {**TINY, "steps": 3, "warmup_steps": 1, **workload},
        "objective": {"metric": "tokens_per_s", "direction": "maximize"},
        "runner": {"kind": "torchrun", "nproc": nproc, "timeout_s": 120, "memory_mb": 4096},
    }
    return parse_job(data, base_dir=tmp_path)


def target(tmp_path: Path, **workload) -> TrainingTarget:
    return TrainingTarget(make_job(tmp_path, **workload))


def cand(t: TrainingTarget, **config) -> Candidate:
    return Candidate(config=t.space().validate_config(config))


def evaluate(t: TrainingTarget, candidate: Candidate, runner, tmp_path: Path, repeats: int):
    ctx = TrialContext.for_job(t.job, runner, tmp_path / "w", repeats=repeats)
    return ctx.finish(t.evaluate(candidate, ctx))


def fake_target(tmp_path: Path, mode: str, nproc: int = 2) -> TrainingTarget:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE)
    return TrainingTarget(make_job(tmp_path, nproc=nproc, script=str(script), extra_args=["--mode", mode]))


# -- workload, space, constraint -------------------------------------------------------------------
def test_workload_errors_are_one_line(tmp_path):
    with pytest.raises(JobError, match="workload.bogus: unknown field"):
        target(tmp_path, bogus=1)
    with pytest.raises(JobError, match="not divisible by heads"):
        target(tmp_path, d_model=30, heads=4)


def test_space_constraint_rejects_bad_splits_and_filters_grid(tmp_path):
    t = target(tmp_path, global_batch=16)
    space = t.space()
    assert space.names == ["micro_batch", "grad_accum", "activation_checkpointing", "compile", "bucket_cap_mb"]
    assert space.constraints == ("micro_batch * grad_accum * 2 == 16",)
    assert space.violations({"micro_batch": 4, "grad_accum": 4}) == [space.constraints[0]]
    assert space.violations({"micro_batch": 2, "grad_accum": 4}) == []
    grid = space.grid()
    assert len(grid) == 4 * 2 * 2 * 4 < space.size()  # (1,8) (2,4) (4,2) (8,1) x ckpt x compile x buckets
    assert all(c["micro_batch"] * c["grad_accum"] * 2 == 16 for c in grid)
    assert {(c["micro_batch"], c["grad_accum"]) for c in grid} == {(1, 8), (2, 4), (4, 2), (8, 1)}
    assert not space.violations(t.baseline().config)
    bad = Candidate(config={**t.baseline().config, "micro_batch": 8, "grad_accum": 2})
    assert t.check(bad) and t.check(t.baseline()) == []
    assert t.rules()[:3] == ["micro_batch", "grad_accum", "compile"]


def test_preflight_rejects_what_cannot_run(tmp_path):
    target(tmp_path).preflight()  # the bundled script is found when workload.script is left unset
    with pytest.raises(JobError, match="power of two"):
        target(tmp_path, global_batch=12).preflight()
    with pytest.raises(JobError, match="does not exist"):
        target(tmp_path, script="missing.py").preflight()
    job = make_job(tmp_path)
    job.runner.kind = "local"
    with pytest.raises(JobError, match="torchrun"):
        TrainingTarget(job).preflight()


def test_command_carries_every_knob(tmp_path):
    t = target(tmp_path, extra_args=["--seed", "3"])
    argv = t.command(cand(t, micro_batch=1, grad_accum=2, activation_checkpointing=True, bucket_cap_mb=5).config)
    assert argv[:2] == [sys.executable, str(TRAIN)]
    joined = " ".join(argv)
    for part in ("--micro-batch 1", "--grad-accum 2", "--bucket-cap-mb 5", "--global-batch 4", "--seed 3"):
        assert part in joined
    assert "--activation-checkpointing" in argv and "--compile" not in argv


# -- the memory model --------------------------------------------------------------------------------
def test_predict_grows_with_micro_batch_and_checkpointing_lowers_it(tmp_path):
    t = target(tmp_path, global_batch=32, seq_len=128, d_model=256, heads=4, layers=4, vocab=4096)
    mems = [t.predict(cand(t, micro_batch=mb, grad_accum=16 // mb)).memory_mb for mb in (1, 2, 4, 8, 16)]
    assert all(a < b for a, b in zip(mems, mems[1:], strict=False))
    plain = t.predict(cand(t, micro_batch=16, grad_accum=1))
    ckpt = t.predict(cand(t, micro_batch=16, grad_accum=1, activation_checkpointing=True))
    assert ckpt.memory_mb < plain.memory_mb and plain.feasible and ckpt.feasible
    t.job.runner.memory_mb = 1024  # 2 ranks x ~600 MB + launcher clearly exceeds 1 GB x margin
    assert not t.predict(cand(t, micro_batch=16, grad_accum=1)).feasible


def test_param_count_and_exit_codes_match_the_script(tmp_path):
    spec = importlib.util.spec_from_file_location("tiny_gpt_train", TRAIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (mod.EXIT_BATCH_MISMATCH, mod.EXIT_OOM) == (training.EXIT_BATCH_MISMATCH, training.EXIT_OOM)
    t = target(tmp_path, d_model=48, heads=3, layers=3, vocab=100, seq_len=20)
    model = mod.GPT(100, 20, 3, 48, 3, ckpt=False)
    assert sum(p.numel() for p in model.parameters()) == t.param_count()


# -- status mapping ----------------------------------------------------------------------------------
TORCHRUN_TAIL = """[rank1]: Traceback (most recent call last):
[rank1]: RuntimeError: boom on rank 1
[rank0]: RuntimeError: Connection closed by peer
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : {code} (pid: 7370)
============================================================
"""


def test_classify_reads_torchrun_root_cause(tmp_path):
    spec = RunSpec(argv=["x"], cwd=tmp_path, timeout_s=5, memory_mb=100)

    def status(compiled=False, **kw):
        return classify(RunResult(**{"returncode": 1, **kw}), compiled=compiled, spec=spec)

    assert status(stderr_tail=TORCHRUN_TAIL.format(code=1)) == (Status.RUNTIME, "RuntimeError: boom on rank 1")
    st, detail = status(stderr_tail=TORCHRUN_TAIL.format(code=4))
    assert st == Status.RUNTIME and detail.startswith("out of memory (")
    assert status(stderr_tail=TORCHRUN_TAIL.format(code=3))[0] == Status.CONSTRAINTS
    assert status(returncode=None, launch_error="cannot start")[0] == Status.INFRASTRUCTURE
    assert status(timed_out=True, returncode=-15)[0] == Status.TIMEOUT
    assert "out of memory" in status(memory_exceeded=True)[1]
    inductor = "torch._inductor.exc.InductorError: CppCompileError: C++ compile error\n"
    assert status(compiled=True, stderr_tail=inductor)[0] == Status.COMPILE
    assert status(compiled=False, stderr_tail=inductor)[0] == Status.RUNTIME
    assert status(returncode=0, result={"correct": True})[0] == Status.RUNTIME  # no step times
    assert error_line("tiny_gpt: out of memory on rank 1: x\nnoise") == "out of memory on rank 1: x"


@pytest.mark.parametrize(
    "mode, status, words",
    [
        ("crash", Status.RUNTIME, "RuntimeError: fake kernel exploded"),
        ("oom", Status.RUNTIME, "out of memory (out of memory on rank 0: fake allocation"),
        ("mismatch", Status.CONSTRAINTS, "not the global batch 4"),
        ("hog", Status.RUNTIME, "out of memory (the process tree exceeded the runner's 300 MB limit)"),
        ("nan", Status.CORRECTNESS, "loss is not finite"),
    ],
)
def test_failures_are_measured_not_raised(tmp_path, mode, status, words):
    t = fake_target(tmp_path, mode)
    t.job.runner.memory_mb = 300
    m = evaluate(t, t.baseline(), LocalRunner(poll_s=0.05), tmp_path, 2)
    assert m.status == status, m.detail
    assert words in m.detail and not m.samples


def test_fake_success_gives_per_step_samples_and_metrics(tmp_path):
    t = fake_target(tmp_path, "ok")
    m = evaluate(t, t.baseline(), LocalRunner(), tmp_path, 2)
    assert m.status == Status.OK, m.detail
    assert sorted(m.samples) == pytest.approx([50 / 0.6] * 2 + [100.0] * 2 + [125.0] * 2)
    assert m.metrics["peak_mem_mb"] == 12.0 and "mfu" not in m.metrics
    assert m.fingerprint["world_size"] == 2 and m.fingerprint["backend"] in ("gloo", "nccl")


def test_timeout_is_a_timeout(tmp_path):
    t = fake_target(tmp_path, "hang")
    t.job.runner.timeout_s = 1
    m = evaluate(t, t.baseline(), LocalRunner(grace_s=0.5), tmp_path, 1)
    assert m.status == Status.TIMEOUT and "1 s wall-time limit" in m.detail


def test_real_script_batch_mismatch_is_constraints(tmp_path):
    # Run as one plain process while the job says 2 ranks: the script sees world size 1 and refuses.
    t = target(tmp_path)
    m = evaluate(t, t.baseline(), LocalRunner(), tmp_path, 1)
    assert m.status == Status.CONSTRAINTS and "not the global batch 4" in m.detail


def test_real_script_out_of_memory_is_runtime(tmp_path):
    # A 10^9-token vocabulary needs a 128 GB embedding: the allocation fails (or the memory limit trips).
    t = TrainingTarget(make_job(tmp_path, nproc=1, vocab=10**9))
    m = evaluate(t, t.baseline(), LocalRunner(), tmp_path, 1)
    assert m.status == Status.RUNTIME and m.detail.startswith("out of memory ("), m.detail


def test_torchrun_worker_oom_exit_code_survives_the_launcher(tmp_path):
    from tunesmith.runners.training.torchrun import TorchrunRunner

    t = fake_target(tmp_path, "oom_rank1")
    m = evaluate(t, t.baseline(), TorchrunRunner(), tmp_path, 1)
    assert m.status == Status.RUNTIME and m.detail == "out of memory (rank 1 exited with code 4)"


# -- one real run ------------------------------------------------------------------------------------
def test_real_tiny_run_under_torchrun(tmp_path):
    from tunesmith.runners.training.torchrun import TorchrunRunner

    t = target(tmp_path)
    t.preflight()
    m = evaluate(t, cand(t, micro_batch=1, grad_accum=2), TorchrunRunner(), tmp_path, 1)
    assert m.status == Status.OK, (m.detail, m.stderr_tail[-2000:])
    assert len(m.samples) == 3 and min(m.samples) > 0 and m.median > 0
    assert m.metrics["peak_mem_mb"] > 50 and m.metrics["world_size"] == 2
    assert m.metrics["params"] == t.param_count() and math.isfinite(m.metrics["loss"])
    assert m.fingerprint["backend"] == "gloo"


@pytest.mark.slow
def test_real_compiled_checkpointed_run(tmp_path):
    from tunesmith.runners.training.torchrun import TorchrunRunner

    t = target(tmp_path)
    t.job.runner.timeout_s = 600
    c = cand(t, micro_batch=2, grad_accum=1, activation_checkpointing=True, compile=True, bucket_cap_mb=1)
    m = evaluate(t, c, TorchrunRunner(), tmp_path, 1)
    assert m.status == Status.OK, (m.detail, m.stderr_tail[-2000:])
    assert m.median > 0 and math.isfinite(m.metrics["loss"])
