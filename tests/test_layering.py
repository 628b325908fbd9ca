"""Imports point one way: runners <- kernels <- knowledge <- tools <- agents, sub-packages included.

The checker reads every module with ``ast``: absolute and relative imports, ``from package import
module``, and lazy registry entries written as "tunesmith.x.y:Class" or a dotted module name in a string.
Besides the layer order: the front ends (``agents/frontends``) are imported by nothing else in the
package (only the console script enters them), and every package folder is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["runners", "kernels", "knowledge", "tools", "agents"]
PACKAGES = {*LAYERS, "prompts"}
SUBPACKAGES = [
    "agents/frontends", "agents/kernel", "runners/io", "runners/training", "runners/replay", "runners/iotrace",
    "runners/appliers", "runners/filesystems", "kernels/generation", "kernels/problems", "knowledge/vector",
    "knowledge/manuals", "tools/operations", "tools/ci",
    "tools/initjob", "agents/chat",
]
FRONTENDS = "tunesmith.agents.frontends"
_DOTTED = re.compile(r"tunesmith(\.[A-Za-z_]\w*)+")


def module_name(path: Path) -> str:
    """``runners/io/command.py`` -> ``tunesmith.runners.io.command`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["tunesmith", *parts])


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every ``tunesmith.*`` module the source of ``module`` imports, eagerly or through a lazy string."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{a.name}" for a in node.names if a.name != "*")  # may name a sub-module
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split(":")[0] if ":" in node.value else node.value
            if _DOTTED.fullmatch(text) and text.split(".")[1] in PACKAGES:  # not "tunesmith.db", a file name
                found.add(text)
    return {m for m in found if m.startswith("tunesmith.")}


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def layer_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def declared_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["tool"]["setuptools"]["packages"])


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_one_way(layer: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1]) | ({"prompts"} if layer == "agents" else set())
    bad = {}
    for path in layer_files(layer):
        wrong = sorted(m for m in imports_of(path) if m.split(".")[1] not in allowed)
        if wrong:
            bad[str(path.relative_to(ROOT))] = wrong
    assert not bad, f"{layer} may import only {sorted(allowed)}: {bad}"


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackages_exist_are_declared_and_checked(sub: str) -> None:
    folder = ROOT / sub
    assert (folder / "__init__.py").is_file(), f"{sub} is not a package"
    modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
    assert modules, f"{sub} holds no modules"
    assert module_name(folder / "__init__.py") in declared_packages(), f"{sub} missing from pyproject packages"
    scanned = set(layer_files(sub.split("/")[0]))
    assert set(folder.rglob("*.py")) <= scanned  # the layer rule above reads every file of the sub-package


def test_every_package_folder_is_declared() -> None:
    folders = {module_name(p) for layer in [*LAYERS, "prompts"] for p in (ROOT / layer).rglob("__init__.py")}
    missing = sorted(folders - declared_packages())
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


@pytest.mark.parametrize("layer", LAYERS)
def test_only_the_console_script_enters_the_front_ends(layer: str) -> None:
    inside = ROOT / "agents" / "frontends"
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imports_of(p) if m.startswith(FRONTENDS))
           for p in layer_files(layer) if inside not in p.parents}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"only the console script may import the front ends: {bad}"


def test_runners_never_import_the_front_ends() -> None:
    bad = [str(p.relative_to(ROOT)) for p in layer_files("runners")
           if any(m.startswith(FRONTENDS) or m.startswith("tunesmith.agents") for m in imports_of(p))]
    assert not bad, bad


def test_the_console_script_is_a_front_end() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["scripts"]["tune"].startswith(FRONTENDS + ".")


def test_the_checker_sees_every_import_form() -> None:
    source = "\n".join([
        "import tunesmith.kernels.timing",
        "from ...agents.frontends import cli",
        "from tunesmith.agents import frontends",
        "from . import command",
        "ENTRY = 'tunesmith.agents.frontends.live:LiveView'",
        "MODULE = 'tunesmith.knowledge.report'",
        "TEXT = 'see tunesmith.tools for more'",
        "DB = 'tunesmith.db'",
    ])
    found = imported_modules(source, "tunesmith.runners.io.example")
    assert {"tunesmith.kernels.timing", "tunesmith.agents.frontends.cli", "tunesmith.agents.frontends",
            "tunesmith.runners.io.command", "tunesmith.agents.frontends.live", "tunesmith.knowledge.report"} <= found
    assert "tunesmith.tools" not in found and "tunesmith.db" not in found  # prose and file names are not imports
    assert imported_modules("from .base import X", "tunesmith.tools.operations", is_package=True) == {
        "tunesmith.tools.operations.base", "tunesmith.tools.operations.base.X"}
