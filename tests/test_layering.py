"""Imports point one way: runners <- kernels <- knowledge <- tools <- agents (DESIGN.md's one rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["runners", "kernels", "knowledge", "tools", "agents"]


def imported_layers(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tunesmith" and len(parts) > 1:
                found.add(parts[1])
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("tunesmith.") and ":" in node.value:
            found.add(node.value.split(".")[1].split(":")[0])  # lazy "tunesmith.x.y:Class" registry entries
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_one_way(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1]) | ({"prompts"} if layer == "agents" else set())
    bad = {
        str(path.relative_to(ROOT)): sorted(imported_layers(path) - allowed)
        for path in sorted((ROOT / layer).rglob("*.py"))
        if imported_layers(path) - allowed
    }
    assert not bad, f"{layer} may import only {sorted(allowed)}: {bad}"
