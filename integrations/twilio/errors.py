"""Twilio's answers and transport failures, translated into the capability errors, in one place.

Twilio errors carry an HTTP status and a numeric code (https://www.twilio.com/docs/api/errors).
Messages are created by a POST that Twilio cannot deduplicate (it has no idempotency key), so a
failure that may have happened *after* Twilio created the message (a 5xx, a timeout waiting for
the answer, a connection dropped mid-request) becomes `MaybeSentError`, which is not retried.
Only failures that prove nothing was sent (429, a connection that was never established) are.
"""

from __future__ import annotations

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, RequestException, Timeout
from twilio.base.exceptions import TwilioException
from urllib3.exceptions import ConnectTimeoutError

from integrations.capabilities.errors import (
    ConfigurationError,
    IntegrationError,
    ProviderNotConnectedError,
    RateLimitedError,
    RecipientOptedOutError,
    UpstreamError,
)

__all__ = ["PROVIDER", "MaybeSentError", "translate"]

PROVIDER = "twilio"

OPTED_OUT = 21610
AUTHENTICATE = 20003
TOO_MANY_REQUESTS = 20429
# The From address is no WhatsApp sender of this account (or one still pending approval).
# https://www.twilio.com/docs/errors/63007
NO_WHATSAPP_CHANNEL = 63007
# The ContentSid is no Content Template of this account. https://www.twilio.com/docs/api/errors/21655
UNKNOWN_CONTENT = 21655

# Refusals a setting of the connection causes, by code: the setting, and what to do about it.
_MISCONFIGURED: dict[int, tuple[str, str]] = {
    NO_WHATSAPP_CHANNEL: (
        "whatsapp_from",
        "Twilio has no WhatsApp sender with this number on the account (63007); use an approved WhatsApp sender",
    ),
    UNKNOWN_CONTENT: (
        "whatsapp_templates",
        "Twilio does not know this template's Content SID on the account (21655); copy the HX… SID "
        "from the Content Template Builder",
    ),
}

# Short, safe descriptions of the refusals a caller can act on. Twilio's own message often
# repeats the phone number, so it is not passed on.
_REFUSALS: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21408: "sending to this region is not enabled on the account",
    21602: "the message body is required",
    21603: "no sender: the connection needs from_number or messaging_service_sid",
    21604: "the 'To' phone number is required",
    21606: "the 'From' number is not an SMS-capable number of this account",
    21608: "trial accounts can only text verified numbers",
    21612: "the recipient cannot be reached from this sender",
    21614: "the 'To' number is not a mobile number",
    21617: "the message body exceeds 1600 characters",
    21635: "the 'To' number is a landline",
    21654: "template variables were given without a template",
    21656: "the template variables are invalid (each needs a non-empty text value)",
    # https://www.twilio.com/docs/api/errors/63016 (normally a delivery failure, not a refusal)
    63016: "outside the WhatsApp 24-hour customer-service window: send an approved template",
}


class MaybeSentError(UpstreamError):
    """Twilio may have created the message before the failure: retrying could send it twice.

    Not retryable, so `Resilience` does not repeat the POST; dispatch still reports a provider
    error, and the connector checks Twilio for the message before it sends with the same key again.
    """

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(PROVIDER, f"{detail}; the message may have been sent, so it was not retried", status=status)


def translate(
    error: TwilioException | RequestException,
    *,
    write: bool,
    recipient: str | None = None,
    retry_after: float | None = None,
) -> IntegrationError:
    """The capability error for an SDK exception or a transport failure.

    `write` says the request creates a message (so an ambiguous failure must not be retried);
    `recipient` is the `To` of a send; `retry_after` comes from the answer's Retry-After header.
    """
    if isinstance(error, RequestException):
        return _transport(error, write=write)
    status = getattr(error, "status", None)
    code = getattr(error, "code", None)
    status = status if isinstance(status, int) else None
    code = code if isinstance(code, int) else None
    if code == OPTED_OUT:
        return RecipientOptedOutError(recipient or "")
    if code in _MISCONFIGURED:
        setting, advice = _MISCONFIGURED[code]
        return ConfigurationError(setting, advice)
    if status == 429 or code == TOO_MANY_REQUESTS:
        return RateLimitedError(PROVIDER, retry_after)
    if status == 401 or code == AUTHENTICATE:
        return ProviderNotConnectedError(
            "messaging", "Twilio refused the account SID or auth token (20003); reconnect with a valid auth token"
        )
    label = f"error {code}" if code is not None and code != status else "error"
    if status is not None and status >= 500:
        if write:
            return MaybeSentError(f"Twilio failed ({label})", status=status)
        return UpstreamError(PROVIDER, f"Twilio failed ({label})", status=status, retryable=True)
    if status == 403:
        return UpstreamError(PROVIDER, f"Twilio refused access ({label})", status=status)
    detail = _REFUSALS.get(code) if code is not None else None
    return UpstreamError(
        PROVIDER, f"Twilio refused the request ({label}: {detail or 'see the Twilio console'})", status=status
    )


def _transport(error: RequestException, *, write: bool) -> IntegrationError:
    if _never_connected(error):
        # No connection was established, so no request reached Twilio: always safe to retry.
        return UpstreamError(PROVIDER, "could not connect to Twilio", retryable=True)
    what = "timed out waiting for Twilio" if isinstance(error, Timeout) else "the connection to Twilio failed"
    if write:
        return MaybeSentError(what)
    return UpstreamError(PROVIDER, what, retryable=True)


def _never_connected(error: RequestException) -> bool:
    """Whether the request failed before a connection existed (refused, unresolvable, connect timeout)."""
    if isinstance(error, ConnectTimeout):
        return True
    if not isinstance(error, RequestsConnectionError):
        return False
    # requests wraps urllib3's MaxRetryError; its `reason` says what failed. urllib3's
    # NewConnectionError (refused, DNS) is a ConnectTimeoutError subclass.
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, ConnectTimeoutError)
