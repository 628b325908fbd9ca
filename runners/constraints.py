"""Constraint expressions of a search space: checked once when the job loads, then evaluated per config.

A constraint is a small Python-style condition over parameter names, e.g. ``not direct or chunk_kib % 4 == 0``.
Only parameter names, literals, ``min``/``max``/``abs`` and arithmetic, comparison and boolean operators are
allowed; anything else (an unknown name, a syntax error, an attribute, a call to another function) is refused
with one line naming the constraint, so a broken constraint can never silently reject every candidate.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs}

_OPERATORS = (
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
)  # fmt: skip
_NODES = (
    ast.Expression, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Compare, ast.IfExp,
    ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List, ast.Call, *_OPERATORS,
)  # fmt: skip
ALLOWED = "parameter names, numbers, strings, min/max/abs and arithmetic, comparison and and/or/not"


class ConstraintProblem(ValueError):
    """What is wrong with one constraint (``problem``) and how to fix it (``fix``)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def check_constraint(expr: Any, names: Sequence[str]) -> ast.Expression:
    """Parse ``expr`` and allow only what constraints may use; raise ``ConstraintProblem`` otherwise."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConstraintProblem(f"{expr!r} is not a condition", "write a condition such as 'threads <= 4'")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConstraintProblem(
            f"{expr!r} does not parse ({exc.msg})", "write a Python-style condition such as 'threads <= 4'"
        ) from None
    known = ", ".join(names) or "none"
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ConstraintProblem(f"{expr!r} uses {_describe(node)}, which constraints do not allow", f"use {ALLOWED}")
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else ""
            if func not in FUNCTIONS or func in names or node.keywords:
                called = func or ast.unparse(node.func)
                raise ConstraintProblem(
                    f"{expr!r} calls {called}(), which constraints do not allow", "call only min(), max() and abs()"
                )
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ConstraintProblem(f"{expr!r} unpacks arguments with *", "pass min/max/abs plain arguments")
        elif isinstance(node, ast.Name) and node.id not in names and not _is_callee(tree, node):
            raise ConstraintProblem(f"unknown parameter {node.id!r} in {expr!r}", f"use one of {known}")
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ConstraintProblem(f"{expr!r} uses the literal {node.value!r}", "use numbers, strings, True or False")
    return tree


def _is_callee(tree: ast.Expression, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _describe(node: ast.AST) -> str:
    text = {ast.Attribute: "an attribute", ast.Subscript: "indexing", ast.Lambda: "a lambda",
            ast.NamedExpr: "':='", ast.Dict: "a dict", ast.Set: "a set"}.get(type(node))  # fmt: skip
    if text:
        return text
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "a comprehension"
    if isinstance(node, (ast.Is, ast.IsNot)):
        return "'is'"
    return type(node).__name__


def evaluate(expr: str, config: dict[str, Any]) -> bool:
    """Whether ``config`` satisfies ``expr`` (exceptions propagate: the caller reports them)."""
    return bool(eval(_compiled(expr), {"__builtins__": FUNCTIONS}, dict(config)))  # noqa: S307 - checked subset


_CACHE: dict[str, Any] = {}


def _compiled(expr: str) -> Any:
    code = _CACHE.get(expr)
    if code is None:
        code = _CACHE[expr] = compile(expr.strip(), "<constraint>", "eval")
    return code
