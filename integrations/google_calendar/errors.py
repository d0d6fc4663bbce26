"""Google's error answers, translated into the shared integration errors in one place.

Reference: https://developers.google.com/workspace/calendar/api/guides/errors
"""

from __future__ import annotations

import json
from typing import Any

import httplib2
from googleapiclient.errors import HttpError

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError
from integrations.google_calendar.mappers import PROVIDER

__all__ = ["Subject", "error_reasons", "translate"]

# What a request was about, for NotFoundError: ("appointment", "<event id>").
Subject = tuple[str, str]

_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def translate(error: BaseException, subject: Subject | None = None) -> IntegrationError:
    """The integration error for an SDK or transport exception.

    Messages carry the status and Google's reason code, never the request URL (which may hold
    attendee phones and emails) nor any token.
    """
    if isinstance(error, HttpError):
        return _from_http_error(error, subject)
    if isinstance(error, TimeoutError):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    if isinstance(error, OSError | httplib2.HttpLib2Error):
        return UpstreamError(PROVIDER, f"Google unreachable ({type(error).__name__})", retryable=True)
    if isinstance(error, ValueError):
        # The SDK raises ValueError (json) when a 2xx body is not JSON: a broken answer, not ours.
        return UpstreamError(PROVIDER, "unreadable answer from Google", retryable=True)
    return UpstreamError(PROVIDER, f"unexpected {type(error).__name__}")


def _from_http_error(error: HttpError, subject: Subject | None) -> IntegrationError:
    status = int(error.resp.status)
    reasons = error_reasons(error.content)
    if status == 429 or (status == 403 and reasons & _RATE_LIMIT_REASONS):
        return RateLimitedError(PROVIDER, _retry_after(error.resp))
    if status in (404, 410) and subject is not None:
        return NotFoundError(*subject)
    label = ", ".join(sorted(reasons)) or "error"
    return UpstreamError(PROVIDER, f"Google answered {label}", status=status, retryable=status >= 500)


def error_reasons(content: bytes) -> set[str]:
    """The `reason` codes in a Google error body (`error.errors[]`, and `error.details[]` if present)."""
    try:
        body: Any = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return set()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return set()
    reasons: set[str] = set()
    for key in ("errors", "details"):
        items = error.get(key)
        if isinstance(items, list):
            reasons.update(str(item["reason"]) for item in items if isinstance(item, dict) and item.get("reason"))
    return reasons


def _retry_after(response: Any) -> float | None:
    # httplib2.Response is a dict of lower-cased header names.
    value = response.get("retry-after") if hasattr(response, "get") else None
    try:
        return max(0.0, float(value)) if value else None
    except (TypeError, ValueError):
        return None
