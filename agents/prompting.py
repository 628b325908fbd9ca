"""Prompt templates live in tunesmith.prompts as Jinja2 files; this renders them."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import jinja2


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("tunesmith.prompts").joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(name: str, **context: object) -> str:
    """Render ``prompts/<name>`` with ``context``; a missing variable is an error, not an empty string."""
    return _env().get_template(name).render(**context)
