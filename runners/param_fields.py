"""Parameters written by a user (``[workload.params]``, ``[space]`` overrides), checked field by field.

Every mistake becomes one ``JobError`` line naming the parameter and the field, with a fix: unknown
fields, values of the wrong type, NaN or infinite numbers, ``low`` above ``high``, an empty ``values``
list, and (for ``[space]``, which narrows what the target offers) values outside the target's range.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .errors import JobError

if TYPE_CHECKING:
    from .space import Param

PARAM_FIELDS = ("kind", "default", "low", "high", "values", "step", "apply", "setting", "help")
OVERRIDE_FIELDS = ("default", "low", "high", "values", "step", "help")
_NUMERIC = ("int", "float", "log_float", "pow2")
_PARAM_FIXES = (  # Param's own checks (substring of its message) -> the fix to print
    ("needs values", "add values = [...]"),
    ("needs low and high", "add low and high"),
    ("log_float needs low > 0", "raise low above 0"),
    ("powers of two", "use powers of two for low and high"),
    ("above high", "swap them"),
    ("not a finite number", "write a finite number"),
    ("outside its range", "set default inside the range (or among values)"),
)


def _fail(where: str, problem: str, fix: str) -> JobError:
    return JobError(f"{where}: {problem}", fix)


def _number(value: Any, where: str, *, whole: bool = False) -> float | int:
    """``value`` if it is a finite number (a whole one with ``whole``), else a JobError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{value!r} is not a number", "write a whole number" if whole else "write a number")
    if not math.isfinite(value):
        raise _fail(where, f"{value} is not a finite number", "write a finite number")
    if whole and not isinstance(value, int):
        raise _fail(where, f"{value!r} is not a whole number", "write whole numbers (no decimal point)")
    return value


def _check_bounds(low: Any, high: Any, where: str, *, whole: bool) -> None:
    lo = None if low is None else _number(low, f"{where}.low", whole=whole)
    hi = None if high is None else _number(high, f"{where}.high", whole=whole)
    if lo is not None and hi is not None and lo > hi:
        raise _fail(where, f"low {lo:g} is above high {hi:g}", "swap them")


