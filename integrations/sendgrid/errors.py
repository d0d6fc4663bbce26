"""SendGrid's answers and transport failures, translated into the capability errors, in one place.

SendGrid answers errors as `{"errors": [{"message", "field", "help"}]}`
(https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors).
Mail is sent by a POST that SendGrid cannot deduplicate (it has no idempotency key), so a failure
that may have happened *after* SendGrid accepted the mail (a 5xx, a timeout waiting for the
answer, a connection dropped mid-answer) becomes `MaybeSentError`, which is never repeated
automatically. Only failures that prove nothing was accepted (429, a connection that was never
established) are retried.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from python_http_client.exceptions import HTTPError

from integrations.capabilities.errors import (
    ConfigurationError,
    IntegrationError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["PROVIDER", "MaybeSentError", "TransportError", "first_error", "retry_after", "translate"]

PROVIDER = "sendgrid"

# What the SDK's urllib transport raises when no answer arrives: URLError while connecting or
# sending, the bare socket or http.client error while waiting for or reading the answer.
TransportError = URLError | OSError | HTTPException

# SendGrid's 403 for a From address that is not a verified Sender Identity says so in its message.
_SENDER_IDENTITY = "sender identity"
# A refused request's own words are passed on up to this many characters.
_MAX_DETAIL = 300


class MaybeSentError(UpstreamError):
    """SendGrid may have accepted the mail before the failure: repeating the POST could send it twice.

    Retryable for the caller (trying again later may succeed), but the connector never repeats it
    by itself: it leaves `Resilience` as a value, not an exception (see the connector).
    """

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(
            PROVIDER, f"{detail}; the email may have been sent, so it was not retried", status=status, retryable=True
        )


def first_error(body: bytes | str | None) -> tuple[str | None, str | None]:
    """The first (message, field) of a SendGrid error body; (None, None) when it has none."""
    try:
        payload: Any = json.loads(body or b"")
    except ValueError:
        return None, None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    message, field = errors[0].get("message"), errors[0].get("field")
    return (
        message if isinstance(message, str) and message else None,
        field if isinstance(field, str) and field and field != "null" else None,
    )


def retry_after(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds until `X-RateLimit-Reset` (a Unix time, in seconds), or None when the answer has none.

    Docs: https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits
    """
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        return max(0.0, float(value) - now) if value is not None else None
    except ValueError:
        return None


def translate(error: HTTPError | TransportError, *, write: bool, from_email: str, now: float) -> IntegrationError:
    """The capability error for an SDK `HTTPError` or a transport failure.

    `write` says the request sends mail (so an ambiguous failure must not be repeated);
    `from_email` is the connection's sender, named by a refused-sender error; `now` is the Unix
    time, for `X-RateLimit-Reset`.
    """
    if not isinstance(error, HTTPError):
        return _transport(error, write=write)
    status = error.status_code if isinstance(error.status_code, int) else None
    message, field = first_error(error.body)
    if status == 429:
        return RateLimitedError(PROVIDER, retry_after(error.headers, now))
    if status == 401:
        return ProviderNotConnectedError(
            "email", "SendGrid refused the API key (401); reconnect with a valid API key that may send mail"
        )
    if status == 403 and (field == "from" or _SENDER_IDENTITY in (message or "").lower()):
        return ConfigurationError(
            "from_email",
            f"SendGrid refuses to send as {from_email}: it is not a verified Sender Identity of the account; "
            "verify it in SendGrid (Settings > Sender Authentication) or use a verified address",
        )
    if status == 413:
        return UpstreamError(PROVIDER, "the email is larger than SendGrid accepts", status=413)
    if status is not None and status >= 500:
        if write:
            return MaybeSentError(f"SendGrid failed (HTTP {status})", status=status)
        return UpstreamError(PROVIDER, "SendGrid failed", status=status, retryable=True)
    detail = (message or "see the SendGrid activity feed")[:_MAX_DETAIL]
    where = f" ({field})" if field else ""
    return UpstreamError(PROVIDER, f"SendGrid refused the request{where}: {detail}", status=status)


def _transport(error: TransportError, *, write: bool) -> IntegrationError:
    if _never_connected(error):
        # No connection was established, so nothing reached SendGrid: always safe to retry.
        return UpstreamError(PROVIDER, "could not connect to SendGrid", retryable=True)
    timed_out = isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError)
    what = "timed out waiting for SendGrid" if timed_out else "the connection to SendGrid failed"
    if write:
        return MaybeSentError(what)
    return UpstreamError(PROVIDER, what, retryable=True)


def _never_connected(error: TransportError) -> bool:
    """Whether the request failed before a connection existed (refused, unresolvable, connect timeout).

    urllib wraps what goes wrong while connecting and sending in `URLError`; its `reason` says
    what. A timeout there is the connect timeout: a small JSON body does not stall once connected.
    """
    if not isinstance(error, URLError):
        return False
    return isinstance(error.reason, ConnectionRefusedError | socket.gaierror | TimeoutError)
