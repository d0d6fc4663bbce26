"""Twilio's wire conventions for the emulator: the sandbox account, error bodies, the Message resource,
Basic auth, and the signed webhook requests Twilio sends back.

- Message resource: https://www.twilio.com/docs/messaging/api/message-resource
- Errors: https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions
- Segments: https://www.twilio.com/docs/glossary/what-sms-character-limit
- Webhook signatures: https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrations.common.linear_regex import compile_linear
from integrations.twilio.webhooks import WHATSAPP_PREFIX, channel_address, sign

__all__ = [
    "API_VERSION",
    "SANDBOX_ACCOUNT_SID",
    "SANDBOX_AUTH_TOKEN",
    "SANDBOX_FROM_NUMBER",
    "SANDBOX_WHATSAPP_NUMBER",
    "WHATSAPP_PREFIX",
    "WHATSAPP_SENDER",
    "Callback",
    "TwilioApiError",
    "WebhookDelivery",
    "check_sender",
    "credentials_refusal",
    "is_sms_number",
    "message_resource",
    "rfc2822",
    "segments",
    "status_callback_params",
    "unauthorized",
]

SANDBOX_ACCOUNT_SID = "AC5a4db0c5a4db0c5a4db0c5a4db0c5a4d"
SANDBOX_AUTH_TOKEN = "0c0ffee0c0ffee0c0ffee0c0ffee0c0f"
# Twilio's magic "valid" test number; the only number the sandbox account owns.
SANDBOX_FROM_NUMBER = "+15005550006"
# The account's WhatsApp sender (the number of Twilio's own WhatsApp Sandbox), sent as
# From=whatsapp:+14155238886. https://www.twilio.com/docs/whatsapp/sandbox
SANDBOX_WHATSAPP_NUMBER = "+14155238886"
WHATSAPP_SENDER = WHATSAPP_PREFIX + SANDBOX_WHATSAPP_NUMBER
# unconfirmed: the WhatsApp sender's channel install SID Twilio puts in status callbacks (XE…).
_CHANNEL_INSTALL_SID = "XE" + "5a4db0c5" * 4

API_VERSION = "2010-04-01"
# E.164 as Twilio enforces it for SMS: a country code and a full subscriber number (NANP: exactly 10 digits).
_E164 = compile_linear(r"\+(?:1[2-9][0-9]{9}|[2-9][0-9]{7,14})")
# The GSM 03.38 basic character set; a body using anything else is sent as UCS-2.
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


class TwilioApiError(Exception):
    """An error answer in Twilio's format: {"code", "message", "more_info", "status"}."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, headers: dict[str, str] | None = None) -> Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class WebhookDelivery:
    """A form POST Twilio would make to this server: where, and with which parameters."""

    url: str
    params: dict[str, str]


@dataclass(frozen=True)
class Callback:
    """A webhook request Twilio would send, signed: where, its headers, and its form parameters.

    Twilio POSTs `application/x-www-form-urlencoded` with `X-Twilio-Signature` over the URL
    and the parameters, keyed with the account's auth token.
    """

    url: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def signed(cls, url: str, params: Mapping[str, str], auth_token: str) -> Callback:
        return cls(
            url=url,
            params=dict(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sign(url, params, auth_token),
            },
        )

    @property
    def body(self) -> bytes:
        """The form body as Twilio would send it."""
        return urlencode(self.params).encode()

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "headers": dict(self.headers), "params": dict(self.params)}


def credentials_refusal(request: Request) -> Response | None:
    """Twilio's 401 unless the request's Basic credentials are the sandbox account's (None: let it in)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return unauthorized()
    if scheme.lower() != "basic" or (user, password) != (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN):
        return unauthorized()
    return None


def unauthorized() -> Response:
    return TwilioApiError(401, 20003, "Authenticate").response({"WWW-Authenticate": 'Basic realm="Twilio API"'})


def is_sms_number(text: str) -> bool:
    """Whether `text` is an E.164 number Twilio would text."""
    return _E164.fullmatch(text) is not None


def rfc2822(moment: datetime) -> str:
    """Twilio's timestamp format: "Wed, 04 Mar 2026 15:00:00 +0000"."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def segments(body: str) -> int:
    """SMS segments: 160 GSM-7 characters (153 per part when split), or 70 UCS-2 ones (67)."""
    single, part = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


def message_resource(
    sid: str,
    *,
    to: str,
    sender: str | None,
    service: str | None,
    body: str,
    direction: str,
    status: str,
    num_segments: int,
    now: datetime,
) -> dict[str, Any]:
    """A Message resource as Twilio answers it, just created."""
    uri = f"/{API_VERSION}/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{sid}"
    return {
        "account_sid": SANDBOX_ACCOUNT_SID,
        "api_version": API_VERSION,
        "body": body,
        "date_created": rfc2822(now),
        "date_sent": None,
        "date_updated": rfc2822(now),
        "direction": direction,
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": str(num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": to,
        "uri": f"{uri}.json",
    }


def status_callback_params(message: dict[str, Any], status: str, error_code: int | None) -> dict[str, str]:
    """The form a StatusCallback carries for `message` moving to `status`.

    https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
    """
    params = {
        "MessageSid": message["sid"],
        "SmsSid": message["sid"],
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "From": message["from"],
        "To": message["to"],
        "ApiVersion": API_VERSION,
    }
    if message["messaging_service_sid"]:
        params["MessagingServiceSid"] = message["messaging_service_sid"]
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    if str(message["to"]).startswith(WHATSAPP_PREFIX):
        # unconfirmed: the channel parameters Twilio adds to a WhatsApp message's status callback.
        params["ChannelPrefix"] = "whatsapp"
        params["ChannelInstallSid"] = _CHANNEL_INSTALL_SID
        params["ChannelToAddress"] = str(message["to"]).removeprefix(WHATSAPP_PREFIX)
    return params


def check_sender(channel: str, sender: str) -> None:
    """Twilio's refusal of a From address this account cannot send that channel from."""
    sender_channel, _ = channel_address(sender)
    if sender_channel != channel:
        raise TwilioApiError(400, 21910, "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel")
    if channel == "whatsapp" and sender != WHATSAPP_SENDER:
        raise TwilioApiError(400, 63007, "Twilio could not find a Channel with the specified From address")
    if channel == "sms" and sender != SANDBOX_FROM_NUMBER:
        raise TwilioApiError(
            400,
            21606,
            f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
            "or short code for your account.",
        )
