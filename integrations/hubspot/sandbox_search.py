"""The emulator's CRM search: HubSpot's filter groups, operators, free-text query and sorts.

Filter groups are OR'd and the filters inside a group AND'd. String comparisons ignore case, as
HubSpot's do; date properties compare as epoch milliseconds, the form filters give them in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from integrations.common.linear_regex import compile_linear
from integrations.hubspot.sandbox_records import SPACE_CHARACTERS

__all__ = ["MAX_FILTERS", "MAX_GROUPS", "SearchRequestError", "matches", "order", "sort_key", "sorts_of", "validate"]

# Since 2024-08-26: up to 5 filter groups and 25 filters in all per search.
MAX_GROUPS = 5
MAX_FILTERS = 25
# Free-text `query` looks at these, as HubSpot's default searchable contact properties do.
_QUERY_PROPERTIES = ("firstname", "lastname", "email", "phone", "mobilephone", "company")
_TOKEN_SPLIT = compile_linear(rf"[{SPACE_CHARACTERS},;]+")


class SearchRequestError(ValueError):
    """A search body HubSpot would refuse with 400 VALIDATION_ERROR."""


def _value(filt: Mapping[str, Any]) -> str:
    if "value" not in filt or filt["value"] is None:
        raise SearchRequestError(
            f"Filter on {filt.get('propertyName')} with operator {filt.get('operator')} needs a value"
        )
    return str(filt["value"])


def _values(filt: Mapping[str, Any]) -> list[str]:
    values = filt.get("values")
    if not isinstance(values, list) or not values:
        raise SearchRequestError(
            f"Filter on {filt.get('propertyName')} with operator {filt.get('operator')} needs values"
        )
    return [str(v).lower() for v in values]


def _number(text: str) -> float | None:
    """A comparable number: numeric text, or an ISO timestamp as epoch milliseconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp() * 1000
    except ValueError:
        return None


def _compare(stored: str | None, other: str, test: Callable[[float, float], bool]) -> bool:
    if stored is None:
        return False
    left, right = _number(stored), _number(other)
    if left is not None and right is not None:
        return test(left, right)
    return test(float(stored.lower() > other.lower()) - float(stored.lower() < other.lower()), 0.0)


def _wildcard_matches(text: str, pattern: str) -> bool:
    """HubSpot's token wildcard: `*` stands for any run of characters, and nothing else is special.

    Matched without a regex (fnmatch's would run on `re`): the parts between stars must appear in
    order, the first at the start and the last at the end; taking each part's first occurrence
    is enough.
    """
    if "*" not in pattern:
        return text == pattern
    first, *middle, last = pattern.split("*")
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def _has_token(stored: str | None, pattern: str) -> bool:
    if not stored:
        return False
    pattern = pattern.lower()
    candidates = [stored.lower(), *_TOKEN_SPLIT.split(stored.lower())]
    return any(_wildcard_matches(candidate, pattern) for candidate in candidates)


def _filter_matches(props: Mapping[str, str], filt: Mapping[str, Any]) -> bool:
    name = str(filt.get("propertyName", ""))
    operator = filt.get("operator")
    stored = props.get(name) or None
    low = stored.lower() if stored else None
    if operator == "EQ":
        return low == _value(filt).lower()
    if operator == "NEQ":
        return low != _value(filt).lower()
    if operator == "IN":
        return low in _values(filt)
    if operator == "NOT_IN":
        return low not in _values(filt)
    if operator == "HAS_PROPERTY":
        return stored is not None
    if operator == "NOT_HAS_PROPERTY":
        return stored is None
    if operator == "CONTAINS_TOKEN":
        return _has_token(stored, _value(filt))
    if operator == "NOT_CONTAINS_TOKEN":
        return not _has_token(stored, _value(filt))
    if operator == "GT":
        return _compare(stored, _value(filt), lambda a, b: a > b)
    if operator == "GTE":
        return _compare(stored, _value(filt), lambda a, b: a >= b)
    if operator == "LT":
        return _compare(stored, _value(filt), lambda a, b: a < b)
    if operator == "LTE":
        return _compare(stored, _value(filt), lambda a, b: a <= b)
    if operator == "BETWEEN":
        high = filt.get("highValue")
        if high is None:
            raise SearchRequestError(f"BETWEEN filter on {name} needs a highValue")
        low_value = _value(filt)
        return _compare(stored, low_value, lambda a, b: a >= b) and _compare(stored, str(high), lambda a, b: a <= b)
    raise SearchRequestError(f"Unknown filter operator {operator!r}")


def validate(body: Any) -> None:
    """Raise `SearchRequestError` for a body HubSpot would refuse."""
    if not isinstance(body, dict):
        raise SearchRequestError("Invalid input JSON: expected an object")
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise SearchRequestError(f"Too many filter groups: at most {MAX_GROUPS} are allowed")
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchRequestError("Each filter group needs a filters array")
        total += len(filters)
        for filt in filters:
            if not isinstance(filt, dict) or not filt.get("propertyName") or not filt.get("operator"):
                raise SearchRequestError("Each filter needs a propertyName and an operator")
            # Evaluate once against nothing to surface missing values and unknown operators.
            _filter_matches({}, filt)
    if total > MAX_FILTERS:
        raise SearchRequestError(f"Too many filters: at most {MAX_FILTERS} are allowed in one search")


def matches(props: Mapping[str, str], body: Mapping[str, Any]) -> bool:
    """Whether an object's properties satisfy the search's filter groups and query."""
    groups: list[dict[str, Any]] = body.get("filterGroups") or []
    if groups and not any(all(_filter_matches(props, f) for f in g["filters"]) for g in groups):
        return False
    query = str(body.get("query") or "").strip().lower()
    if query:
        return any(query in (props.get(name) or "").lower() for name in _QUERY_PROPERTIES)
    return True


def sorts_of(body: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(property, descending) pairs from `sorts`: "name", "-name", or {propertyName, direction}."""
    result: list[tuple[str, bool]] = []
    for entry in body.get("sorts") or []:
        if isinstance(entry, str) and entry:
            result.append((entry.lstrip("-"), entry.startswith("-")))
        elif isinstance(entry, dict) and entry.get("propertyName"):
            result.append((str(entry["propertyName"]), str(entry.get("direction", "")).upper() == "DESCENDING"))
    return result


def sort_key(props: Mapping[str, str], name: str) -> tuple[int, float, str]:
    """A key ordering values numerically when they are numbers or dates, else as text; unset last."""
    stored = props.get(name)
    if not stored:
        return (1, 0.0, "")
    number = _number(stored)
    return (0, number, "") if number is not None else (0, 0.0, stored.lower())


def order(
    objects: Sequence[Any], sorts: list[tuple[str, bool]], props_of: Callable[[Any], Mapping[str, str]]
) -> list[Any]:
    """Objects in HubSpot's default order (by id), then by each sort, the first sort winning."""
    ordered = list(objects)
    for name, descending in reversed(sorts):
        ordered.sort(key=lambda obj: sort_key(props_of(obj), name), reverse=descending)
    return ordered
