"""SendGrid's wire formats for the emulator: the sandbox credentials and signing key, error bodies,
Mail Send validation, and the signed Event Webhook request.

Error body: https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors
Mail Send errors: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
Signed Event Webhook: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from starlette.responses import JSONResponse, Response

from integrations.common.linear_regex import compile_linear

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PERSONALIZATIONS",
    "SANDBOX_API_KEY",
    "SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY",
    "SANDBOX_FROM_EMAIL",
    "SANDBOX_SCOPES",
    "Callback",
    "SendGridApiError",
    "rate_limit_headers",
    "sign_event_webhook",
    "unverified_sender",
    "validate_mail",
]

# Sandbox-only credentials: known to the emulator and handed out by `sandbox_connection`.
SANDBOX_API_KEY = "SG.c2FuZGJveC1rZXktMDE.c2FuZGJveC1vbmx5LWtleS1vZi10aGUtdG9vbC1zZXJ2ZXI"
SANDBOX_FROM_EMAIL = "frontdesk@example.com"
# The sandbox API key's permissions: a restricted key that may send mail and read its webhook key.
SANDBOX_SCOPES = ("mail.send", "user.webhooks.event.settings.read")

# Sandbox-only signing key, derived from a fixed number so that every process (the emulator,
# `sandbox_connection`, the tests) knows the same public key. Never use it for anything real.
_SANDBOX_SIGNING_KEY = ec.derive_private_key(
    int.from_bytes(hashlib.sha256(b"tool-server sendgrid sandbox event webhook").digest(), "big") >> 8,
    ec.SECP256R1(),
)
# The verification key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo.
SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY = base64.b64encode(
    _SANDBOX_SIGNING_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
).decode()

MAX_PERSONALIZATIONS = 1000
# "The total size of your email, including attachments, must be less than 30MB."
MAX_BODY_BYTES = 30 * 1024 * 1024
# An address as SendGrid checks it at send time, roughly: one @, a dot in the domain, no spaces.
_ADDRESS = compile_linear(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
# unconfirmed: SendGrid publishes no mail/send limit; other v3 endpoints answer 600 a minute.
RATE_LIMIT = 600

_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


@dataclass(frozen=True)
class Callback:
    """A signed request the emulator would send to this server (an Event Webhook POST)."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class SendGridApiError(Exception):
    """One SendGrid error answer: a status and its `errors` entries (message, field, help)."""

    status: int
    errors: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        body = {"errors": [{"message": message, "field": at, "help": aid} for message, at, aid in self.errors]}
        return JSONResponse(body, status_code=self.status, headers={**rate_limit_headers(), **self.headers})


def rate_limit_headers(remaining: int = RATE_LIMIT - 1, reset: float | None = None) -> dict[str, str]:
    """The X-RateLimit-* headers SendGrid sends: limit, what is left, and when the window resets (Unix s).

    unconfirmed: SendGrid documents them on every v3 answer, but one observer saw none on mail/send.
    """
    reset_at = reset if reset is not None else (int(time.time()) // 60 + 1) * 60
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(int(reset_at)),
    }


def _refusal(message: str, at: str | None, anchor: str) -> tuple[str, str | None, str | None]:
    return message, at, f"{_HELP}#{anchor}"


def validate_mail(body: Any) -> list[tuple[str, str | None, str | None]]:
    """The errors SendGrid's Mail Send answers for `body` (empty when it would accept it).

    Like SendGrid, every problem is listed at once. The sender check (403) comes separately,
    after the body is valid: see `unverified_sender`.
    """
    if not isinstance(body, dict):
        return [("Bad Request", None, None)]
    errors: list[tuple[str, str | None, str | None]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _refusal(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
                "-Personalizations-Errors",
            )
        )
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(
            _refusal(
                f"The personalization block is limited to {MAX_PERSONALIZATIONS} personalizations per API request. "
                f"You have provided {len(personalizations)} personalizations. Please consider splitting this into "
                "multiple requests and resending your request.",
                "personalizations",
                "message.personalizations",
            )
        )
    for index, personalization in enumerate(personalizations):
        errors.extend(_personalization_errors(index, personalization))
    sender = body.get("from")
    if not isinstance(sender, dict) or not _is_address(sender.get("email")):
        errors.append(
            _refusal(
                "The from object must be provided for every email send. It is an object that requires the email "
                'parameter, but may also contain a name parameter.  e.g. {"email" : "example@example.com"}  or '
                '{"email" : "example@example.com", "name" : "Example Recipient"}.',
                "from.email",
                "message.from",
            )
        )
    template = body.get("template_id")
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and isinstance(p.get("subject"), str) and p["subject"] for p in personalizations
    )
    if not template and not every_has_subject and not (isinstance(body.get("subject"), str) and body["subject"]):
        errors.append(
            _refusal(
                "The subject is required. You can get around this requirement if you use a template with a subject "
                "defined or if every personalization has a subject defined.",
                "subject",
                "message.subject",
            )
        )
    errors.extend(_content_errors(body.get("content"), templated=bool(template)))
    return errors


def unverified_sender() -> SendGridApiError:
    """SendGrid's 403 for a From address that is not a verified Sender Identity of the account."""
    return SendGridApiError(
        403,
        [
            (
                "The from address does not match a verified Sender Identity. Mail cannot be sent until this error "
                "is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see "
                "the Sender Identity requirements",
                "from",
                None,
            )
        ],
    )


def _personalization_errors(index: int, personalization: Any) -> list[tuple[str, str | None, str | None]]:
    to = personalization.get("to") if isinstance(personalization, dict) else None
    if not isinstance(to, list) or not to:
        return [
            _refusal(
                "The to array is required for all personalization objects, and must have at least one email object "
                "with a valid email address.",
                f"personalizations.{index}.to",
                "message.personalizations.to",
            )
        ]
    return [
        _refusal(
            # unconfirmed: the wording of SendGrid's answer for a malformed recipient address.
            "Does not contain a valid address.",
            f"personalizations.{index}.to.{position}.email",
            "message.personalizations.to",
        )
        for position, recipient in enumerate(to)
        if not isinstance(recipient, dict) or not _is_address(recipient.get("email"))
    ]


def _content_errors(content: Any, *, templated: bool) -> list[tuple[str, str | None, str | None]]:
    if content is None and templated:
        return []
    if not isinstance(content, list) or not content:
        return [
            _refusal(
                "Unless a valid template_id is provided, the content parameter is required. There must be at least "
                "one defined content block. We typically suggest both text/plain and text/html blocks are included, "
                "but only one block is required.",
                "content",
                "message.content",
            )
        ]
    return [
        _refusal(
            "The content value must be a string at least one character in length.",
            f"content.{index}.value",
            "message.content.value",
        )
        for index, block in enumerate(content)
        if not isinstance(block, dict) or not isinstance(block.get("value"), str) or not block["value"]
    ]


def _is_address(value: object) -> bool:
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def sign_event_webhook(url: str, body: bytes, timestamp: int) -> Callback:
    """The Event Webhook POST SendGrid would make: ECDSA P-256 / SHA-256 over `timestamp + body`.

    The signature is base64 DER in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp (Unix
    seconds) in `X-Twilio-Email-Event-Webhook-Timestamp`.
    """
    stamp = str(timestamp)
    signature = _SANDBOX_SIGNING_KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        # unconfirmed: the User-Agent SendGrid's webhook poster sends.
        "User-Agent": "SendGrid Event API",
        EventWebhookHeader.SIGNATURE: base64.b64encode(signature).decode(),
        EventWebhookHeader.TIMESTAMP: stamp,
    }
    return Callback(url=url, headers=headers, body=body)
