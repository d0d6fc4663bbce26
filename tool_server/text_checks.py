"""Control characters in text from callers and platforms: refused where we define the shape, removed where we do not.

NUL cannot be stored by PostgreSQL (text or JSON), and no control character belongs in a name, a
phone number or an id. Our own inputs (tool arguments, `/v1/calls`) refuse them with the field
named (`control_character_problem`); free-text fields keep tab, newline and carriage return. A
voice platform's report cannot be corrected by the caller, so its text is cleaned instead
(`without_control_characters`), the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

__all__ = ["control_character_problem", "without_control_characters"]

_ALWAYS_REFUSED = frozenset(chr(code) for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_LINE_BREAKS = frozenset("\t\n\r\u2028\u2029")
_REMOVE = {ord(character): None for character in _ALWAYS_REFUSED}


def control_character_problem(value: str, *, free_text: bool) -> str | None:
    """Why `value` is refused for its characters, or None. Call it only on text of bounded length."""
    refused = _ALWAYS_REFUSED if free_text else _ALWAYS_REFUSED | _LINE_BREAKS
    for position, character in enumerate(value):
        if character in refused:
            kind = "a NUL character" if character == "\x00" else f"the control character U+{ord(character):04X}"
            where = "" if free_text else " (this field is one line of text)"
            return f"contains {kind} at position {position}{where}"
    return None


def without_control_characters(value: Any) -> Any:
    """A copy of parsed JSON with the control characters (but tab, newline, CR) removed from every string and key.

    Walks iteratively, so JSON nested as deeply as the parser allowed cannot exhaust the stack.
    """
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, slot, node = stack.pop()
        if isinstance(node, str):
            parent[slot] = node.translate(_REMOVE)
        elif isinstance(node, dict):
            copy: dict[str, Any] = {}
            for key, child in node.items():
                cleaned_key = key.translate(_REMOVE) if isinstance(key, str) else key
                copy[cleaned_key] = child
                stack.append((copy, cleaned_key, child))
            parent[slot] = copy
        elif isinstance(node, list):
            items = list(node)
            for index, child in enumerate(items):
                stack.append((items, index, child))
            parent[slot] = items
    return root[0]
