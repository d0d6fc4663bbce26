"""The emulator's advanced contact search (`POST /contacts/search`): filters, groups, free text, pages.

Filters are `{field, operator, value}`; `{group: "AND"|"OR", filters: [...]}` nests them; the
top-level list is AND'd. Operators: eq, not_eq, contains, not_contains, exists, not_exists
(3P: HighLevel's "Search Contacts" guide; values at most 75 characters, pages of at most 500).
Strings compare without regard to case, except that `phone` compares the stored text exactly
(UNCONFIRMED: the real search index may normalize phones; the emulator does not, on purpose).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.gohighlevel.sandbox_state import GhlError

__all__ = ["MAX_PAGE", "matches", "search_item", "validate"]

MAX_PAGE = 500
_MAX_VALUE = 75
_OPERATORS = frozenset({"eq", "not_eq", "contains", "not_contains", "exists", "not_exists"})
# Free text looks at these.
_QUERY_FIELDS = ("fullNameLowerCase", "emailLowerCase", "phone", "companyName")
_FIELD_ALIASES = {"email": "emailLowerCase", "firstName": "firstNameLowerCase", "lastName": "lastNameLowerCase"}


def _invalid(message: str) -> GhlError:
    return GhlError(422, [message], error="Unprocessable Entity")


def validate(body: Any) -> tuple[int, int, list[Any], str | None]:
    """(page, pageLimit, filters, query) of a search body, or GoHighLevel's 422."""
    if not isinstance(body, dict):
        raise _invalid("body must be an object")
    if not isinstance(body.get("locationId"), str) or not body["locationId"]:
        raise _invalid("locationId must be a string")
    limit = body.get("pageLimit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise _invalid(f"pageLimit must be an integer between 1 and {MAX_PAGE}")
    page = body.get("page", 1)
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise _invalid("page must be a positive integer")
    filters = body.get("filters", [])
    if not isinstance(filters, list):
        raise _invalid("filters must be an array")
    for filt in filters:
        _check_filter(filt)
    query = body.get("query")
    if query is not None and (not isinstance(query, str) or len(query) > _MAX_VALUE):
        raise _invalid(f"query must be a string of at most {_MAX_VALUE} characters")
    return page, limit, filters, query


def _check_filter(filt: Any) -> None:
    if not isinstance(filt, dict):
        raise _invalid("each filter must be an object")
    if "group" in filt:
        if filt["group"] not in ("AND", "OR") or not isinstance(filt.get("filters"), list):
            raise _invalid("a filter group needs group AND or OR and a filters array")
        for inner in filt["filters"]:
            _check_filter(inner)
        return
    if not isinstance(filt.get("field"), str) or filt.get("operator") not in _OPERATORS:
        raise _invalid(f"filter operator must be one of {', '.join(sorted(_OPERATORS))}")
    if filt["operator"] not in ("exists", "not_exists"):
        value = filt.get("value")
        if value is None or len(str(value)) > _MAX_VALUE:
            raise _invalid(f"filter value is required and at most {_MAX_VALUE} characters")


def _stored(contact: Mapping[str, Any], field: str) -> str | None:
    value = contact.get(_FIELD_ALIASES.get(field, field))
    return None if value is None or value == "" else str(value)


def _one(contact: Mapping[str, Any], filt: Mapping[str, Any]) -> bool:
    if "group" in filt:
        results = [_one(contact, inner) for inner in filt["filters"]]
        return any(results) if filt["group"] == "OR" else all(results)
    field, operator = str(filt["field"]), str(filt["operator"])
    stored = _stored(contact, field)
    if operator == "exists":
        return stored is not None
    if operator == "not_exists":
        return stored is None
    wanted = str(filt["value"])
    if field != "phone":
        stored, wanted = (stored.lower() if stored is not None else None), wanted.lower()
    if operator == "eq":
        return stored == wanted
    if operator == "not_eq":
        return stored != wanted
    if operator == "contains":
        return stored is not None and wanted in stored
    return stored is None or wanted not in stored


def matches(contact: Mapping[str, Any], filters: list[Any], query: str | None) -> bool:
    if query and not any(query.lower() in (str(contact.get(f) or "")).lower() for f in _QUERY_FIELDS):
        return False
    return all(_one(contact, filt) for filt in filters)


def search_item(contact: Mapping[str, Any]) -> dict[str, Any]:
    """A contact as the search lists it (3P field list: lower-cased names, no firstName/lastName)."""
    keys = (
        "id",
        "locationId",
        "firstNameLowerCase",
        "lastNameLowerCase",
        "email",
        "phone",
        "companyName",
        "country",
        "source",
        "type",
        "dnd",
        "tags",
        "customFields",
        "dateAdded",
        "dateUpdated",
    )
    item = {k: contact[k] for k in keys if k in contact}
    item.setdefault("additionalEmails", [])
    item.setdefault("additionalPhones", [])
    return item
