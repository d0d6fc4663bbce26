"""Stripe SDK exceptions → `integrations.capabilities.errors`, in one place.

Error semantics: https://docs.stripe.com/api/errors and https://docs.stripe.com/error-handling
"""

from __future__ import annotations

from collections.abc import Mapping

import stripe

from integrations.capabilities.errors import (
    IntegrationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["PROVIDER", "translate"]

PROVIDER = "stripe"
# Stripe messages are short; cap them so an odd one cannot flood a log line or a spoken answer.
_MAX_DETAIL = 200


def translate(
    error: stripe.StripeError, *, missing: tuple[str, str] | None = None, capability: str = "payments"
) -> IntegrationError:
    """The shared error for one SDK exception; `capability` is the one the failing connection serves.

    `missing` is the (kind, id) a 404 `resource_missing` means on this call, e.g.
    ("payment_link", "cs_test_…"); without it a 404 is an upstream error like any other 4xx.
    """
    status = error.http_status
    should_retry = _header(error.headers, "stripe-should-retry")
    if isinstance(error, stripe.RateLimitError):
        # 429 (`rate_limit`, or `lock_timeout` when an object is busy). Stripe usually sends no
        # Retry-After; when it (or the emulator) does, Resilience waits at least that long.
        return RateLimitedError(PROVIDER, _seconds(_header(error.headers, "retry-after")))
    if isinstance(error, stripe.AuthenticationError):
        # A 401 is a rolled, deleted or mistyped secret key: no retry can fix it. Stripe's own
        # message echoes part of the key, so it is deliberately not passed on.
        return ProviderNotConnectedError(capability, "Stripe rejected the API key; reconnect stripe with a valid key")
    if isinstance(error, stripe.APIConnectionError):
        # Timeouts and refused connections are worth another attempt; TLS failures are not.
        return UpstreamError(PROVIDER, "could not reach Stripe", retryable=error.should_retry)
    if isinstance(error, stripe.PermissionError):
        return UpstreamError(PROVIDER, "the API key may not make this request", status=status, retryable=False)
    if status == 404 and error.code == "resource_missing" and missing is not None:
        return NotFoundError(*missing)
    # 409: another request with the same Idempotency-Key is still running; once it finishes a
    # retry gets its replayed answer. Stripe-Should-Retry, when present, overrides the guess.
    retryable = status is not None and (status >= 500 or status == 409)
    if should_retry is not None:
        retryable = should_retry.lower() == "true"
    return UpstreamError(PROVIDER, _detail(error), status=status, retryable=retryable)


def _detail(error: stripe.StripeError) -> str:
    message = (error.user_message or type(error).__name__)[:_MAX_DETAIL]
    parts = [error.code, message, f"request {error.request_id}" if error.request_id else None]
    return ": ".join(part for part in parts if part)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    # The SDK hands over whatever its HTTP client returned, not always a case-insensitive mapping.
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
