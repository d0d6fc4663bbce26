"""The emulator's reading of QuickBooks' query language (the subset the API documents for filtering).

`select * from <Entity> [where <cond> [and <cond>]…] [orderby <field> [asc|desc]]
[startposition <n>] [maxresults <n>]`, each condition `<field> <op> <value>` with `=`, `<`, `>`,
`<=`, `>=`, `!=`, `like` or `in (…)`. String literals are single-quoted; a backslash escapes the
next character (`'O\\'Brien'`). Anything else is a `QueryParserError`, as QuickBooks answers it.
Read character by character: no regular expressions over caller text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Condition", "Query", "QueryError", "matches", "parse"]

_OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
# QuickBooks' own maximum and default page sizes.
MAX_RESULTS, DEFAULT_RESULTS = 1000, 100


class QueryError(Exception):
    """A query QuickBooks would refuse: `code` 4000 (cannot parse) or 4001 (invalid field)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[Any, ...]


@dataclass
class Query:
    entity: str
    conditions: list[Condition] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    start: int = 1
    max_results: int = DEFAULT_RESULTS


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "op", "punct"
    text: str


def _tokens(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char.isspace():
            i += 1
        elif char == "'":
            i += 1
            chars: list[str] = []
            while True:
                if i >= len(sql):
                    raise QueryError("4000", "QueryParserError: unterminated string literal")
                if sql[i] == "\\" and i + 1 < len(sql):
                    chars.append(sql[i + 1])
                    i += 2
                elif sql[i] == "'":
                    i += 1
                    break
                else:
                    chars.append(sql[i])
                    i += 1
            tokens.append(_Token("string", "".join(chars)))
        elif char in "(),":
            tokens.append(_Token("punct", char))
            i += 1
        elif char in "<>=!":
            for op in _OPERATORS:
                if sql.startswith(op, i):
                    tokens.append(_Token("op", op))
                    i += len(op)
                    break
            else:
                raise QueryError("4000", f'QueryParserError: Encountered "{char}"')
        elif char.isalnum() or char in "_.*-":
            start = i
            while i < len(sql) and (sql[i].isalnum() or sql[i] in "_.*-"):
                i += 1
            tokens.append(_Token("word", sql[start:i]))
        else:
            raise QueryError("4000", f'QueryParserError: Encountered "{char}"')
    return tokens


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError("4000", 'QueryParserError: Encountered "<EOF>"')
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            found = self.peek()
            raise QueryError("4000", f'QueryParserError: Encountered "{found.text if found else "<EOF>"}"')


def _value(token: _Token) -> Any:
    if token.kind == "string":
        return token.text
    if token.kind == "word":
        lowered = token.text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        try:
            return Decimal(token.text)
        except InvalidOperation:
            pass
    raise QueryError("4000", f'QueryParserError: Encountered "{token.text}"')


def _integer(reader: _Reader) -> int:
    token = reader.take()
    if token.kind != "word" or not token.text.isdigit():
        raise QueryError("4000", f'QueryParserError: Encountered "{token.text}"')
    return int(token.text)


def parse(sql: str, fields: dict[str, dict[str, str]]) -> Query:
    """Parse `sql`; `fields` maps each entity to its filterable fields (name → path in the record)."""
    reader = _Reader(_tokens(sql))
    reader.expect("select")
    star = reader.take()
    if star.text != "*" and not star.text.lower().startswith("count"):
        raise QueryError("4000", f'QueryParserError: Encountered "{star.text}"')
    reader.expect("from")
    entity_token = reader.take()
    entity = next((name for name in fields if name.lower() == entity_token.text.lower()), None)
    if entity is None:
        raise QueryError("4001", f"QueryValidationError: Invalid entity {entity_token.text}")
    query = Query(entity)
    if reader.keyword("where"):
        while True:
            name = reader.take()
            known = next((f for f in fields[entity] if f.lower() == name.text.lower()), None)
            if known is None:
                raise QueryError("4001", f"QueryValidationError: property '{name.text}' is not queryable")
            if reader.keyword("in"):
                if reader.take().text != "(":
                    raise QueryError("4000", "QueryParserError: expected (")
                values: list[Any] = []
                while True:
                    values.append(_value(reader.take()))
                    closer = reader.take().text
                    if closer == ")":
                        break
                    if closer != ",":
                        raise QueryError("4000", f'QueryParserError: Encountered "{closer}"')
                query.conditions.append(Condition(known, "in", tuple(values)))
            elif reader.keyword("like"):
                query.conditions.append(Condition(known, "like", (_value(reader.take()),)))
            else:
                op = reader.take()
                if op.kind != "op":
                    raise QueryError("4000", f'QueryParserError: Encountered "{op.text}"')
                query.conditions.append(Condition(known, op.text, (_value(reader.take()),)))
            if not reader.keyword("and"):
                break
    if reader.keyword("orderby"):
        query.order_by = reader.take().text
        if reader.keyword("desc"):
            query.descending = True
        else:
            reader.keyword("asc")
    if reader.keyword("startposition"):
        query.start = max(1, _integer(reader))
    if reader.keyword("maxresults"):
        query.max_results = min(MAX_RESULTS, max(1, _integer(reader)))
    leftover = reader.peek()
    if leftover is not None:
        raise QueryError("4000", f'QueryParserError: Encountered "{leftover.text}"')
    return query


def _lookup(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if actual is None:
        return False
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return op == "=" and bool(actual) == wanted if isinstance(wanted, bool) else False
    try:
        left: Any = Decimal(str(actual))
        right: Any = Decimal(str(wanted))
    except InvalidOperation:
        # unconfirmed: QuickBooks compares strings without regard to case.
        left, right = str(actual).lower(), str(wanted).lower()
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)


def _like(actual: Any, pattern: Any) -> bool:
    if actual is None:
        return False
    text, parts = str(actual).lower(), str(pattern).lower().split("%")
    if len(parts) == 1:
        return text == parts[0]
    if not text.startswith(parts[0]) or not text.endswith(parts[-1]):
        return False
    at = len(parts[0])
    for middle in parts[1:-1]:
        found = text.find(middle, at)
        if found < 0:
            return False
        at = found + len(middle)
    return at <= len(text) - len(parts[-1])


def matches(record: dict[str, Any], query: Query, fields: dict[str, dict[str, str]]) -> bool:
    """Whether `record` meets every condition of `query`."""
    for condition in query.conditions:
        actual = _lookup(record, fields[query.entity][condition.field])
        if condition.op == "in":
            if not any(_compare(actual, "=", value) for value in condition.values):
                return False
        elif condition.op == "like":
            if not _like(actual, condition.values[0]):
                return False
        elif not _compare(actual, condition.op, condition.values[0]):
            return False
    return True
