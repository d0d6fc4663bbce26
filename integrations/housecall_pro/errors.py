"""Housecall Pro's error answers, translated into the shared integration errors in one place.

Housecall Pro answers errors as `{"error": {"message": "…"}}` (the spec's `ErrorResponse`).
Rate limits answer 429 (third-party reports); the header carrying the wait is not documented,
so `Retry-After` is read when present (UNCONFIRMED header name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.capabilities.errors import (
    IntegrationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["PROVIDER", "HousecallError", "Subject", "message_of", "translate", "translate_transport"]

PROVIDER = "housecall_pro"
# What a request was about, for NotFoundError: ("customer", "<id>").
Subject = tuple[str, str]
_MESSAGE_LIMIT = 300


class HousecallError(UpstreamError):
    """An error answer from Housecall Pro, with its message for the connector to read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(
            PROVIDER, f"Housecall Pro answered: {message or 'an error'}", status=status, retryable=status >= 500
        )
        self.vendor_message = message


def message_of(content: bytes) -> str:
    """The `error.message` of a Housecall Pro error body; "" when it is not one."""
    try:
        body: Any = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:_MESSAGE_LIMIT]
    if isinstance(error, str):
        return error[:_MESSAGE_LIMIT]
    return ""


def translate(
    status: int, content: bytes, headers: Mapping[str, str], *, capability: str, subject: Subject | None = None
) -> IntegrationError:
    """The integration error for an error answer. Messages never carry the key or the URL."""
    message = message_of(content)
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(headers))
    if status in (401, 403):
        # A deleted key, or an account off the MAX plan (the API needs it): a person must reconnect.
        return ProviderNotConnectedError(capability, f"Housecall Pro refused the API key ({message or status})")
    if status == 404 and subject is not None:
        return NotFoundError(*subject)
    return HousecallError(status, message)


def translate_transport(error: httpx.HTTPError) -> IntegrationError:
    """Timeouts and connection failures: retryable, with no URL in the message."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    return UpstreamError(PROVIDER, f"Housecall Pro unreachable ({type(error).__name__})", retryable=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
