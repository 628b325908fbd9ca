"""Copy ``Model``'s constructor into ``ModelNew`` so a seeded construction creates the same parameters.

The class body (everything but ``forward``) is copied from the problem file with ``Model`` renamed; the
module-level names it uses must be torch/stdlib imports, literal constants, or helper classes and functions
that themselves use only those (copied too). Anything else is refused with one line.
"""

from __future__ import annotations

import ast
import builtins
import sys
from pathlib import Path

from .ir import Unsupported

ALLOWED_ROOTS = {"torch", "triton"} | set(sys.stdlib_module_names)


def _imports(tree: ast.Module, src: str) -> tuple[dict[str, str], list[str]]:
    """Names bound by torch/stdlib imports and the import lines that bind them."""
    bound, lines = {}, []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            roots = [(mod or a.name).split(".")[0] for a in node.names]
            if isinstance(node, ast.ImportFrom) and (node.level or not mod):
                continue
            if all(r in ALLOWED_ROOTS for r in roots):
                lines.append(ast.get_source_segment(src, node) or "")
                for a in node.names:
                    bound[(a.asname or a.name).split(".")[0]] = "import"
    return bound, lines


def _free_names(node: ast.AST) -> set[str]:
    """Names loaded in ``node`` that it does not bind itself (a coarse but safe over-approximation)."""
    loaded, stored = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else stored).add(n.id)
        elif isinstance(n, ast.arg):
            stored.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            stored.add(n.name)
    return loaded - stored - set(dir(builtins))


def model_new_source(path: Path, forward_args: list[str], forward_body: str) -> tuple[list[str], str]:
    """(import lines, source of the helpers plus ``class ModelNew``) with ``forward`` replaced."""
    src = Path(path).read_text()
    tree = ast.parse(src)
    bound, import_lines = _imports(tree, src)
    top: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            top[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            top[node.targets[0].id] = node
    cls = top.get("Model")
    if not isinstance(cls, ast.ClassDef):
        raise Unsupported("Model is not a plain class definition in the problem file")
    body = [s for s in cls.body if not (isinstance(s, ast.FunctionDef) and s.name == "forward")]
    needed: list[str] = []

    def require(names: set[str], where: str) -> None:
        for name in sorted(names):
            if name in bound or name in needed or name == "Model":
                continue
            node = top.get(name)
            if node is None:
                raise Unsupported(f"{where} uses {name}, which is not a torch/stdlib import or a local definition")
            if isinstance(node, ast.Assign):
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    raise Unsupported(f"{where} uses {name}, which is not a literal constant") from None
            needed.append(name)
            require(_free_names(node), name)

    for stmt in body:
        require(_free_names(stmt), "Model")
    lines = src.splitlines()
    parts = [ast.get_source_segment(src, top[n]) or "" for n in sorted(needed, key=lambda n: top[n].lineno)]
    cls_lines = lines[cls.lineno - 1 : cls.end_lineno]
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "forward":
            start = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list]) - cls.lineno
            for i in range(start, stmt.end_lineno - cls.lineno + 1):
                cls_lines[i] = None  # type: ignore[call-overload]
    text = "\n".join(line for line in cls_lines if line is not None)
    text = text.replace("class Model(", "class ModelNew(", 1).replace("class Model:", "class ModelNew:", 1)
    text = text.replace("super(Model, self)", "super(ModelNew, self)")
    indent = " " * (body[0].col_offset if body else cls.col_offset + 4)
    if not body:
        text += f"\n{indent}pass"
    fwd = f"\n\n{indent}def forward(self, {', '.join(forward_args)}):\n"
    fwd += "\n".join(f"{indent}    {line}" for line in forward_body.splitlines())
    return import_lines, "\n\n\n".join(parts + [text.rstrip() + fwd]) + "\n"
