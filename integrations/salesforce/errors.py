"""Salesforce REST error answers as `integrations.capabilities.errors`, in one function.

Salesforce answers an error with a JSON array of `{"message", "errorCode", "fields"}` (403, 404
and 405 with `{"errorCode", "message"}` items), for example
`[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]` on a 401, or
`[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]` on a 403.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError

__all__ = [
    "DAILY_LIMIT_WAIT",
    "PROVIDER",
    "ApiUsage",
    "MayHaveLandedError",
    "SalesforceError",
    "api_usage",
    "translate",
    "translate_transport",
]

PROVIDER = "salesforce"
# The org's API allocation is a rolling 24 hours: once it is used up, nothing in a phone call's
# deadline will free it. A wait this long makes `Resilience` give up at once instead of retrying.
DAILY_LIMIT_WAIT = 3600.0
_MESSAGE_CHARS = 200

# (used, allowed) from `Sforce-Limit-Info: api-usage=25/15000`.
ApiUsage = tuple[int, int]


class SalesforceError(UpstreamError):
    """An error answer from Salesforce, with its first `errorCode` for the connector to act on."""

    def __init__(self, status: int, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(PROVIDER, f"{code}: {message}" if message else code, status=status, retryable=retryable)
        self.code = code


class MayHaveLandedError(SalesforceError):
    """A 5xx or a read timeout: Salesforce may have applied the request before failing.

    Retrying is safe for reads and PATCHes, not for creates Salesforce cannot deduplicate.
    """

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(status or 0, code, message, retryable=True)
        self.status = status


def api_usage(headers: Mapping[str, str]) -> ApiUsage | None:
    """`Sforce-Limit-Info: api-usage=n/m` as (n, m); None when absent or unreadable."""
    raw = headers.get("sforce-limit-info") or ""
    for part in raw.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() != "api-usage":
            continue
        used, _, allowed = value.partition("/")
        if used.strip().isdigit() and allowed.strip().isdigit():
            return int(used), int(allowed)
    return None


def first_error(content: bytes) -> tuple[str, str]:
    """(errorCode, message) of the first item of a Salesforce error body; ("UNKNOWN", "") otherwise."""
    try:
        body: Any = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "UNKNOWN", ""
    if isinstance(body, dict):
        # The OAuth endpoint's form: {"error", "error_description"}.
        return str(body.get("error") or body.get("errorCode") or "UNKNOWN"), str(body.get("error_description") or "")
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        return "UNKNOWN", ""
    item = body[0]
    return str(item.get("errorCode") or "UNKNOWN"), str(item.get("message") or "")[:_MESSAGE_CHARS]


def translate(
    status: int, content: bytes, headers: Mapping[str, str], record: tuple[str, str] | None = None
) -> IntegrationError:
    """The capability error for a Salesforce error answer. Messages never carry tokens or URLs.

    `record` is the (kind, id) the request addressed, so that a 404 becomes `NotFoundError`.
    A 401 comes back as a `SalesforceError` with status 401: the connector refreshes once on it.
    """
    code, message = first_error(content)
    if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimitedError(PROVIDER, _retry_after(headers))
    if status >= 500:
        return MayHaveLandedError(status, code, message)
    if status == 404 and record is not None:
        return NotFoundError(*record)
    if status == 400 and code in ("MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY") and record is not None:
        return NotFoundError(*record)
    return SalesforceError(status, code, message)


def translate_transport(error: httpx.HTTPError) -> IntegrationError:
    """Timeouts and connection failures, with no URL in the message (it names the org)."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached Salesforce: safe to retry even a create.
        return UpstreamError(PROVIDER, f"Salesforce unreachable ({type(error).__name__})", retryable=True)
    return MayHaveLandedError(None, type(error).__name__, "no answer from Salesforce")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After when sent; a long wait when `Sforce-Limit-Info` says the daily allocation is spent.

    Salesforce's REQUEST_LIMIT_EXCEEDED covers both the daily allocation (usage at or over the
    limit: no point retrying this call) and the concurrent-request limit (usage below it: a short
    backoff may help). UNCONFIRMED: whether Salesforce ever sends Retry-After; the emulator does.
    """
    raw = headers.get("retry-after")
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    usage = api_usage(headers)
    if usage is not None and usage[0] >= usage[1]:
        return DAILY_LIMIT_WAIT
    return None
