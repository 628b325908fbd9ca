"""A small GPT trained with DDP on synthetic tokens: the training target's reference workload.

Launch under torchrun (``python -m torch.distributed.run --standalone --nproc-per-node=N train.py ...``);
run without torchrun it trains as a single process. Needs only torch and the standard library.

The global batch (sequences per optimizer step) is fixed by ``--global-batch``; the knobs split it into
``--micro-batch`` x ``--grad-accum`` x world size. Warm-up steps (torch.compile, allocator growth) are
discarded, each timed step prints one ``@@tunesmith {json}`` line, and rank 0 writes a result JSON to the
path in ``$TUNESMITH_RESULT`` (default ``./result.json``).

Exit codes: 0 ok, 2 bad arguments, 3 the batch split does not match ``--global-batch``, 4 out of memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.checkpoint import checkpoint

EXIT_BATCH_MISMATCH = 3
EXIT_OOM = 4
RESULT_ENV = "TUNESMITH_RESULT"
REPORT_PREFIX = "@@tunesmith "
# Dense bf16 peak FLOP/s per GPU, by a substring of torch.cuda.get_device_name(); MFU is null elsewhere.
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


class Block(nn.Module):
    """A pre-norm transformer block: causal self-attention and a 4x MLP."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.out = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(b, s, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, s, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """Token and position embeddings, ``layers`` blocks, a final norm and an untied output head."""

    def __init__(self, vocab: int, seq_len: int, layers: int, d_model: int, heads: int, ckpt: bool) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.ckpt = ckpt

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.ckpt else block(x)
        return self.head(self.ln(x))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--global-batch", type=int, required=True, help="sequences per optimizer step")
    p.add_argument("--micro-batch", type=int, default=1)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--bucket-cap-mb", type=float, default=25.0)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.d_model % args.heads:
        p.error(f"--d-model {args.d_model} is not divisible by --heads {args.heads}")
    for name in ("layers", "heads", "seq_len", "vocab", "micro_batch", "grad_accum", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def write_result(data: dict) -> None:
    path = os.environ.get(RESULT_ENV, "result.json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def fail(code: int, error: str, message: str, rank: int) -> None:
    """Print one line, record the failure in the result JSON and exit now."""
    print(f"tiny_gpt: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):  # every failing rank writes: the launcher may kill rank 0 first
        write_result({"error": error, "message": message, "rank": rank})
    sys.stdout.flush()
    os._exit(code)  # no process-group teardown: the other ranks may be blocked in a collective


def is_oom(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; the CPU allocator raises a plain RuntimeError."""
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "can't allocate memory" in str(exc)


def peak_memory_mb(device: torch.device) -> dict:
    if device.type == "cuda":
        return {
            "peak_mem_mb": torch.cuda.max_memory_reserved(device) / 2**20,
            "peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20,
        }
    return {
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_allocated_mb": None,
    }


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict:
    torch.manual_seed(args.seed)  # same initial weights on every rank
    model = GPT(
        args.vocab, args.seq_len, args.layers, args.d_model, args.heads, args.activation_checkpointing
    )
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.tok.weight.numel() + model.pos.weight.numel()
    ids = [device.index] if device.type == "cuda" else None
    ddp = DDP(model, device_ids=ids, bucket_cap_mb=args.bucket_cap_mb) if world > 1 else model
    step_model = torch.compile(ddp) if args.compile else ddp
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)  # each rank its own data shard
    pool = [
        torch.randint(0, args.vocab, (args.micro_batch, args.seq_len + 1), generator=gen).to(device)
        for _ in range(4)
    ]
    tokens_per_step = args.global_batch * args.seq_len
    step_s: list[float] = []
    cpu_s: list[float] = []
    loss_value = float("nan")
    for step in range(args.warmup_steps + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        total = torch.zeros((), device=device)
        for micro in range(args.grad_accum):
            batch = pool[(step * args.grad_accum + micro) % len(pool)]
            last = micro == args.grad_accum - 1
            sync = contextlib.nullcontext() if last or world == 1 else ddp.no_sync()
            with sync:
                with amp:
                    logits = step_model(batch[:, :-1])
                    loss = F.cross_entropy(logits.float().reshape(-1, args.vocab), batch[:, 1:].reshape(-1))
                (loss / args.grad_accum).backward()
            total += loss.detach() / args.grad_accum
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = total.item()  # also waits for the step to finish
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if step >= args.warmup_steps:
            step_s.append(dt)
            cpu_s.append(cpu)  # this rank's CPU time: a load-independent cross-check on a shared host
            if rank == 0:
                rep = {"step": step - args.warmup_steps, "step_s": dt, "tokens_per_s": tokens_per_step / dt}
                print(REPORT_PREFIX + json.dumps({**rep, "loss": loss_value}), flush=True)

    mem = peak_memory_mb(device)
    stats = torch.tensor([loss_value, mem["peak_mem_mb"]], dtype=torch.float64, device=device)
    if world > 1:
        loss_t = stats[:1].clone()
        dist.all_reduce(loss_t, op=dist.ReduceOp.SUM)
        peak_t = stats[1:].clone()
        dist.all_reduce(peak_t, op=dist.ReduceOp.MAX)
        stats = torch.cat([loss_t / world, peak_t])
    loss_value, mem["peak_mem_mb"] = float(stats[0]), float(stats[1])

    # Megatron/torchtitan convention: 6 N + 12 L s h per token, N without the embedding tables.
    flops_per_token = 6 * (n_params - n_embed) + 12 * args.layers * args.seq_len * args.d_model
    tokens_per_s = statistics.median(tokens_per_step / s for s in step_s)
    peak = None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), None)
    return {
        "tokens_per_s": tokens_per_s,
        "step_s": step_s,
        "step_s_median": statistics.median(step_s),
        "step_cpu_s": cpu_s,
        "tokens_per_step": tokens_per_step,
        **mem,
        "loss": loss_value,
        "correct": math.isfinite(loss_value),
        "world_size": world,
        "params": n_params,
        "flops_per_token": flops_per_token,
        "mfu": tokens_per_s * flops_per_token / (peak * world) if peak else None,
        "backend": dist.get_backend() if world > 1 else "none",
        "device": str(device.type),
        "config": {k: v for k, v in vars(args).items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    split = args.micro_batch * args.grad_accum * world
    if split != args.global_batch:
        fail(
            EXIT_BATCH_MISMATCH,
            "batch_mismatch",
            f"micro_batch {args.micro_batch} x grad_accum {args.grad_accum} x world_size {world} = {split}, "
            f"not the global batch {args.global_batch}",
            rank,
        )
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if world > 1:
        dist.init_process_group(backend)
    try:
        result = train(args, rank, world, device)
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not is_oom(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        fail(EXIT_OOM, "oom", f"out of memory on rank {rank}: {first}", rank)
    if rank == 0:
        write_result(result)
        print(
            f"tiny_gpt: {result['tokens_per_s']:.0f} tokens/s, step {result['step_s_median']:.3f} s, "
            f"peak {result['peak_mem_mb']:.0f} MB, loss {result['loss']:.3f}",
            flush=True,
        )
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
