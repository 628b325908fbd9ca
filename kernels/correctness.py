"""Correctness checks run inside the kernel harness: input variants, input snapshots, output comparison.

This module runs in the evaluation worker next to untrusted launcher code, so it imports only the
standard library and torch. The defences follow docs/measuring.md: the reference runs on its own copies and
its output is poisoned before the candidate runs; inputs must be bit-for-bit unchanged afterwards; the
output must be a plain ``torch.Tensor`` (or a tuple of them) of the reference's shape, dtype and device
that shares no memory with an input; and besides the inputs the user's maker returns, the candidate
sees signed and heavy-tailed inputs of the same shapes, so "return the input" cannot pass a ReLU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

STRICT_TOL = 1e-4  # docs/measuring.md: report a strict fp32 pass apart from the job's (looser) tolerance
VARIANTS = ("signed", "heavy_tailed")
HEAVY_CLAMP = 1e4  # heavy-tailed values stay finite in every float dtype (fp16 max is 65504)


@dataclass
class Case:
    """One set of inputs the candidate is checked on: the maker's seed and how the values were drawn."""

    name: str
    seed: int
    inputs: tuple[Any, ...]


@dataclass
class OutputCheck:
    """The comparison of one candidate output with the reference's: ``problem`` is empty when it passed."""

    problem: str = ""
    max_abs_err: float = 0.0
    strict_pass: bool | None = None  # None where no output is fp32
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem


