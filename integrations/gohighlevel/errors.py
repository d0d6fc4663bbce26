"""GoHighLevel's error answers, translated into the shared integration errors in one place.

The LeadConnector API is a NestJS app: errors come as `{"statusCode", "message", "error"?}`,
`message` a string, or a list of strings for 422 validation errors (SPEC: common-schemas.json
BadRequestDTO, UnauthorizedDTO, UnprocessableDTO). The spec lists no 404: an unknown contact or
appointment answers 400 with a "… not found" message (UNCONFIRMED wording), which is read here
as `NotFoundError` when the request was about one record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError

__all__ = ["PROVIDER", "GhlError", "Subject", "message_of", "translate", "translate_transport"]

PROVIDER = "gohighlevel"
# What a request was about, for NotFoundError: ("contact", "<id>").
Subject = tuple[str, str]
_MESSAGE_LIMIT = 300


class GhlError(UpstreamError):
    """An error answer from GoHighLevel, with its message and body for the connector to read."""

    def __init__(self, status: int, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(PROVIDER, f"GoHighLevel answered: {message}", status=status, retryable=status >= 500)
        self.vendor_message = message
        self.body: Mapping[str, Any] = body or {}


def message_of(content: bytes) -> tuple[str, dict[str, Any]]:
    """(message, body) of an error answer; ("", {}) when it is not GoHighLevel's shape."""
    try:
        body: Any = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "", {}
    if not isinstance(body, dict):
        return "", {}
    message = body.get("message")
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return (str(message)[:_MESSAGE_LIMIT] if message else ""), body


def translate(
    status: int, content: bytes, headers: Mapping[str, str], subject: Subject | None = None
) -> IntegrationError:
    """The integration error for an error answer. Messages never carry tokens or URLs."""
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(headers))
    message, body = message_of(content)
    if subject is not None and (status == 404 or (status in (400, 422) and "not found" in message.lower())):
        return NotFoundError(*subject)
    if status == 403:
        return GhlError(status, message or "the token has no access to this location or scope", body)
    return GhlError(status, message or f"HTTP {status}", body)


def translate_transport(error: httpx.HTTPError) -> IntegrationError:
    """Timeouts and connection failures: retryable, with no URL in the message."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    return UpstreamError(PROVIDER, f"GoHighLevel unreachable ({type(error).__name__})", retryable=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
