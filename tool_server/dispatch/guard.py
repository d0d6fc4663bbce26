"""The first look at a tool call's arguments: sizes, shapes and characters, before anything reads them.

A caller controls every byte of the arguments, and some work grows with their size (redaction,
phone and email parsing, the audit log). So before validation, and without scanning any value:

- an argument the tool does not have is refused by its name alone;
- a string longer than its field allows is refused by its length alone;
- an object or a list where the tool takes a scalar is refused by its type alone, and so is
  true or false where it takes a number (lax validation would read true as 1);
- where a tool takes an object (template variables, workflow data), only a flat one: at most
  its declared number of entries, short keys, and scalar values within their length.

Then, on values now known to be short, control characters are refused: NUL and the other C0
controls everywhere, except tab, newline and carriage return in the free-text fields a tool
names in `ToolInput.free_text_fields` (notes, message bodies). Nothing is stripped silently, so
the field at fault is named and SQLite and PostgreSQL see the same thing (PostgreSQL refuses NUL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tool_server.dispatch.translate import Problem
from tool_server.text_checks import control_character_problem
from tool_server.tools.base import ToolInput, ToolSpec
from tool_server.tools.schema import llm_input_schema

__all__ = ["MAX_ARGUMENTS", "screen_arguments", "shown_name"]

# A scalar that is not a string (a number, a boolean) never needs more characters than this.
_SCALAR_TEXT_LIMIT = 64
MAX_ARGUMENTS = 64
_NAME_SHOWN = 64


@dataclass(frozen=True)
class _FieldLimit:
    kind: str
    max_length: int
    free_text: bool
    # For objects: how many entries, and how long each string value may be.
    max_properties: int = 0
    value_max_length: int = 0
    # For lists: how many items, and each item's own limits (an object's by property name).
    max_items: int = 0
    item_limits: dict[str, _FieldLimit] | None = None


# An object argument's keys are names, never text.
_KEY_LIMIT = _FieldLimit(kind="string", max_length=64, free_text=False)


_LIMITS: dict[type[ToolInput], dict[str, _FieldLimit]] = {}


def _limits(model: type[ToolInput]) -> dict[str, _FieldLimit]:
    known = _LIMITS.get(model)
    if known is None:
        known = _LIMITS[model] = _read_limits(model)
    return known


def _read_limits(model: type[ToolInput]) -> dict[str, _FieldLimit]:
    properties: dict[str, Any] = llm_input_schema(model)["properties"]
    free_text = model.free_text_fields
    return {
        name: _FieldLimit(
            kind=str(prop.get("type", "string")),
            max_length=int(prop.get("maxLength", _SCALAR_TEXT_LIMIT)),
            free_text=name in free_text,
            max_properties=int(prop.get("maxProperties", 0)),
            value_max_length=_value_max_length(prop),
            max_items=int(prop.get("maxItems", 0)),
            item_limits=_item_limits(prop),
        )
        for name, prop in properties.items()
    }


def _item_limits(prop: dict[str, Any]) -> dict[str, _FieldLimit] | None:
    """A list of objects' per-property limits (None for anything else)."""
    items = prop.get("items")
    if prop.get("type") != "array" or not isinstance(items, dict) or items.get("type") != "object":
        return None
    return {
        name: _FieldLimit(
            kind=str(item.get("type", "string")),
            max_length=int(item.get("maxLength", _SCALAR_TEXT_LIMIT)),
            free_text=False,
        )
        for name, item in items.get("properties", {}).items()
    }


def _value_max_length(prop: dict[str, Any]) -> int:
    values = prop.get("additionalProperties")
    if not isinstance(values, dict):
        return 0
    lengths = [int(option["maxLength"]) for option in values.get("anyOf", [values]) if "maxLength" in option]
    return max(lengths, default=_SCALAR_TEXT_LIMIT)


def shown_name(name: object) -> str:
    """An argument name as error messages show it: printable and at most 64 characters."""
    text = name if isinstance(name, str) else repr(name)
    cleaned = "".join(character if character.isprintable() else "?" for character in text[:_NAME_SHOWN])
    return cleaned + ("…" if len(text) > _NAME_SHOWN else "")


