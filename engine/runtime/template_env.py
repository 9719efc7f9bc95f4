"""Hugging Face's Jinja rules for chat templates: the sandboxed environment `apply_chat_template` renders with.

An immutable Jinja sandbox with trim_blocks and lstrip_blocks, the loop controls, `raise_exception`,
`strftime_now`, a `tojson` that does not escape HTML, a `{% generation %}` block that renders its
body, a `namespace()` that refuses "_" names and a `dict` that is not the type itself. Jinja only (no
llama.cpp): the template child (template_child.py) imports it, and nothing else compiles a template.
"""

from __future__ import annotations

import json
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError


def _raise_exception(message: str):
    """`raise_exception(...)` in a template: the template refuses these messages (HF raises TemplateError too)."""
    raise jinja2.TemplateError(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def _tojson(value, ensure_ascii: bool = False, indent=None, separators=None, sort_keys: bool = False) -> str:
    """Jinja's own tojson escapes <, >, & and ' for HTML; a prompt needs the plain JSON HF's filter writes."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class _GenerationBlock(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` marks the assistant's tokens for training; a prompt renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _SafeNamespace(jinja2.utils.Namespace):
    """`namespace()` that refuses attribute names starting with "_" (no way towards CPython internals), as HF's."""

    def __init__(*args, **kwargs):  # no named self, as in Jinja's Namespace: namespace(self=...) must work
        self, attrs = args[0], dict(*args[1:], **kwargs)
        for name in attrs:
            _SafeNamespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _SafeNamespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"a template may not set the namespace attribute {name!r}")


class _DictMaker:
    """`dict(...)` and `dict.fromkeys(...)` in a template, without handing it the `dict` type itself."""

    def __call__(self, *args, **kwargs) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args) -> dict:
        return dict.fromkeys(*args)


def chat_template_environment() -> ImmutableSandboxedEnvironment:
    """A Jinja environment with the rules of Hugging Face's `apply_chat_template` (see module doc)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now, dict=_DictMaker(),
                       namespace=_SafeNamespace)
    return env
