"""The report's one Jinja2 environment: templates from ``templates/``, every value escaped
(autoescape), an unknown name an error (``StrictUndefined``). The stylesheet and scripts in
``static/`` are inlined by the templates, so the report stays one self-contained file.

Text from a run only reaches the page through a template, which escapes it. JSON for the
browsers goes through the ``script_json`` filter, the one place that marks run data as safe;
the only other ``Markup`` is the package's own CSS and JS (:func:`static`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` are written as
    ``\\u`` escapes, so no text can close the element (and ``ensure_ascii`` writes U+2028,
    U+2029 and lone surrogates as escapes too)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script_json(value: Any) -> Markup:
    return Markup(for_script(value))  # the only data marked safe: escaped for <script> above


@cache
def static(name: str) -> Markup:
    """A file of ``static/`` (the package's own CSS or JS, not run data), to inline."""
    return Markup(files("criticlab.report").joinpath("static", name).read_text("utf-8"))


@cache
def env() -> Environment:
    e = Environment(loader=PackageLoader("criticlab.report", "templates"), autoescape=True,
                    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    e.filters.update(script_json=_script_json, f1=lambda v: f"{v:.1f}",
                     pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False))
    e.globals["static"] = static
    return e


def render(template: str, **context: Any) -> str:
    return env().get_template(template).render(**context)


def macro(template: str, name: str) -> Callable[..., Markup]:
    """A macro of a template, to call from Python; it returns ``Markup``."""
    return getattr(env().get_template(template).module, name)
