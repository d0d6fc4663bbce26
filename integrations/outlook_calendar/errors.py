"""Graph's error answers, translated into the shared integration errors in one place.

Reference: https://learn.microsoft.com/graph/errors and
https://learn.microsoft.com/graph/throttling (429 with Retry-After).
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError
from integrations.outlook_calendar.mappers import PROVIDER

__all__ = ["Subject", "error_code", "translate", "translate_transport"]

# What a request was about, for NotFoundError: ("appointment", "<event id>").
Subject = tuple[str, str]

# Outlook's answer for an id that is not an Outlook item id at all: for us, a record that does not exist.
_MALFORMED_ID = frozenset({"ErrorInvalidIdMalformed", "ErrorInvalidId"})
_THROTTLED = frozenset({"ApplicationThrottled", "TooManyRequests", "ErrorServerBusy"})


def translate(response: httpx.Response, subject: Subject | None = None) -> IntegrationError:
    """The integration error for a Graph error answer.

    Messages carry the status and Graph's error code, never the request URL (its $filter holds
    callers' phones and emails) nor any token.
    """
    status = response.status_code
    code = error_code(response)
    if status == 429 or (status == 503 and code in _THROTTLED):
        return RateLimitedError(PROVIDER, _retry_after(response))
    if subject is not None and (status == 404 or (status == 400 and code in _MALFORMED_ID)):
        return NotFoundError(*subject)
    return UpstreamError(PROVIDER, f"Graph answered {code or 'an error'}", status=status, retryable=status >= 500)


def translate_transport(error: httpx.HTTPError) -> IntegrationError:
    """The integration error for a request that got no answer (or none we could read)."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    return UpstreamError(PROVIDER, f"Graph unreachable ({type(error).__name__})", retryable=True)


def error_code(response: httpx.Response) -> str:
    """`error.code` of Graph's body {"error": {"code", "message", "innerError"}}, or ""."""
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