def screen_arguments(spec: ToolSpec[Any, Any], arguments: dict[str, Any]) -> tuple[list[Problem], dict[str, Any]]:
    """The problems found without reading any value, and the arguments that are safe to validate.

    Each refused argument is left out of the second dict, so validation never touches it.
    """
    if len(arguments) > MAX_ARGUMENTS:
        message = f"{len(arguments)} arguments given; this tool takes at most {MAX_ARGUMENTS}"
        return [{"field": "arguments", "type": "too_many_arguments", "message": message}], {}
    limits = _limits(spec.input_model)
    problems: list[Problem] = []
    safe: dict[str, Any] = {}
    for name, value in arguments.items():
        limit = limits.get(name)
        if limit is None:
            field = shown_name(name)
            message = f"{field} is not an argument of this tool; it takes {', '.join(limits)}"
            problems.append({"field": field, "type": "extra_forbidden", "message": message})
            continue
        refused = _value_problem(limit, value)
        if refused is None:
            safe[name] = value
        else:
            kind, reason = refused
            problems.append({"field": name, "type": kind, "message": f"{name}: {reason}"})
    return problems, safe


def _value_problem(limit: _FieldLimit, value: Any) -> tuple[str, str] | None:
    if limit.kind == "object" and isinstance(value, dict):
        return _object_problem(limit, value)
    if limit.kind == "array" and isinstance(value, list) and limit.item_limits is not None:
        return _list_problem(limit, limit.item_limits, value)
    if isinstance(value, bool) and limit.kind in ("integer", "number"):
        # Lax validation would read true as 1; a count or an amount is never a yes/no.
        return "int_type", "must be a number, not true or false"
    if isinstance(value, dict | list):
        given = "an object" if isinstance(value, dict) else "a list"
        return f"{limit.kind}_type", f"must be a {limit.kind}, not {given}"
    if isinstance(value, str):
        if len(value) > limit.max_length:
            return "string_too_long", f"is {len(value)} characters long; at most {limit.max_length} are allowed"
        problem = control_character_problem(value, free_text=limit.free_text)
        if problem is not None:
            return "control_character", problem
    return None


def _object_problem(limit: _FieldLimit, value: dict[Any, Any]) -> tuple[str, str] | None:
    """A flat object within its limits: counted first, then each key and value by type and length."""
    if len(value) > limit.max_properties:
        return "too_long", f"has {len(value)} entries; at most {limit.max_properties} are allowed"
    # Values may span lines (a transcript, a note); other control characters are refused as anywhere.
    entry_limit = _FieldLimit(kind="string", max_length=limit.value_max_length, free_text=True)
    for key, entry in value.items():
        refused = _value_problem(_KEY_LIMIT, key) if isinstance(key, str) else ("string_type", "keys are names")
        if refused is not None:
            return refused[0], f"key {shown_name(key)!r}: {refused[1]}"
        if isinstance(entry, dict | list):
            return "object_type", f"{shown_name(key)} must be text, a number or true/false, not nested data"
        refused = _value_problem(entry_limit, entry)
        if refused is not None:
            return refused[0], f"{shown_name(key)} {refused[1]}"
    return None


def _list_problem(limit: _FieldLimit, fields: dict[str, _FieldLimit], value: list[Any]) -> tuple[str, str] | None:
    """A list of small flat objects: counted first, then each item's properties by name, type and length."""
    if len(value) > limit.max_items:
        return "too_long", f"has {len(value)} items; at most {limit.max_items} are allowed"
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            return "model_type", f"item {index} must be an object"
        for key, entry in item.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is None:
                return (
                    "extra_forbidden",
                    f"item {index}: {shown_name(key)} is not a property; it takes {', '.join(fields)}",
                )
            if isinstance(entry, dict | list):
                return f"{field.kind}_type", f"item {index}: {key} must be a {field.kind}, not nested data"
            refused = _value_problem(field, entry)
            if refused is not None:
                return refused[0], f"item {index}: {key} {refused[1]}"
    return None
