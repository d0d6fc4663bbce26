"""Pure functions between Twilio's Message resource and the shared `Message` model.

Resource reference: https://www.twilio.com/docs/messaging/api/message-resource
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from integrations.capabilities.models import Message
from integrations.twilio.errors import PROVIDER
from integrations.twilio.settings import TwilioSettings

__all__ = ["create_params", "parse_rfc2822", "sender_of", "to_message"]

_WHATSAPP = "whatsapp:"


def parse_rfc2822(value: object) -> datetime | None:
    """Twilio's timestamps ("Thu, 24 Aug 2023 05:01:45 +0000") as aware datetimes; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # A "-0000" zone parses as naive; Twilio's timestamps are GMT either way.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def to_message(payload: Mapping[str, Any], *, fallback_created_at: datetime) -> Message:
    """The shared model for one Twilio Message resource, keeping the whole payload as `raw`."""
    to = str(payload.get("to") or "")
    return Message(
        id=str(payload["sid"]),
        to=to.removeprefix(_WHATSAPP),
        body=str(payload.get("body") or ""),
        channel="whatsapp" if to.startswith(_WHATSAPP) else "sms",
        status=str(payload.get("status") or "queued"),
        created_at=parse_rfc2822(payload.get("date_created")) or fallback_created_at,
        provider=PROVIDER,
        raw=dict(payload),
    )


def sender_of(settings: TwilioSettings) -> str:
    """The configured sender: the From number, or the Messaging Service SID."""
    sender = settings.from_number or settings.messaging_service_sid
    if sender is None:  # the settings model guarantees one of them
        raise AssertionError("TwilioSettings without a sender")
    return sender


def create_params(to: str, body: str, settings: TwilioSettings, status_callback: str | None) -> dict[str, str]:
    """Keyword arguments for the SDK's `messages.create` (To, From or MessagingServiceSid, Body, StatusCallback)."""
    params = {"to": to, "body": body}
    if settings.messaging_service_sid is not None:
        params["messaging_service_sid"] = settings.messaging_service_sid
    else:
        params["from_"] = sender_of(settings)
    if status_callback is not None:
        params["status_callback"] = status_callback
    return params
