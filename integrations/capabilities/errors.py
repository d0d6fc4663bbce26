"""The errors a provider may raise. The tool server translates them, in one place, into
stable error codes and sentences an agent can say.

Providers translate their vendor's HTTP statuses and SDK exceptions into these; nothing
above `integrations/` ever sees a vendor exception.
"""

from __future__ import annotations

__all__ = [
    "BookingLinkOnlyError",
    "ConfigurationError",
    "IntegrationError",
    "NotFoundError",
    "ProviderNotConnectedError",
    "RateLimitedError",
    "RecipientOptedOutError",
    "SlotUnavailableError",
    "UpstreamError",
]


class IntegrationError(Exception):
    """Base class. `str(error)` is safe to log; it never carries credentials."""


class SlotUnavailableError(IntegrationError):
    """The requested time cannot be booked (taken, outside hours, too soon, too far out)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFoundError(IntegrationError):
    """The record does not exist, or does not belong to this connection."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier} not found")
        self.kind = kind
        self.identifier = identifier


class UpstreamError(IntegrationError):
    """The provider answered with an error or could not be reached."""

    def __init__(self, provider: str, detail: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(f"{provider}: {detail}" + (f" (HTTP {status})" if status else ""))
        self.provider = provider
        self.status = status
        self.retryable = retryable


class BookingLinkOnlyError(UpstreamError):
    """The calendar will not book through its API (Calendly on a plan without its Scheduling API),
    but the caller can book at `booking_url`, a link made for them."""

    def __init__(self, provider: str, booking_url: str, detail: str) -> None:
        super().__init__(provider, detail, status=403, retryable=False)
        self.booking_url = booking_url


class RateLimitedError(UpstreamError):
    """The provider asked us to slow down; `retry_after` is in seconds when it said."""

    def __init__(self, provider: str, retry_after: float | None = None) -> None:
        super().__init__(provider, "rate limited", status=429, retryable=True)
        self.retry_after = retry_after


class RecipientOptedOutError(IntegrationError):
    """The recipient unsubscribed (replied STOP); nothing may be sent until they opt back in."""

    def __init__(self, recipient: str) -> None:
        super().__init__("the recipient has opted out of messages")
        self.recipient = recipient


class ProviderNotConnectedError(IntegrationError):
    """No provider serves this capability for the agent, or its credentials were revoked."""

    def __init__(self, capability: str, detail: str | None = None) -> None:
        super().__init__(detail or f"no provider connected for {capability}")
        self.capability = capability


class ConfigurationError(IntegrationError):
    """A connection's settings are wrong. The message names the exact setting to fix."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"{setting}: {detail}")
        self.setting = setting