def _check_keys(fields: Any, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(fields, dict):
        raise _fail(where, f"expected a table of fields, got {fields!r}", f"give fields such as {', '.join(allowed)}")
    for key in fields:
        if key not in allowed:
            if key in PARAM_FIELDS or key in ("name", "source"):
                raise _fail(f"{where}.{key}", "cannot be changed here", f"remove it; set only {', '.join(allowed)}")
            raise _fail(f"{where}.{key}", "unknown field", f"use {', '.join(allowed)} (check the spelling)")


def _validated(data: dict[str, Any], where: str) -> Param:
    from .space import Param

    try:
        return Param.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ").removeprefix(f"param {data.get('name')}: ")
        fix = next((f for key, f in _PARAM_FIXES if key in msg), "correct that field")
        if err["type"] == "literal_error":
            fix = msg.replace("Input should be", "use")
        elif err["type"] == "missing":
            msg, fix = "required field is missing", "add it"
        raise _fail(f"{where}.{loc}" if loc else where, msg, fix) from None


def build_param(name: str, fields: Any, *, where: str) -> Param:
    """A Param from user-written fields (``[workload.params.NAME]``), or one JobError line."""
    _check_keys(fields, PARAM_FIELDS, where)
    kind = fields.get("kind")
    _check_bounds(fields.get("low"), fields.get("high"), where, whole=kind in ("int", "pow2"))
    if "values" in fields:
        values = fields["values"]
        if not isinstance(values, list) or not values:
            raise _fail(f"{where}.values", "must be a non-empty list", "list at least one value, e.g. [1, 2, 4]")
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise _fail(f"{where}.values", f"{v} is not a finite number", "write finite numbers")
            if not isinstance(v, (int, float, str, bool)):
                raise _fail(f"{where}.values", f"{v!r} is not a number, string or bool", "list plain values")
    if isinstance(fields.get("default"), float) and not math.isfinite(fields["default"]):
        raise _fail(f"{where}.default", f"{fields['default']} is not a finite number", "write a finite number")
    return _validated({**fields, "name": name}, where)


def _override_value(p: Param, value: Any, where: str, narrow: bool) -> Any:
    """One entry of a ``[space]`` ``values`` list, checked against the target's parameter ``p``."""
    if p.kind in ("int", "pow2"):
        value = _number(value, where, whole=True)
    elif p.kind in ("float", "log_float"):
        value = _number(value, where)
    else:  # choice: same kind of value as the target's own choices
        allowed = ", ".join(repr(v) for v in p.values)
        same = [v for v in p.values if v == value and type(v) is type(value)]
        is_text = isinstance(value, str)
        if not same and (narrow or not any(isinstance(v, str) == is_text for v in p.values)):
            raise _fail(where, f"{value!r} is not one of the values of {p.name}", f"pick from {allowed}")
        return value
    if narrow and not p.contains(value):
        raise _fail(where, f"{value!r} is outside the range of {p.name} {p.describe_range()}",
                    f"pick values in {p.describe_range()} ([space] narrows what the target offers)")
    return value


def override_param(p: Param, fields: Any, *, where: str, narrow: bool = True) -> Param:
    """``p`` with the user's ``[space.NAME]`` fields applied (``values`` on a numeric kind makes it a choice).

    ``narrow``: values and bounds must stay inside ``p``'s own range (what a job may do); ``False`` lets
    code widen a parameter on purpose.
    """
    from .space import Source

    _check_keys(fields, OVERRIDE_FIELDS, where)
    data = p.model_dump()
    if "values" in fields:
        if p.kind == "bool":
            raise _fail(f"{where}.values", "a bool parameter has no values list (it is true or false)",
                        "remove values")
        for key in ("low", "high", "step"):
            if key in fields:
                raise _fail(where, f"both values and {key} are given", f"give either values or {key}")
        values = fields["values"]
        if not isinstance(values, list) or not values:
            raise _fail(f"{where}.values", "must be a non-empty list", "list at least one value, e.g. [1, 2, 4]")
        picked: list[Any] = []
        for v in values:
            v = _override_value(p, v, f"{where}.values", narrow)
            if v not in picked:
                picked.append(v)
        if p.kind != "choice":
            data.update(kind="choice", low=None, high=None, step=None)
            picked.sort()
        data["values"] = tuple(picked)
    for key in ("low", "high", "step"):
        if key in fields and p.kind not in _NUMERIC:
            fix = "narrow it with values = [...]" if p.kind == "choice" else "remove it"
            raise _fail(f"{where}.{key}", f"a {p.kind} parameter has no {key}", fix)
    if "step" in fields:
        if p.kind != "int":
            raise _fail(f"{where}.step", f"a {p.kind} parameter has no step", "remove it")
        step = _number(fields["step"], f"{where}.step", whole=True)
        if step < 1:
            raise _fail(f"{where}.step", f"{step} is below 1", "use a step of 1 or more")
        data["step"] = step
    if "low" in fields or "high" in fields:
        whole = p.kind in ("int", "pow2")
        given = {k: _number(fields[k], f"{where}.{k}", whole=whole) for k in ("low", "high") if k in fields}
        if len(given) == 2 and given["low"] > given["high"]:
            raise _fail(where, f"low {given['low']:g} is above high {given['high']:g}", "swap them")
        for key, bound in given.items():
            if narrow and not (p.low <= bound <= p.high):  # type: ignore[operator]
                raise _fail(f"{where}.{key}", f"{bound:g} is outside the range of {p.name} [{p.low:g}, {p.high:g}]",
                            "stay inside that range ([space] narrows what the target offers)")
        low, high = given.get("low", p.low), given.get("high", p.high)
        if low > high:  # type: ignore[operator]
            raise _fail(where, f"low {low:g} is above high {high:g}", "lower low or raise high")
        data.update(low=low, high=high)
    if "default" in fields:
        default = fields["default"]
        if isinstance(default, float) and not math.isfinite(default):
            raise _fail(f"{where}.default", f"{default} is not a finite number", "write a finite number")
        data["default"] = default
    if "help" in fields:
        data["help"] = str(fields["help"])
    data["source"] = Source(kind="user", ref="job.toml")
    probe = _validated_or_none(data)
    if probe is None and "default" not in fields and "values" in fields:
        raise _fail(where, f"the default {p.default!r} is not among the values",
                    f"add {p.default!r} to values or set default to one of them")
    return probe if probe is not None else _validated(data, where)


def _validated_or_none(data: dict[str, Any]) -> Param | None:
    from .space import Param

    try:
        return Param.model_validate(data)
    except ValidationError:
        return None
