"""SOSL and SOQL text built from what a caller said, with every value escaped.

Nothing a caller says reaches a query unescaped:

- SOSL search terms (`FIND {…}`): Salesforce's reserved characters `? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -`
  each get a backslash, so `} OR {` or `*` is searched for literally instead of ending the term
  or acting as a wildcard;
- SOQL string literals (`'…'`): backslash, quote and the control escapes Salesforce defines
  (`\\n \\r \\t \\b \\f \\"`), so `' OR Name LIKE '%` stays inside the literal. The queries compare
  with `=`, where `%` and `_` are plain characters; `soql_like` escapes them for a LIKE pattern.

Docs: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_find.htm
and …/sforce_api_calls_soql_select_quotedstringescapes.htm
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = [
    "SOSL_RESERVED",
    "soql_datetime",
    "soql_like",
    "soql_select",
    "soql_string",
    "sosl_search",
    "sosl_term",
]

SOSL_RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
_SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def sosl_term(text: str) -> str:
    """One SOSL search word, every reserved character backslash-escaped."""
    return "".join(f"\\{character}" if character in SOSL_RESERVED else character for character in text)


def soql_string(text: str) -> str:
    """A SOQL string literal, quotes included."""
    return "'" + "".join(_SOQL_ESCAPES.get(character, character) for character in text) + "'"


def soql_like(text: str) -> str:
    """A SOQL LIKE literal matching `text` exactly: `%` and `_` escaped too."""
    inner = soql_string(text)[1:-1].replace("%", "\\%").replace("_", "\\_")
    return f"'{inner}'"


def soql_datetime(when: datetime) -> str:
    """A SOQL dateTime literal (unquoted), UTC: 2026-03-04T15:00:00Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sosl_search(words: Iterable[str], scope: str, returning: Sequence[tuple[str, Sequence[str]]]) -> str:
    """`FIND {w1 OR w2} IN <scope> FIELDS RETURNING Obj(f, …), …`; words are escaped here.

    Words are quoted phrases: a typed email such as `jane.doe@example.com` is one term.
    """
    terms = " OR ".join(f'"{sosl_term(word)}"' for word in words)
    objects = ", ".join(f"{name}({', '.join(fields)})" for name, fields in returning)
    return f"FIND {{{terms}}} IN {scope} FIELDS RETURNING {objects}"


def soql_select(fields: Sequence[str], sobject: str, where: str, *, order_by: str | None = None, limit: int) -> str:
    """`SELECT … FROM … WHERE …` with a caller-built (already escaped) WHERE clause."""
    query = f"SELECT {', '.join(fields)} FROM {sobject} WHERE {where}"
    if order_by:
        query += f" ORDER BY {order_by}"
    return f"{query} LIMIT {limit}"
