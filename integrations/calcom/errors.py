"""Cal.com's error answers, translated into the shared integration errors in one place.

Cal.com API v2 is a NestJS app; its exception filters answer every error as
`{"status": "error", "timestamp", "path", "error": {"code", "message"}}` where `code` is the
exception's name (`NotFoundException`, `ThrottlerException`, …) or a constant such as
`INTERNAL_SERVER_ERROR` (apps/api/v2/src/filters/*.filter.ts in calcom/cal.com).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.calcom.mappers import PROVIDER
from integrations.capabilities.errors import (
    IntegrationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["CalcomError", "Subject", "error_of", "translate", "translate_transport"]

# What a request was about, for NotFoundError: ("appointment", "<booking uid>").
Subject = tuple[str, str]
_MESSAGE_LIMIT = 300


class CalcomError(UpstreamError):
    """An error answer from Cal.com, with its `code` and `message` for the connector to read."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(PROVIDER, f"Cal.com answered {code}: {message}", status=status, retryable=status >= 500)
        self.code = code
        self.vendor_message = message


def error_of(content: bytes) -> tuple[str, str]:
    """(code, message) of a Cal.com error body; ("error", "") when it is not one."""
    try:
        body: Any = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "error", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "error", ""
    message = error.get("message")
    return str(error.get("code") or "error"), (str(message)[:_MESSAGE_LIMIT] if message else "")


def translate(
    status: int, content: bytes, headers: Mapping[str, str], subject: Subject | None = None
) -> IntegrationError:
    """The integration error for an error answer. Messages never carry the key or the URL."""
    code, message = error_of(content)
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(headers))
    if status == 401:
        # An API key Cal.com does not know (deleted, expired): no retry can fix it.
        return ProviderNotConnectedError("calendar", f"Cal.com refused the API key ({message or code})")
    if status == 404 and subject is not None:
        return NotFoundError(*subject)
    return CalcomError(status, code, message)


def translate_transport(error: httpx.HTTPError) -> IntegrationError:
    """Timeouts and connection failures: retryable, with no URL in the message."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    return UpstreamError(PROVIDER, f"Cal.com unreachable ({type(error).__name__})", retryable=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    # Retry-After first; Cal.com's throttler also says when the window resets, in seconds.
    for name in ("retry-after", "x-ratelimit-reset-default"):
        value = headers.get(name)
        try:
            if value:
                return max(0.0, float(value))
        except ValueError:
            continue
    return None