def _is_float(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _redraw(inputs: Sequence[Any], seed: int, draw: Callable[[torch.Tensor, torch.Generator], torch.Tensor]):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for x in inputs:
        if _is_float(x):
            # empty_like keeps the strides of a dense layout (a transposed view stays transposed).
            out.append(torch.empty_like(x).copy_(draw(x, gen)))
        else:
            out.append(x)
    return tuple(out)


def signed_variant(inputs: Sequence[Any], seed: int) -> tuple[Any, ...]:
    """The same shapes and dtypes with standard-normal values (half of them negative)."""
    return _redraw(inputs, seed, lambda x, g: torch.randn(x.shape, generator=g))


def heavy_tailed_variant(inputs: Sequence[Any], seed: int) -> tuple[Any, ...]:
    """The same shapes and dtypes with log-normally scaled normal values (rare entries up to 1e4)."""

    def draw(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        scale = torch.exp(1.5 * torch.randn(x.shape, generator=g))
        return (torch.randn(x.shape, generator=g) * scale).clamp_(-HEAVY_CLAMP, HEAVY_CLAMP)

    return _redraw(inputs, seed, draw)


def make_cases(
    make_inputs: Callable[..., Any], seeds: Sequence[int], device: str, variants: Sequence[str] = VARIANTS
) -> list[Case]:
    """The maker's inputs for every seed, then each variant drawn from the first seeds' shapes."""
    cases = [Case(f"seed={s}", s, as_tuple(make_inputs(s, device))) for s in seeds]
    for i, name in enumerate(variants):
        base = cases[i % len(cases)]
        maker = signed_variant if name == "signed" else heavy_tailed_variant
        seed = 1_000_003 + 7919 * i + base.seed
        cases.append(Case(f"{name}(seed={base.seed})", base.seed, maker(base.inputs, seed)))
    return cases


def as_tuple(inputs: Any) -> tuple[Any, ...]:
    """The input maker may return one tensor or a tuple/list of arguments."""
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def clone_inputs(inputs: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in inputs)


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.detach().contiguous().reshape(-1).view(torch.uint8)


def changed_inputs(inputs: Sequence[Any], snapshot: Sequence[Any]) -> list[int]:
    """Indices of tensor inputs whose bytes, shape or dtype differ from the snapshot taken before."""
    bad = []
    for i, (x, s) in enumerate(zip(inputs, snapshot, strict=True)):
        if isinstance(s, torch.Tensor):
            same = (
                isinstance(x, torch.Tensor)
                and x.shape == s.shape
                and x.dtype == s.dtype
                and torch.equal(_bits(x), _bits(s))
            )
            if not same:
                bad.append(i)
    return bad


def output_tensors(out: Any) -> list[Any]:
    """The output as a list (one tensor or a tuple/list of them), elements unchecked."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def poison(out: Any) -> None:
    """Overwrite the reference's output so a candidate that returns reused memory cannot pass."""
    for t in output_tensors(out):
        if isinstance(t, torch.Tensor):
            if t.is_floating_point() or t.is_complex():
                t.detach().fill_(float("nan"))
            elif t.dtype == torch.bool:
                t.detach().logical_not_()
            else:
                t.detach().bitwise_not_()


def _shares_memory(t: torch.Tensor, inputs: Sequence[Any]) -> int | None:
    ptr = t.untyped_storage().data_ptr()
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.untyped_storage().data_ptr() == ptr and ptr != 0:
            return i
    return None


def _max_abs_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    o, r = out.detach().double(), ref.detach().double()
    same = (o == r) | (torch.isnan(o) & torch.isnan(r))
    diff = torch.where(same, torch.zeros_like(o), (o - r).abs())
    diff = torch.nan_to_num(diff, nan=math.inf)
    return float(diff.max()) if diff.numel() else 0.0


def compare(
    out: Any, expected: Sequence[torch.Tensor], inputs: Sequence[Any], rtol: float, atol: float
) -> OutputCheck:
    """Check the candidate's output against the reference's (already cloned) output tensors."""
    got = output_tensors(out)
    if len(got) != len(expected) or isinstance(out, (tuple, list)) != (len(expected) > 1):
        return OutputCheck(problem=f"returned {_kind(out)}, the reference returns {len(expected)} tensor(s)")
    check = OutputCheck()
    strict: list[bool] = []
    for k, (o, e) in enumerate(zip(got, expected, strict=True)):
        where = f"output {k}" if len(expected) > 1 else "output"
        if type(o) is not torch.Tensor:
            return OutputCheck(problem=f"{where} is {_kind(o)}, not a plain torch.Tensor")
        if o.shape != e.shape or o.dtype != e.dtype or o.device != e.device:
            return OutputCheck(
                problem=f"{where} is {tuple(o.shape)} {o.dtype} on {o.device}, "
                f"expected {tuple(e.shape)} {e.dtype} on {e.device}"
            )
        alias = _shares_memory(o, inputs)
        if alias is not None:
            return OutputCheck(problem=f"{where} shares memory with input {alias}; return a new tensor")
        err = _max_abs_err(o, e)
        check.max_abs_err = max(check.max_abs_err, err)
        if not torch.allclose(o, e, rtol=rtol, atol=atol, equal_nan=True):
            check.problem = check.problem or f"{where} differs from the reference: max abs error {err:.3g}"
        if e.dtype == torch.float32:
            strict.append(bool(torch.allclose(o, e, rtol=STRICT_TOL, atol=STRICT_TOL, equal_nan=True)))
    check.strict_pass = all(strict) if strict else None
    return check


def _kind(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return "None" if x is None else f"a {type(x).__module__}.{type(x).__qualname__}"


# -- generated kernels: the parent compares the worker's saved outputs with the reference it kept --------
_TOLERANCES = {  # (strict, loose) rtol = atol per dtype; "strict" is 1e-4 for fp32 (docs/measuring.md)
    torch.float64: (1e-6, 1e-2),
    torch.float32: (STRICT_TOL, 1e-2),
    torch.float16: (1e-3, 1e-2),
    torch.bfloat16: (1e-2, 2e-2),
}


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """The (strict, loose) tolerance for an output dtype; exact for integers and booleans."""
    if dtype in _TOLERANCES:
        return _TOLERANCES[dtype]
    return (1e-2, 5e-2) if dtype.is_floating_point else (0.0, 0.0)


@dataclass
class GeneratedCheck:
    """One case of a generated kernel: the first problem (empty if none) and both tolerance verdicts."""

    problem: str = ""
    max_abs_err: float = 0.0
    strict_ok: bool = True
    loose_ok: bool = True


def _close(o: torch.Tensor, e: torch.Tensor, tol: float) -> bool:
    if not (o.is_floating_point() or o.is_complex()):
        return torch.equal(o, e)
    return bool(torch.allclose(o, e, rtol=tol, atol=tol, equal_nan=True))


def check_generated(got: Sequence[Any], expected: Sequence[torch.Tensor]) -> GeneratedCheck:
    """Compare a generated kernel's outputs (CPU copies) with the reference's, whatever their strides."""
    if len(got) != len(expected):
        return GeneratedCheck(problem=f"returned {len(got)} tensor(s), the reference returns {len(expected)}",
                              strict_ok=False, loose_ok=False)
    check = GeneratedCheck()
    for k, (o, e) in enumerate(zip(got, expected, strict=True)):
        where = f"output {k}" if len(expected) > 1 else "output"
        bad = ""
        if type(o) is not torch.Tensor:
            bad = f"{where} is {_kind(o)}, not a plain torch.Tensor"
        elif o.shape != e.shape:
            bad = f"{where} shape {tuple(o.shape)} differs from the reference's {tuple(e.shape)}"
        elif o.dtype != e.dtype:
            bad = f"{where} dtype {o.dtype} differs from the reference's {e.dtype}"
        if bad:
            return GeneratedCheck(problem=bad, max_abs_err=math.inf, strict_ok=False, loose_ok=False)
        strict, loose = tolerances(e.dtype)
        check.max_abs_err = max(check.max_abs_err, _max_abs_err(o, e))
        check.strict_ok = check.strict_ok and _close(o, e, strict)
        if not _close(o, e, loose):
            check.loose_ok = check.strict_ok = False
            check.problem = check.problem or (
                f"{where} differs from the reference beyond the loose tolerance {loose:g} "
                f"(max abs error {check.max_abs_err:.3g})"
            )
    return check


def same_values(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> bool:
    """Whether two output lists hold the same shapes and values (bit for bit, NaNs equal)."""
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and torch.equal(_bits(x), _bits(y)) for x, y in zip(a, b, strict=True)
    )
