"""Reading JSON that a caller or a platform sent: every failure is a value, never an exception.

`json.loads` raises ValueError for bad JSON and RecursionError for nesting deeper than the
interpreter's recursion limit (a megabyte of `[` is enough). Both mean "not JSON we can use".
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["NOT_JSON", "loads_or_not_json"]


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Any = _NotJson()


def loads_or_not_json(text: str | bytes) -> Any:
    """The parsed value, or `NOT_JSON` when `text` is not JSON (malformed, not UTF-8, too deeply nested)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return NOT_JSON
