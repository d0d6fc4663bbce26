"""QuickBooks answers as `integrations.capabilities.errors`, in one function.

QuickBooks reports errors in a `Fault` (`{"Fault": {"Error": [{"Message", "Detail", "code"}],
"type"}, "time"}`), and not only with an error status: a 200 answer can carry a `Fault` too, so
every answer goes through `translate`, whatever its status. The 401 of an expired token comes in
lower-case keys (`{"fault": {"error": [...]}}`); both spellings are read.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError

__all__ = ["PROVIDER", "STALE_OBJECT", "DuplicateNameError", "StaleObjectError", "fault_of", "translate"]

PROVIDER = "quickbooks"
# https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes
STALE_OBJECT = "5010"
_OBJECT_NOT_FOUND = "610"
_DUPLICATE_NAME = "6240"
# QuickBooks asks for a minute's pause after a 429 when it sends no Retry-After.
_THROTTLE_WAIT_SECONDS = 60.0
_MESSAGE_CHARS = 200


class StaleObjectError(UpstreamError):
    """Error 5010: the `SyncToken` sent is not the record's latest (someone else changed it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(PROVIDER, detail, status=400, retryable=False)


class DuplicateNameError(UpstreamError):
    """Error 6240: another customer (or vendor, or employee) already has this DisplayName."""

    def __init__(self, detail: str) -> None:
        super().__init__(PROVIDER, detail, status=400, retryable=False)


def fault_of(body: Any) -> dict[str, Any] | None:
    """The `Fault` object of an answer (either key spelling), or None."""
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault", body.get("fault"))
    return fault if isinstance(fault, dict) else None


def translate(response: httpx.Response, body: Any, *, record: tuple[str, str] | None = None) -> IntegrationError | None:
    """The error an answer means, or None for a success. `record` names what a 404/610 means."""
    status = response.status_code
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(response))
    if status >= 500:
        return UpstreamError(PROVIDER, _detail(fault_of(body), "server error"), status=status, retryable=True)
    fault = fault_of(body)
    if status < 400 and fault is None:
        return None
    codes = _codes(fault)
    detail = _detail(fault, "request refused")
    if STALE_OBJECT in codes:
        return StaleObjectError(detail)
    if _DUPLICATE_NAME in codes:
        return DuplicateNameError(detail)
    if (status == 404 or _OBJECT_NOT_FOUND in codes) and record is not None:
        return NotFoundError(*record)
    # A Fault inside an HTTP 200 lands here too: an error all the same, never a record.
    return UpstreamError(PROVIDER, detail, status=status, retryable=False)


def _errors(fault: dict[str, Any] | None) -> list[dict[str, Any]]:
    if fault is None:
        return []
    errors = fault.get("Error", fault.get("error"))
    return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []


def _codes(fault: dict[str, Any] | None) -> set[str]:
    return {str(error.get("code", "")) for error in _errors(fault)}


def _detail(fault: dict[str, Any] | None, fallback: str) -> str:
    errors = _errors(fault)
    if not errors:
        return fallback
    first = errors[0]
    message = first.get("Message", first.get("message")) or fallback
    code = first.get("code")
    text = f"{code}: {message}" if code else str(message)
    return text[:_MESSAGE_CHARS]


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after")
    if raw is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    # unconfirmed: QuickBooks documents no Retry-After; its limits page says to wait 60 seconds.
    return _THROTTLE_WAIT_SECONDS
