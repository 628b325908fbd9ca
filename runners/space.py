"""Typed search spaces: parameters with defaults, ranges, provenance and how they are applied."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .constraints import ConstraintProblem, check_constraint, evaluate
from .errors import JobError

ParamKind = Literal["int", "float", "log_float", "pow2", "choice", "bool"]
Value = int | float | str | bool


class Source(BaseModel):
    """Where a parameter came from: a manual page (with the quoted text), a profile, the user, a target."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["target", "user", "manual", "profile", "reflection"] = "target"
    ref: str = ""  # e.g. "lustre-manual.pdf#p123", "job.toml"
    quote: str = ""  # the literal text that supports the parameter (manual extraction)


class Param(BaseModel):
    """One tunable parameter.

    ``apply`` says how the target applies it (``"arg"``: command-line flag, ``"env"``: environment
    variable, ``"meta"``: kernel launch/meta parameter, ``"setting"``: an outside-world setting that is
    recorded and restored). ``values`` lists the choices for ``choice``; ``low``/``high`` bound numeric kinds.
    """

    model_config = ConfigDict(frozen=True)
    name: str
    kind: ParamKind
    default: Value
    low: float | None = None
    high: float | None = None
    values: tuple[Value, ...] = ()
    step: int | None = None
    apply: Literal["arg", "env", "meta", "setting"] = "arg"
    setting: str = ""  # with apply = "setting": which one, e.g. "gluster:VOL:performance.write-behind" (runners/appliers)
    help: str = ""
    source: Source = Field(default_factory=Source)

    @model_validator(mode="after")
    def _check(self) -> Param:
        numbers = [("low", self.low), ("high", self.high), ("default", self.default)]
        for label, v in numbers + [("values", x) for x in self.values]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"param {self.name}: {label} {v} is not a finite number")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"param {self.name}: low {self.low:g} is above high {self.high:g}")
        if self.kind == "choice" and not self.values:
            raise ValueError(f"param {self.name}: a choice needs values")
        if self.kind in ("int", "float", "log_float", "pow2") and (self.low is None or self.high is None):
            raise ValueError(f"param {self.name}: a {self.kind} needs low and high")
        if self.kind == "log_float" and (self.low or 0) <= 0:
            raise ValueError(f"param {self.name}: log_float needs low > 0")
        if self.kind == "pow2":
            for bound in (self.low, self.high):
                if bound is None or bound < 1 or int(bound) & (int(bound) - 1):
                    raise ValueError(f"param {self.name}: pow2 bounds must be powers of two")
        if not self.contains(self.default):
            raise ValueError(f"param {self.name}: default {self.default!r} is outside its range")
        return self

    # -- membership and enumeration -------------------------------------------------------------
    def contains(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not (self.low <= value <= self.high):  # type: ignore[operator]
            return False
        if self.kind in ("int", "pow2") and int(value) != value:
            return False
        if self.kind == "pow2":
            return int(value) & (int(value) - 1) == 0
        if self.kind == "int" and self.step:
            return (int(value) - int(self.low)) % self.step == 0  # type: ignore[arg-type]
        return True

    def grid(self, points: int = 5) -> list[Value]:
        """A finite list of values: all of them for discrete kinds, ``points`` samples for continuous."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "pow2":
            out, v = [], int(self.low)  # type: ignore[arg-type]
            while v <= self.high:  # type: ignore[operator]
                out.append(v)
                v *= 2
            return out
        if self.kind == "int":
            step = self.step or 1
            vals = list(range(int(self.low), int(self.high) + 1, step))  # type: ignore[arg-type]
            if len(vals) <= max(points, 16):
                return vals
            idx = {round(i * (len(vals) - 1) / (points - 1)) for i in range(points)}
            return [vals[i] for i in sorted(idx)]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.kind == "log_float":
            return [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (points - 1)) for i in range(points)]
        return [lo + i * (hi - lo) / (points - 1) for i in range(points)]

    def sample(self, rng: random.Random) -> Value:
        if self.kind in ("bool", "choice", "pow2") or (self.kind == "int" and self.step):
            return rng.choice(self.grid())
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))  # type: ignore[arg-type]
        if self.kind == "log_float":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))  # type: ignore[arg-type]
        return rng.uniform(self.low, self.high)  # type: ignore[arg-type]

    def coerce(self, value: Any) -> Value:
        """Convert a TOML/JSON/LLM value to this parameter's type, or raise ValueError."""
        if self.kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.kind == "choice":
            for v in self.values:
                if value == v or str(value) == str(v):
                    return v
            raise ValueError(f"{self.name} must be one of {list(self.values)}, got {value!r}")
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a number, got {value!r}") from None
        if not math.isfinite(num):
            raise ValueError(f"{self.name} must be a finite number, got {value!r}")
        out: Value = int(num) if self.kind in ("int", "pow2") and num == int(num) else num
        if not self.contains(out):
            raise ValueError(f"{self.name}={value!r} is outside {self.describe_range()}")
        return out

    def describe_range(self) -> str:
        if self.kind in ("choice", "bool", "pow2"):
            return str(self.grid())
        return f"[{self.low}, {self.high}]"


class SearchSpace(BaseModel):
    """An ordered set of parameters plus optional constraints (Python expressions over the config)."""

    params: tuple[Param, ...]
    constraints: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> SearchSpace:
        names = [p.name for p in self.params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate parameter names: {sorted(dup)}")
        return self

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def get(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.params}

    def validate_config(self, config: dict[str, Any], *, where: str = "config") -> dict[str, Value]:
        """Complete ``config`` with defaults and coerce it; raise JobError naming the bad key."""
        unknown = sorted(set(config) - set(self.names))
        if unknown:
            raise JobError(
                f"{where}: unknown parameter {unknown[0]!r}",
                f"use one of {', '.join(self.names)}",
            )
        out: dict[str, Value] = {}
        for p in self.params:
            try:
                out[p.name] = p.coerce(config[p.name]) if p.name in config else p.default
            except ValueError as exc:
                raise JobError(f"{where}: {exc}", f"pick a value in {p.describe_range()}") from None
        return out

    def violations(self, config: dict[str, Any]) -> list[str]:
        """Constraint expressions that ``config`` breaks (evaluated with the config as names)."""
        bad = []
        for expr in self.constraints:
            try:
                ok = evaluate(expr, config)
            except Exception as exc:  # noqa: BLE001 - a broken constraint is a violation, reported
                bad.append(f"{expr} ({type(exc).__name__}: {exc})")
                continue
            if not ok:
                bad.append(expr)
        return bad

    def check_constraints(self, *, where: str = "constraints") -> None:
        """Raise a one-line JobError for the first constraint that does not parse or names an unknown parameter.

        ``where`` names the field the constraints came from; constraints are numbered from 1.
        """
        for i, expr in enumerate(self.constraints, start=1):
            try:
                check_constraint(expr, self.names)
            except ConstraintProblem as exc:
                raise JobError(f"{where}[{i}]: {exc.problem}", exc.fix) from None

    def grid(self, points: int = 5) -> list[dict[str, Value]]:
        """Every combination of each parameter's grid that satisfies the constraints."""
        combos = itertools.product(*(p.grid(points) for p in self.params))
        out = [dict(zip(self.names, c, strict=True)) for c in combos]
        return [c for c in out if not self.violations(c)]

    def size(self, points: int = 5) -> int:
        return math.prod(len(p.grid(points)) for p in self.params)

    def restrict(
        self, overrides: dict[str, dict[str, Any]], *, where: str = "space", narrow: bool = False
    ) -> SearchSpace:
        """A copy with some parameters' fields replaced (e.g. ``{"threads": {"values": [1, 2]}}``).

        Every mistake is a one-line JobError naming ``where.NAME.field``: unknown fields, values of the wrong
        type, NaN, low above high, an empty list. ``values`` on a numeric parameter turns it into a choice.
        ``narrow`` (a job's ``[space]``) also refuses values and bounds outside the parameter's own range.
        """
        from .param_fields import override_param

        unknown = sorted(set(overrides) - set(self.names))
        if unknown:
            raise JobError(f"{where}: unknown parameter {unknown[0]!r}", f"use one of {', '.join(self.names)}")
        new = [
            override_param(p, overrides[p.name], where=f"{where}.{p.name}", narrow=narrow) if p.name in overrides else p
            for p in self.params
        ]
        return SearchSpace(params=tuple(new), constraints=self.constraints)
