"""Calendly's answers and transport failures, translated into the shared integration errors in one place.

Calendly's error body is `{"title", "message", "details"?: [{"parameter", "message"}]}` (the spec's
`ErrorResponse`); 429 carries `X-RateLimit-*` (https://developer.calendly.com/api-docs/overview/rate-limits).
Messages name the status, Calendly's title and the parameters it refused, never a value (which may
be a caller's email or phone), a URL or a token.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.calendly.mappers import PROVIDER
from integrations.capabilities.errors import (
    BookingLinkOnlyError,
    IntegrationError,
    NotFoundError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["SchedulingLinkError", "Subject", "translate_response", "translate_transport"]

# What a request was about, for NotFoundError: ("appointment", "<event uuid>").
Subject = tuple[str, str]


class SchedulingLinkError(BookingLinkOnlyError):
    """Calendly would not book through the API (the account's plan has no Scheduling API), so the
    caller books through a single-use link instead. `booking_url` is that link; the message says it
    too, so an agent that only reads messages can still text it."""

    def __init__(self, booking_url: str) -> None:
        super().__init__(
            PROVIDER,
            booking_url,
            f"this Calendly account cannot book through the API; send the caller this booking link: {booking_url}",
        )


def translate_response(response: httpx.Response, subject: Subject | None = None) -> IntegrationError:
    """The integration error for a non-2xx answer (401 is the client's, which refreshes first)."""
    status = response.status_code
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(response))
    if status == 404 and subject is not None:
        return NotFoundError(*subject)
    body = _json(response)
    title = str(body.get("title") or "error")
    parameters = sorted(
        {str(d["parameter"]) for d in body.get("details") or [] if isinstance(d, dict) and d.get("parameter")}
    )
    detail = f"Calendly answered {title}" + (f" about {', '.join(parameters)}" if parameters else "")
    return UpstreamError(PROVIDER, detail, status=status, retryable=status >= 500)


def translate_transport(error: httpx.HTTPError) -> UpstreamError:
    """A request that got no answer: a timeout or a connection failure, both worth retrying."""
    if isinstance(error, httpx.TimeoutException):
        return UpstreamError(PROVIDER, "request timed out", retryable=True)
    return UpstreamError(PROVIDER, f"Calendly unreachable ({type(error).__name__})", retryable=True)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    # Retry-After first; Calendly's own X-RateLimit-Reset is the seconds until the window resets.
    for header in ("Retry-After", "X-RateLimit-Reset"):
        value = response.headers.get(header)
        try:
            if value is not None:
                return max(0.0, float(value))
        except ValueError:
            continue
    return None
