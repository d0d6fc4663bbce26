"""The emulator's SOQL and SOSL: a small parser for the subset the connector sends, on RE2.

It parses what it receives, the way Salesforce does, so a query built with a caller's text left
unescaped fails here as it would there (400 MALFORMED_QUERY / MALFORMED_SEARCH, or INVALID_FIELD
for a name that is not a field), or widens the match the way injected SOQL would.

SOQL: `SELECT f, … FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC]] [LIMIT n]`; a condition is
comparisons (`= != < <= > >= LIKE`) on string, date, dateTime, number, boolean and null
literals, joined by AND or OR, with parentheses (mixing AND and OR without them is an error, as
in Salesforce). String `=` is case-insensitive; LIKE knows `%`, `_` and their escapes.

SOSL: `FIND {term} IN (ALL|NAME|EMAIL|PHONE) FIELDS RETURNING Obj(f, …)[, …] [LIMIT n]`; the term
is words or "quoted phrases" joined by OR, every reserved character escaped with a backslash.
PHONE FIELDS compares digits only (the emulator's model of Salesforce's phone normalization: a
term matches a stored phone with exactly the same digits; whether Salesforce also matches with or
without a country code is UNCONFIRMED, so the emulator does not). EMAIL FIELDS compares whole
emails, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from integrations.common.linear_regex import compile_linear

__all__ = ["QueryError", "Soql", "Sosl", "parse_soql", "parse_sosl", "run_soql", "run_sosl"]

Record = Mapping[str, Any]

_TOKEN = compile_linear(
    r"\s*(?:"
    r"'((?:[^'\\]|\\.)*)'"  # 1 string literal
    r"|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))"  # 2 dateTime literal
    r"|(\d{4}-\d{2}-\d{2})"  # 3 date literal
    r"|(-?\d+(?:\.\d+)?)"  # 4 number
    r"|([A-Za-z_][A-Za-z0-9_]*)"  # 5 word
    r"|(!=|<=|>=|=|<|>|,|\(|\))"  # 6 symbol
    r")"
)
_SPACE = compile_linear(r"\s*")
_SOQL_UNESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_SOSL = compile_linear(
    r"^\s*(?i:FIND)\s*\{((?:[^{}\\]|\\.)*)\}\s*(?i:IN)\s+(?i:(ALL|NAME|EMAIL|PHONE))\s+(?i:FIELDS)"
    r"\s+(?i:RETURNING)\s+(.*?)\s*(?:(?i:LIMIT)\s+(\d+))?\s*$"
)
_RETURNING = compile_linear(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*([^()]*)\)\s*(,|$)")
_FIELD = compile_linear(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOSL_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")


class QueryError(Exception):
    """A query Salesforce would refuse: `code` is its errorCode (MALFORMED_QUERY, INVALID_FIELD, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "datetime", "date", "number", "word", "symbol"
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    kinds = ("string", "datetime", "date", "number", "word", "symbol")
    found: list[_Token] = []
    position = 0
    while True:
        space = _SPACE.match(text, position)
        position = space.end() if space else position
        if position >= len(text):
            return found
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError("MALFORMED_QUERY", f"unexpected token at character {position + 1}")
        for index, kind in enumerate(kinds, start=1):
            value = match.group(index)
            if value is not None:
                found.append(_Token(kind, value, position))
                break
        position = match.end()


def _unescape_soql(text: str, *, like: bool = False) -> str:
    """A string literal's value; for LIKE, an RE2 pattern (`%`, `_` wildcards; `\\%`, `\\_` literal)."""
    out: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == "\\":
            following = next(characters, "")
            if following in _SOQL_UNESCAPES:
                value = _SOQL_UNESCAPES[following]
            elif following in ("%", "_") and like:
                value = following
            else:
                raise QueryError("MALFORMED_QUERY", f"invalid escape sequence \\{following}")
            out.append(_literal(value) if like else value)
        elif like and character == "%":
            out.append(".*")
        elif like and character == "_":
            out.append(".")
        else:
            out.append(_literal(character) if like else character)
    return "".join(out)


def _literal(character: str) -> str:
    return character if character.isalnum() else f"\\x{{{ord(character):x}}}"


# A condition: (field, operator, value) or ("AND"|"OR", [conditions]).
Condition = tuple[str, Any, Any]


@dataclass(frozen=True)
class Soql:
    fields: tuple[str, ...]
    sobject: str
    where: Condition | None
    order_by: tuple[str, bool] | None  # (field, descending)
    limit: int | None


class _SoqlParser:
    def __init__(self, text: str, fields_of: Callable[[str], frozenset[str] | None]) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.fields_of = fields_of
        self.known: frozenset[str] = frozenset()
        self.sobject = ""

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError("MALFORMED_QUERY", "unexpected end of query")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() == word:
            self.position += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.keyword(word):
            token = self.peek()
            found = f"'{token.text}'" if token else "end of query"
            raise QueryError("MALFORMED_QUERY", f"expected {word}, found {found}")

    def field(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
        if self.known and token.text.lower() not in self.known:
            raise QueryError("INVALID_FIELD", f"No such column '{token.text}' on entity '{self.sobject}'.")
        return token.text

    def parse(self) -> Soql:
        self.expect("SELECT")
        names = [self.take()]
        while (comma := self.peek()) is not None and comma.kind == "symbol" and comma.text == ",":
            self.position += 1
            names.append(self.take())
        self.expect("FROM")
        target = self.take()
        known = self.fields_of(target.text) if target.kind == "word" else None
        if known is None:
            raise QueryError("INVALID_TYPE", f"sObject type '{target.text}' is not supported.")
        self.sobject, self.known = target.text, frozenset(name.lower() for name in known)
        for name in names:
            if name.kind != "word":
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{name.text}'")
            if name.text.lower() not in self.known:
                raise QueryError("INVALID_FIELD", f"No such column '{name.text}' on entity '{self.sobject}'.")
        where = self.condition() if self.keyword("WHERE") else None
        order_by = None
        if self.keyword("ORDER"):
            self.expect("BY")
            field = self.field()
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
            order_by = (field, descending)
        limit = None
        if self.keyword("LIMIT"):
            token = self.take()
            if token.kind != "number" or not token.text.isdigit():
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")
            limit = int(token.text)
        extra = self.peek()
        if extra is not None:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{extra.text}'")
        return Soql(tuple(n.text for n in names), self.sobject, where, order_by, limit)

    def condition(self) -> Condition:
        parts = [self.simple()]
        joiner: str | None = None
        while True:
            token = self.peek()
            if token is None or token.kind != "word" or token.text.upper() not in ("AND", "OR"):
                break
            word = token.text.upper()
            if joiner is not None and word != joiner:
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{token.text}' (use parentheses)")
            joiner = word
            self.position += 1
            parts.append(self.simple())
        return parts[0] if joiner is None else (joiner, parts, None)

    def simple(self) -> Condition:
        token = self.peek()
        if token is not None and token.kind == "symbol" and token.text == "(":
            self.position += 1
            inner = self.condition()
            closing = self.take()
            if closing.text != ")":
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{closing.text}'")
            return inner
        field = self.field()
        operator = self.take()
        if operator.kind == "word" and operator.text.upper() == "LIKE":
            op = "LIKE"
        elif operator.kind == "symbol" and operator.text in ("=", "!=", "<", "<=", ">", ">="):
            op = operator.text
        else:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{operator.text}'")
        return (field, op, self.value(op))

    def value(self, op: str) -> Any:
        token = self.take()
        if token.kind == "string":
            return _unescape_soql(token.text, like=op == "LIKE")
        if op == "LIKE":
            raise QueryError("MALFORMED_QUERY", "LIKE needs a string literal")
        if token.kind == "datetime":
            return datetime.fromisoformat(token.text.replace("Z", "+00:00"))
        if token.kind == "date":
            return date.fromisoformat(token.text)
        if token.kind == "number":
            return float(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text.lower()]
        raise QueryError("MALFORMED_QUERY", f"unexpected token: '{token.text}'")


def parse_soql(text: str, fields_of: Callable[[str], frozenset[str] | None]) -> Soql:
    """The parsed query; `fields_of(sobject)` is the object's field names, None for an unknown object."""
    return _SoqlParser(text, fields_of).parse()


def _field_value(record: Record, field: str) -> Any:
    for key, value in record.items():
        if key.lower() == field.lower():
            return value
    return None


def _comparable(stored: Any, wanted: Any) -> tuple[Any, Any] | None:
    if stored is None or wanted is None:
        return None
    if isinstance(wanted, datetime):
        parsed = _datetime(stored)
        return (parsed, wanted) if parsed is not None else None
    if isinstance(wanted, date):
        try:
            return date.fromisoformat(str(stored)[:10]), wanted
        except ValueError:
            return None
    if isinstance(wanted, float):
        try:
            return float(stored), wanted
        except (TypeError, ValueError):
            return None
    if isinstance(wanted, bool):
        return bool(stored), wanted
    return str(stored).lower(), str(wanted).lower()


def _datetime(value: Any) -> datetime | None:
    try:
        parsed = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def _holds(record: Record, condition: Condition) -> bool:
    head, middle, tail = condition
    if head in ("AND", "OR") and isinstance(middle, list):
        results = (_holds(record, part) for part in middle)
        return all(results) if head == "AND" else any(results)
    stored = _field_value(record, head)
    if middle in ("=", "!="):
        if tail is None or stored in (None, ""):
            same = tail is None and stored in (None, "")
        else:
            pair = _comparable(stored, tail)
            same = pair is not None and pair[0] == pair[1]
        return same if middle == "=" else not same
    if middle == "LIKE":
        if stored is None:
            return False
        return compile_linear(f"^(?s:{tail})$", ignore_case=True).match(str(stored)) is not None
    pair = _comparable(stored, tail)
    if pair is None:
        return False
    left, right = pair
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[middle])


def run_soql(query: Soql, records: Sequence[Record]) -> list[Record]:
    """The records the query selects, ordered and limited (every field returned; the caller projects)."""
    selected = [record for record in records if query.where is None or _holds(record, query.where)]
    if query.order_by is not None:
        field, descending = query.order_by
        present = [r for r in selected if _field_value(r, field) is not None]
        missing = [r for r in selected if _field_value(r, field) is None]
        present.sort(key=lambda r: str(_field_value(r, field)), reverse=descending)
        # Salesforce sorts nulls first ascending, last descending.
        selected = present + missing if descending else missing + present
    return selected[: query.limit] if query.limit is not None else selected


@dataclass(frozen=True)
class Sosl:
    words: tuple[str, ...]
    scope: str
    returning: tuple[tuple[str, tuple[str, ...]], ...]
    limit: int | None


def _sosl_words(term: str) -> tuple[str, ...]:
    """The term's words and phrases (joined by OR), unescaped; MALFORMED_SEARCH for a bare reserved character."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    had_quotes = False
    characters = iter(term)

    def finish() -> None:
        nonlocal had_quotes
        word = "".join(current)
        current.clear()
        if word.upper() == "OR" and not had_quotes:
            words.append("\x00OR")
        elif word or had_quotes:
            words.append(word)
        had_quotes = False

    for character in characters:
        if character == "\\":
            following = next(characters, "")
            if following not in _SOSL_RESERVED:
                raise QueryError("MALFORMED_SEARCH", f"invalid escape sequence in search term: \\{following}")
            current.append(following)
        elif character == '"':
            quoted = not quoted
            had_quotes = True
        elif character.isspace() and not quoted:
            finish()
        elif character in _SOSL_RESERVED:
            raise QueryError("MALFORMED_SEARCH", f"line 1: unexpected character '{character}' in search term")
        else:
            current.append(character)
    if quoted:
        raise QueryError("MALFORMED_SEARCH", "line 1: unterminated quoted phrase")
    finish()
    # words, OR, words, …: anything else is not the subset this emulator (and the connector) speaks.
    if not words or len(words) % 2 == 0:
        raise QueryError("MALFORMED_SEARCH", "search term must be words joined by OR")
    for index, word in enumerate(words):
        if (word == "\x00OR") != (index % 2 == 1):
            raise QueryError("MALFORMED_SEARCH", "search term must be words joined by OR")
    found = tuple(word for word in words[::2])
    if any(len(word.strip()) < 2 for word in found):
        raise QueryError("INVALID_SEARCH", "search term must be longer than one character")
    return found


def parse_sosl(text: str, fields_of: Callable[[str], frozenset[str] | None]) -> Sosl:
    match = _SOSL.match(text)
    if match is None:
        raise QueryError("MALFORMED_SEARCH", "line 1: no viable alternative (FIND {…} IN … FIELDS RETURNING …)")
    words = _sosl_words(match.group(1))
    scope = str(match.group(2)).upper()
    returning: list[tuple[str, tuple[str, ...]]] = []
    rest = str(match.group(3))
    position = 0
    while position < len(rest):
        part = _RETURNING.match(rest, position)
        if part is None or part.end() == position:
            raise QueryError("MALFORMED_SEARCH", f"line 1: unexpected text in RETURNING at {position + 1}")
        sobject = str(part.group(1))
        known = fields_of(sobject)
        if known is None:
            raise QueryError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        lowered = {name.lower() for name in known}
        fields = tuple(name.strip() for name in str(part.group(2)).split(",") if name.strip())
        for name in fields:
            if not _FIELD.match(name) or name.lower() not in lowered:
                raise QueryError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'.")
        returning.append((sobject, fields or ("Id",)))
        position = part.end()
    if not returning:
        raise QueryError("MALFORMED_SEARCH", "line 1: RETURNING names no object")
    limit = int(match.group(4)) if match.group(4) else None
    return Sosl(words, scope, tuple(returning), limit)


def _digits(text: Any) -> str:
    return "".join(c for c in str(text or "") if c.isdecimal())


_PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "Fax")
_NAME_FIELDS = ("FirstName", "LastName", "Name", "Company")


def _sosl_hit(record: Record, word: str, scope: str) -> bool:
    if scope in ("PHONE", "ALL"):
        wanted = _digits(word)
        if wanted and any(_digits(record.get(f)) == wanted for f in _PHONE_FIELDS if record.get(f)):
            return True
    email = str(record.get("Email") or "")
    if scope in ("EMAIL", "ALL") and email and email.lower() == word.lower():
        return True
    if scope in ("NAME", "ALL"):
        lowered = word.lower()
        return any(lowered in str(record.get(f) or "").lower() for f in _NAME_FIELDS if record.get(f))
    return False


def run_sosl(search: Sosl, records_of: Callable[[str], Sequence[Record]]) -> list[tuple[str, Record]]:
    """(sobject, record) for every hit, object by object in RETURNING order, up to the limit."""
    hits: list[tuple[str, Record]] = []
    for sobject, _fields in search.returning:
        for record in records_of(sobject):
            if any(_sosl_hit(record, word, search.scope) for word in search.words):
                hits.append((sobject, record))
    return hits[: search.limit] if search.limit is not None else hits
