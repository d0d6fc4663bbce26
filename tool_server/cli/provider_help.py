"""The provider options `tool-server connect --help` lists, read from the registry.

Settings come from each provider's pydantic settings model (name, type, default,
description), secrets from its spec, so the help cannot drift from what `connect` accepts.
Only `connect --help` imports this (it loads every provider's SDK).
"""

from __future__ import annotations

import inspect
import json
import textwrap
import types
from collections.abc import Callable
from datetime import date
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from tool_server.providers import PROVIDERS, ProviderSpec

__all__ = ["providers_help"]

_WIDTH = 100
_INDENT = " " * 8


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        named = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(named)
    if origin is Literal:
        return "one of " + "|".join(str(arg) for arg in args)
    if origin in (list, tuple, set, frozenset):
        return f"JSON list of {_type_name(args[0])}" if args else "JSON list"
    if origin is dict:
        return "JSON object"
    names = {str: "text", int: "integer", float: "number", bool: "true|false", date: "YYYY-MM-DD"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str | None:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        factory: Callable[..., Any] = info.default_factory
        try:
            takes_values = bool(inspect.signature(factory).parameters)
        except ValueError:  # a builtin such as dict or list: no signature, no arguments
            takes_values = False
        if takes_values:
            return None  # derived from other values
        value = factory()
    else:
        value = info.default
    if value is None:
        return None
    return f"default: {value if isinstance(value, str) else json.dumps(value, default=str)}"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _entry(head: str, text: str) -> list[str]:
    lines = [f"      {head}"]
    if text:
        lines += textwrap.wrap(text, _WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT)
    return lines


def _provider(spec: ProviderSpec) -> list[str]:
    capabilities = ", ".join(sorted(spec.capabilities))
    lines = [f"  {spec.name} ({capabilities})"]
    lines += textwrap.wrap(spec.description, _WIDTH, initial_indent="    ", subsequent_indent="    ")
    if spec.secret_names:
        lines.append("    secrets (sealed; give - to read one from stdin, or use --env-file):")
        token_alone = spec.integration is not None and spec.integration.auth == "oauth"
        for name in spec.required_secrets:
            lines += _entry(f"{_option(name)}  required" + (" (or --access-token alone)" if token_alone else ""), "")
        for name in spec.optional_secrets:
            lines += _entry(f"{_option(name)}  optional", "")
    fields = spec.settings_model.model_fields
    if fields:
        lines.append("    settings:")
        for name, info in fields.items():
            default = _default(info)
            head = f"{_option(name)} <{_type_name(info.annotation)}>" + (f"  ({default})" if default else "")
            lines += _entry(head, info.description or "")
    return lines


def providers_help() -> str:
    """Every provider with its secrets and settings, as `connect --help` shows them."""
    lines = ["providers and their options (lists and objects take JSON, e.g. --closed-dates '[\"2026-12-25\"]'):"]
    for spec in PROVIDERS.values():
        lines.append("")
        lines += _provider(spec)
    return "\n".join(lines)
