"""Stripe's wire conventions for the emulator: bracket-form parameters, ids, errors, search syntax.

- Parameters: https://docs.stripe.com/api/request_ids and https://docs.stripe.com/api (form
  encoding, `line_items[0][price_data][currency]=usd`, `expand[0]=line_items`)
- Errors: https://docs.stripe.com/api/errors
- Search query language: https://docs.stripe.com/search#search-query-language
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse

from integrations.common.linear_regex import LinearMatch, compile_linear

__all__ = [
    "ApiError",
    "decode_form",
    "error_response",
    "new_id",
    "parse_search",
    "request_id",
]

_ALPHANUMERIC = string.ascii_letters + string.digits
_BRACKETS = compile_linear(r"\[([^\]]*)\]")


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking object id: `cus_…`, `cs_test_…`, `price_…`."""
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def request_id() -> str:
    return new_id("req_", 14)


# -- parameters --------------------------------------------------------------------------------------


def decode_form(encoded: str) -> dict[str, Any]:
    """`a[b][0][c]=1&expand[]=x` into {"a": {"b": [{"c": "1"}]}, "expand": ["x"]}.

    Numeric brackets build lists in index order; empty brackets append. Values stay strings, as
    Stripe receives them.
    """
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        parts = [key.split("[", 1)[0], *_BRACKETS.findall(key)]
        node: dict[str, Any] = root
        for index, part in enumerate(parts):
            name = part if part else str(len(node))
            if index == len(parts) - 1:
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise ApiError(400, f"Invalid parameter shape for {key}.", param=key)
                node = child
    nested: dict[str, Any] = _lists(root)
    return nested


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


# -- errors ------------------------------------------------------------------------------------------


@dataclass
class ApiError(Exception):
    """An error the emulator answers in Stripe's shape: {"error": {type, code, message, param, doc_url}}."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, type_=self.type, code=self.code, param=self.param)


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": type_}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status, headers={"Request-Id": request_id(), **(headers or {})})


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="parameter_invalid", param=param)


def no_such(kind: str, identifier: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: '{identifier}'", code="resource_missing", param=param)


def integer(
    params: dict[str, Any], name: str, *, default: int | None = None, low: int = 0, high: int | None = None
) -> int:
    """An integer parameter within [low, high], as Stripe validates it."""
    value = params.get(name)
    if value is None:
        if default is None:
            raise missing(name)
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(name, f"Invalid integer: {value}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(name, f"This value must be {bound}.")
    return number


# -- search query language ---------------------------------------------------------------------------

# Whitespace as `str.isspace` knows it (RE2's `\s` is ASCII only, without \v).
_SPACE = r"[\t-\r\x1c-\x1f\x85\p{Z}]"
# One clause: `-field:'value'`. The value is single- or double-quoted, a backslash escapes any
# character but a line break, and the other quote needs no escape. RE2 has no backreference to
# close on the opening quote, so each quote has its own alternative and group.
_CLAUSE = compile_linear(
    rf"""{_SPACE}*(?P<negate>-)?(?P<field>[a-z_]+(?:\[['"][^'"]+['"]\])?)(?P<op>:|~)"""
    rf"""(?:'(?P<single>(?:\\.|[^'\n])*)'|"(?P<double>(?:\\.|[^"\n])*)"){_SPACE}*"""
)
_JOINER = compile_linear(rf"(AND|OR){_SPACE}+")
_ESCAPED = compile_linear(r"\\(.)")
_METADATA_KEY = compile_linear(r"""metadata\[['"]([^'"]+)['"]\]""")
_SEARCHABLE = {"email", "name", "phone", "description"}


def parse_search(query: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate for a customer search query: clauses joined by AND or by OR (never both).

    Supports `field:'exact'`, `field~'substring'` (3+ characters), `-field:'…'` and
    `metadata['key']:'value'` on email, name, phone and description. Matching ignores case,
    as Stripe's search does.
    """
    clauses: list[Callable[[dict[str, Any]], bool]] = []
    joiners: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise ApiError(
                400, f"Invalid query: could not parse the search query at position {position}.", param="query"
            )
        clauses.append(_clause(match))
        position = match.end()
        if position >= len(query):
            break
        joiner = _JOINER.match(query, position)
        if joiner is None:
            raise ApiError(400, f"Invalid query: expected AND or OR at position {position}.", param="query")
        joiners.add(joiner.group(1))
        position = joiner.end()
    if len(joiners) > 1:
        raise ApiError(400, "Invalid query: AND and OR cannot be combined in one query.", param="query")
    combine = any if joiners == {"OR"} else all
    return lambda customer: combine(clause(customer) for clause in clauses)


def _clause(match: LinearMatch) -> Callable[[dict[str, Any]], bool]:
    field, op = match["field"], match["op"]
    quoted = match["single"] if match["single"] is not None else match["double"]
    value = _ESCAPED.sub(lambda escape: str(escape.group(1)), quoted).lower()
    metadata_key = _METADATA_KEY.fullmatch(field)
    if metadata_key is None and field not in _SEARCHABLE:
        raise ApiError(400, f"Invalid query: the field `{field}` is not supported for customers.", param="query")
    if op == "~" and len(value) < 3:
        raise ApiError(400, "Invalid query: substring matching needs at least 3 characters.", param="query")

    def read(customer: dict[str, Any]) -> str:
        if metadata_key is not None:
            return str((customer.get("metadata") or {}).get(metadata_key.group(1)) or "").lower()
        return str(customer.get(field) or "").lower()

    def matches(customer: dict[str, Any]) -> bool:
        found = read(customer)
        hit = value in found if op == "~" else found == value
        return hit != bool(match["negate"])

    return matches
