"""Pure functions between the shared models and SendGrid's Mail Send body and Event Webhook events.

Mail Send reference: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
Event reference: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.capabilities.models import EmailRequest, Message
from integrations.common.spec import MessageStatusEvent
from integrations.sendgrid.errors import PROVIDER
from integrations.sendgrid.settings import SendGridSettings

__all__ = ["IDEMPOTENCY_ARG", "mail_body", "message_body", "message_id_of", "to_message", "to_status_event"]

# The custom argument that carries the idempotency key. SendGrid copies custom_args into every
# Event Webhook event of the mail, so an event can be traced to the tool call that sent it.
IDEMPOTENCY_ARG = "idempotency_key"

# Event Webhook event -> the shared delivery status. Events not listed (click, spamreport,
# unsubscribe, group_unsubscribe, group_resubscribe) change no delivery status.
_STATUSES = {
    "processed": "sent",
    "deferred": "deferred",
    "delivered": "delivered",
    "open": "read",
    "bounce": "failed",
    "dropped": "failed",
}


def mail_body(request: EmailRequest, settings: SendGridSettings) -> dict[str, Any]:
    """The `POST /v3/mail/send` body for one email to one recipient.

    Plain text goes in `content` with the `subject`; a dynamic template goes by `template_id` with
    its variables in the personalization's `dynamic_template_data`. Anything missing (a text mail
    without a subject) is left out for SendGrid to refuse with its own 400, never guessed.
    """
    recipient: dict[str, str] = {"email": request.to}
    if request.to_name:
        recipient["name"] = request.to_name
    personalization: dict[str, Any] = {"to": [recipient]}
    if request.template_id is not None:
        personalization["dynamic_template_data"] = dict(request.template_data)
    if request.idempotency_key is not None:
        # Personalization-level custom_args: the spec types the message-level field as a string.
        personalization["custom_args"] = {IDEMPOTENCY_ARG: request.idempotency_key}
    sender: dict[str, str] = {"email": settings.from_email}
    if settings.from_name:
        sender["name"] = settings.from_name
    body: dict[str, Any] = {"personalizations": [personalization], "from": sender}
    if settings.reply_to is not None:
        body["reply_to"] = {"email": settings.reply_to}
    if request.subject:
        body["subject"] = request.subject
    if request.text:
        body["content"] = [{"type": "text/plain", "value": request.text}]
    if request.template_id is not None:
        body["template_id"] = request.template_id
    return body


def message_body(request: EmailRequest) -> str:
    """What `Message.body` says was sent: the text, or the template's id."""
    if request.template_id is not None:
        return f"template {request.template_id}"
    return request.text or ""


def to_message(request: EmailRequest, message_id: str, *, created_at: datetime, mail: dict[str, Any]) -> Message:
    """The shared model for a mail SendGrid accepted (202) under `X-Message-Id` `message_id`.

    SendGrid answers with an empty body, so `raw` keeps the id and the body that was sent.
    """
    return Message(
        id=message_id,
        to=request.to,
        body=message_body(request),
        channel="email",
        status="queued",
        created_at=created_at,
        provider=PROVIDER,
        raw={"x_message_id": message_id, "status_code": 202, "mail": mail},
    )


def message_id_of(event: Mapping[str, Any]) -> str | None:
    """The X-Message-Id of the mail an event is about: `sg_message_id` up to its first dot."""
    sg_message_id = event.get("sg_message_id")
    if not isinstance(sg_message_id, str) or not sg_message_id:
        return None
    return sg_message_id.split(".", 1)[0] or None


def to_status_event(event: Mapping[str, Any]) -> MessageStatusEvent | None:
    """The delivery status change an Event Webhook event reports; None for events that report none.

    A bounce of type "blocked" (the receiving server refused it for now, often for reputation)
    is "undelivered"; a bounce proper and a drop (suppressed, invalid) are "failed".
    """
    name = event.get("event")
    status = _STATUSES.get(name) if isinstance(name, str) else None
    message_id = message_id_of(event)
    if status is None or message_id is None:
        return None
    if name == "bounce" and event.get("type") == "blocked":
        status = "undelivered"
    return MessageStatusEvent(
        provider_message_id=message_id,
        status=status,
        error_detail=_detail(event),
        occurred_at=_timestamp(event.get("timestamp")),
    )


def _detail(event: Mapping[str, Any]) -> str | None:
    """The vendor's own words on a failure or delay: bounce status and reason, drop reason, deferral response."""
    keys = ("response",) if event.get("event") == "deferred" else ("status", "reason")
    parts = [str(event[key]).strip() for key in keys if isinstance(event.get(key), str | int) and str(event[key])]
    return ": ".join(parts) if parts else None


def _timestamp(value: object) -> datetime | None:
    """An event's `timestamp` (Unix seconds) as an aware datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None
