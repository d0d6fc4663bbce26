"""Pure helpers for the requests Twilio sends to this server: signatures, status callbacks, inbound messages.

The server's webhook routes call these; nothing here does I/O. SMS and WhatsApp arrive the
same way: a WhatsApp message names its sender "whatsapp:+1…", which the events carry as the
bare E.164 number with the channel beside it. Twilio signs each webhook with
`X-Twilio-Signature`: base64(HMAC-SHA1(auth token, full URL + every POST parameter's name and
value, sorted by name)). There is no timestamp, so there is no replay window to check.
Docs: https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from twilio.request_validator import RequestValidator

from integrations.common.spec import (
    InboundMessageEvent,
    MessageStatusEvent,
    OptOutEvent,
    WebhookEvent,
    WebhookRejectedError,
    WebhookReply,
    WebhookRequest,
)

__all__ = [
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "WHATSAPP_PREFIX",
    "StatusPayloadError",
    "StatusUpdate",
    "channel_address",
    "opt_change",
    "parse_status",
    "sign",
    "validate_signature",
]

# Twilio's default opt-out and opt-in keywords for long codes and toll-free numbers; Twilio itself
# blocks further messages (error 21610) after an opt-out word until an opt-in word arrives.
# https://help.twilio.com/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
# Twilio addresses a WhatsApp user or sender as "whatsapp:" + the E.164 number, in To and From.
# https://www.twilio.com/docs/whatsapp/api#using-phone-numbers-with-whatsapp
WHATSAPP_PREFIX = "whatsapp:"


class StatusPayloadError(ValueError):
    """A status callback without the fields every Twilio status callback carries."""


@dataclass(frozen=True)
class StatusUpdate:
    """One message status change, as Twilio reports it to the StatusCallback URL."""

    message_sid: str
    status: str
    # Set when the status is `failed` or `undelivered`, e.g. 30007 (carrier filtering).
    error_code: int | None
    to: str | None
    from_: str | None
    account_sid: str | None = None


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The `X-Twilio-Signature` Twilio would send for a form POST of `params` to `url`."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def validate_signature(url: str, params: Mapping[str, str], signature: str, auth_token: str) -> bool:
    """Whether `signature` is Twilio's for this URL and these form parameters.

    `url` is the full URL Twilio requested, query string included. The SDK's validator accepts it
    with and without an explicit default port, because Twilio signs whichever form it was given.
    """
    if not signature:
        return False
    valid: bool = RequestValidator(auth_token).validate(url, dict(params), signature)
    return valid


def parse_status(params: Mapping[str, str]) -> StatusUpdate:
    """The status change in a StatusCallback form body.

    Docs: https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
    """
    # `SmsSid` and `SmsStatus` are the older names Twilio still sends next to the current ones.
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise StatusPayloadError("a Twilio status callback needs MessageSid and MessageStatus")
    raw_code = (params.get("ErrorCode") or "").strip()
    return StatusUpdate(
        message_sid=sid,
        status=status,
        error_code=int(raw_code) if raw_code.isdigit() else None,
        to=params.get("To") or None,
        from_=params.get("From") or None,
        account_sid=params.get("AccountSid") or None,
    )


def opt_change(body: str) -> Literal["opt_out", "opt_in"] | None:
    """Whether an inbound text opts its sender out of or back into messages.

    Like Twilio, only a message that is exactly one keyword counts ("stop" does, "please stop" does not).
    """
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return None


def channel_address(address: str) -> tuple[Literal["sms", "whatsapp"], str]:
    """The channel and bare number of a Twilio address: "whatsapp:+1…" -> ("whatsapp", "+1…")."""
    if address.startswith(WHATSAPP_PREFIX):
        return "whatsapp", address.removeprefix(WHATSAPP_PREFIX)
    return "sms", address


_EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook: verify X-Twilio-Signature, then turn the callback into events.

    `status` callbacks (the StatusCallback of sent messages, SMS or WhatsApp, which adds the
    status `read`) become a MessageStatusEvent. `inbound` messages (the number's or WhatsApp
    sender's incoming-message webhook) become an InboundMessageEvent with their channel (on
    WhatsApp it opens the 24-hour customer-service window), plus an OptOutEvent with the bare
    number when the whole text is STOP or START (and their synonyms), on either channel; they
    are answered with empty TwiML.
    """
    # https://www.twilio.com/docs/usage/webhooks/webhooks-security
    signature = request.headers.get("x-twilio-signature", "")
    if not validate_signature(request.url, request.form, signature, secrets.get("auth_token", "")):
        raise WebhookRejectedError("X-Twilio-Signature does not match")
    if request.kind == "status":
        try:
            update = parse_status(request.form)
        except StatusPayloadError as error:
            raise WebhookRejectedError(str(error), status=400) from None
        return [MessageStatusEvent(update.message_sid, update.status, update.error_code)], WebhookReply(status=204)
    if request.kind == "inbound":
        change = opt_change(request.form.get("Body", ""))
        channel, sender = channel_address(request.form.get("From", ""))
        events: list[WebhookEvent] = []
        if sender:
            events.append(InboundMessageEvent(phone=sender, channel=channel))
            if change is not None:
                events.append(OptOutEvent(phone=sender, opted_out=change == "opt_out"))
        return events, WebhookReply(status=200, body=_EMPTY_TWIML, media_type="text/xml")
    raise WebhookRejectedError(f"twilio sends no {request.kind!r} callback", status=400)
