"""Calendly's conventions for the emulator, as pure functions: error bodies, timestamps, URIs and
page tokens.

- Errors: the spec's `ErrorResponse` (title, message, details) and shared `responses`
  (tests/specs/calendly/calendly-api.v2.2023-04.json).
- Pagination: the spec's `Count`/`PageToken` parameters and `Pagination` schema.
- Rate limits (429 and `X-RateLimit-*`): https://developer.calendly.com/api-docs/overview/rate-limits
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse

__all__ = [
    "API",
    "ApiError",
    "calendly_error",
    "page_offset",
    "page_token",
    "pagination",
    "parse_time",
    "stamp",
]

# Calendly's resource URIs always name the production host, whatever host served the request.
API = "https://api.calendly.com"

_TITLES = {
    400: ("Invalid Argument", "The supplied parameters are invalid."),
    401: ("Unauthenticated", "The access token is invalid"),
    403: ("Permission Denied", "You do not have permission to access this resource."),
    404: ("Resource Not Found", "The server could not find the requested resource."),
    409: ("Already Exists", "The resource already exists"),
    429: ("Too Many Requests", "You have exceeded the rate limit. Please try again later."),
    500: (
        "Internal Server Error",
        "The server encountered an unexpected condition that prevented it from fulfilling the request.",
    ),
}


class ApiError(Exception):
    """A Calendly error answer: status, and the body's message and per-parameter details."""

    def __init__(self, status: int, message: str | None = None, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message or _TITLES.get(status, ("Error", "Error"))[1])
        self.status = status
        self.message = message
        self.details = details


def calendly_error(
    status: int,
    message: str | None = None,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """`{"title", "message", "details"?}` with the title Calendly uses for the status."""
    title, default = _TITLES.get(status, ("Internal Server Error", _TITLES[500][1]))
    body: dict[str, Any] = {"title": title, "message": message or default}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def stamp(moment: datetime) -> str:
    """Calendly's timestamps: UTC, six fractional digits, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None, parameter: str) -> datetime:
    """An ISO 8601 instant with a zone (`Z` or an offset); Calendly's 400 otherwise."""
    if not text:
        raise ApiError(400, details=[{"parameter": parameter, "message": "is required"}])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, details=[{"parameter": parameter, "message": "must be a valid ISO 8601 time"}]) from None
    if moment.tzinfo is None:
        raise ApiError(400, details=[{"parameter": parameter, "message": "must include a time zone"}])
    return moment.astimezone(UTC)


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, details=[{"parameter": "page_token", "message": "is invalid"}]) from None
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(400, details=[{"parameter": "page_token", "message": "is invalid"}])
    return offset


def pagination(path: str, query: dict[str, str], offset: int, count: int, total: int) -> dict[str, Any]:
    """The `pagination` object: tokens and full page URLs, `null` past either end."""

    def page(at: int | None) -> tuple[str | None, str | None]:
        if at is None:
            return None, None
        token = page_token(at)
        return token, f"{API}{path}?{urlencode({**query, 'count': str(count), 'page_token': token})}"

    following = offset + count if offset + count < total else None
    previous = max(0, offset - count) if offset > 0 else None
    next_token, next_page = page(following)
    previous_token, previous_page = page(previous)
    return {
        "count": count,
        "next_page": next_page,
        "previous_page": previous_page,
        "next_page_token": next_token,
        "previous_page_token": previous_token,
    }
