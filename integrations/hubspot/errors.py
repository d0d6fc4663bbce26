"""HubSpot SDK exceptions and urllib3 failures as `integrations.capabilities.errors`, in one function.

hubspot-api-client generates one package per API, each with its own `ApiException` class
(`.status`, `.body`, `.headers`); the transport under them is urllib3, whose timeouts and
connection errors reach us unwrapped because the connector turns urllib3's own retries off.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import urllib3.exceptions
from hubspot.crm.associations.v4.exceptions import OpenApiException as AssociationsSdkError
from hubspot.crm.contacts.exceptions import OpenApiException as ContactsSdkError
from hubspot.crm.objects.calls.exceptions import OpenApiException as CallsSdkError
from hubspot.crm.objects.notes.exceptions import OpenApiException as NotesSdkError

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError
from integrations.common.linear_regex import compile_linear

__all__ = ["PROVIDER", "SDK_ERRORS", "ContactExistsError", "MayHaveLandedError", "translate"]

PROVIDER = "hubspot"

# What `translate` understands; anything else is a bug and goes up untouched.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    AssociationsSdkError,
    CallsSdkError,
    ContactsSdkError,
    NotesSdkError,
    urllib3.exceptions.HTTPError,
)

# HubSpot's 409 message: "Contact already exists. Existing ID: 1234".
_EXISTING_ID = compile_linear(r"Existing ID:\s*([0-9]+)")
# Enough of HubSpot's message to act on; its messages never echo credentials.
_MESSAGE_CHARS = 200


class ContactExistsError(UpstreamError):
    """409 CONFLICT on create: HubSpot already holds a contact with this email (`existing_id`)."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(PROVIDER, "contact already exists", status=409, retryable=False)
        self.existing_id = existing_id


class MayHaveLandedError(UpstreamError):
    """A 5xx or a read timeout: HubSpot may have applied the request before failing.

    Retrying is safe for reads and PATCHes, not for creates HubSpot cannot deduplicate.
    """

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(PROVIDER, detail, status=status, retryable=True)
        self.detail = detail


def translate(error: BaseException, *, record: tuple[str, str] | None = None) -> IntegrationError:
    """The capability error for an SDK or transport failure.

    `record` is the (kind, id) the request addressed, so that a 404 becomes `NotFoundError`.
    """
    if isinstance(error, urllib3.exceptions.HTTPError):
        return _transport_error(error)
    status = getattr(error, "status", None)
    if not isinstance(status, int) or status == 0:
        # ApiValueError/ApiTypeError (bad arguments) or ApiException(status=0) (a TLS failure).
        return UpstreamError(PROVIDER, f"request failed before HubSpot answered ({type(error).__name__})")
    body = _json(getattr(error, "body", None))
    headers = getattr(error, "headers", None) or {}
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(headers))
    if status >= 500:
        return MayHaveLandedError(_detail(body, "server error"), status=status)
    if status == 404 and record is not None:
        return NotFoundError(*record)
    if status == 409 and body.get("category") == "CONFLICT":
        existing = _EXISTING_ID.search(str(body.get("message", "")))
        if existing:
            return ContactExistsError(existing.group(1))
    # 401 (the caller refreshes once and retries), 403 (missing scopes) and every other 4xx.
    return UpstreamError(PROVIDER, _detail(body, "request refused"), status=status, retryable=False)


def _transport_error(error: urllib3.exceptions.HTTPError) -> UpstreamError:
    # NewConnectionError subclasses ConnectTimeoutError: test it first. Nothing was sent either way.
    if isinstance(error, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
        return UpstreamError(PROVIDER, "HubSpot unreachable", retryable=True)
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return MayHaveLandedError("HubSpot timed out")
    return MayHaveLandedError(f"connection to HubSpot failed ({type(error).__name__})")


def _json(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _detail(body: Mapping[str, Any], fallback: str) -> str:
    category = body.get("category") or body.get("errorType")
    message = str(body.get("message") or fallback)[:_MESSAGE_CHARS]
    return f"{category}: {message}" if category else message


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if hasattr(headers, "items") else []
    for key, value in items:
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait: Retry-After, else the length of HubSpot's rate-limit window."""
    for name, scale in (("Retry-After", 1.0), ("X-HubSpot-RateLimit-Interval-Milliseconds", 1000.0)):
        raw = _header(headers, name)
        if raw is None:
            continue
        try:
            seconds = float(raw) / scale
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None
