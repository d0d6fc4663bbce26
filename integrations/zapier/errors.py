"""Zapier's answers and transport failures, translated into the capability errors, in one place.

A catch hook has no error body contract, no idempotency and no way to ask whether a delivery
arrived, so what matters is whether a failure proves the event did *not* reach Zapier:

- a connection never established, and a 429, prove it: `Resilience` may try again at once;
- a 5xx, a timeout waiting for the answer, a connection dropped mid-request do not: the Zap may
  already run. They become `MaybeDeliveredError`, which `Resilience` does not retry; the connector
  raises the retryable `UpstreamError` inside it, so a caller may decide to send again (with the
  same idempotency key, which the Zap can filter on).

Docs: https://help.zapier.com/hc/en-us/articles/29972220283789-Webhooks-by-Zapier-rate-limits
"""

from __future__ import annotations

import httpx

from integrations.capabilities.errors import (
    IntegrationError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["CAPABILITY", "MAX_BODY_BYTES", "PROVIDER", "MaybeDeliveredError", "retry_after", "translate", "transport"]

PROVIDER = "zapier"
CAPABILITY = "automation"
# unconfirmed: Zapier names 2 MB for Catch Raw Hook bodies; its platform limits say 10 MB for webhook
# payloads. The smaller one is kept, so nothing is sent that a raw hook would refuse.
MAX_BODY_BYTES = 2 * 1024 * 1024


class MaybeDeliveredError(Exception):
    """The delivery failed after the request may have reached Zapier; `error` is what to raise.

    Not an `IntegrationError` on purpose: `Resilience` lets it through without a retry.
    """

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error


def translate(status: int, headers: httpx.Headers) -> IntegrationError | MaybeDeliveredError:
    """The error for a non-2xx answer of a catch hook (its body says nothing reliable)."""
    if status == 429:
        # https://help.zapier.com/hc/en-us/articles/29972220283789-Webhooks-by-Zapier-rate-limits
        return RateLimitedError(PROVIDER, retry_after(headers))
    if status == 410:
        # Zapier answers 410 to a hook whose Zap unsubscribed (turned off or deleted):
        # https://docs.zapier.com/platform/build/cli-hook-trigger
        return ProviderNotConnectedError(
            CAPABILITY,
            "Zapier answered 410 Gone: the Zap behind this catch hook was turned off or deleted; "
            "connect the hook URL of a live Zap",
        )
    if status == 404:
        # unconfirmed: Zapier documents no 404 for catch hooks; a hook it does not know is as dead as a 410.
        return ProviderNotConnectedError(
            CAPABILITY, "Zapier does not know this catch hook (404); connect the hook URL of a live Zap"
        )
    if status >= 500:
        return MaybeDeliveredError(
            UpstreamError(
                PROVIDER,
                "Zapier failed; the Zap may have been triggered, so it was not retried",
                status=status,
                retryable=True,
            )
        )
    if status == 413:
        return UpstreamError(PROVIDER, "the event's data is too large for a Zapier catch hook", status=status)
    if 300 <= status < 400:
        # "Zapier cannot 301 or 302 redirect you to a different URL" (help center): nothing was caught.
        return UpstreamError(PROVIDER, "the catch hook answered with a redirect", status=status)
    return UpstreamError(PROVIDER, "Zapier refused the delivery", status=status)


def transport(error: httpx.TransportError) -> IntegrationError | MaybeDeliveredError:
    """The error for a request that got no answer. Never quotes httpx's text (it may hold the URL)."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # No connection was made, so nothing reached Zapier: always safe to try again.
        return UpstreamError(PROVIDER, "could not connect to Zapier", retryable=True)
    timed_out = isinstance(error, httpx.TimeoutException)
    what = "timed out waiting for Zapier" if timed_out else "the connection to Zapier failed"
    return MaybeDeliveredError(
        UpstreamError(PROVIDER, f"{what}; the Zap may have been triggered, so it was not retried", retryable=True)
    )


def retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds, when Zapier gave it as a number (an HTTP date is ignored)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
