"""The project's problem set in KernelBench format, each with a small shape for the Triton interpreter.

Every ``<name>.py`` here defines ``class Model(nn.Module)``, ``get_inputs()``, ``get_init_inputs()`` and
``get_small_inputs()`` (the same ranks as ``get_inputs()``, with shapes small enough for the interpreter).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def list_problems() -> list[Path]:
    """The problem files of the set, sorted by name."""
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))
