"""Pure functions between Twilio's Message resource and the shared `Message` model.

Resource reference: https://www.twilio.com/docs/messaging/api/message-resource
WhatsApp addresses: https://www.twilio.com/docs/whatsapp/api#using-phone-numbers-with-whatsapp
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from integrations.capabilities.models import Message
from integrations.twilio.errors import PROVIDER
from integrations.twilio.settings import TwilioSettings
from integrations.twilio.webhooks import WHATSAPP_PREFIX

if TYPE_CHECKING:
    from integrations.twilio.ledger import Attempt

__all__ = [
    "content_variables",
    "create_params",
    "parse_rfc2822",
    "sender_of",
    "template_body",
    "to_message",
    "whatsapp_address",
]


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


def whatsapp_address(e164: str) -> str:
    """The WhatsApp channel address Twilio expects for an E.164 number: "whatsapp:+1…"."""
    return WHATSAPP_PREFIX + e164


def content_variables(variables: Mapping[str, str]) -> str:
    """The ContentVariables parameter: the variables as a compact JSON object string, {"1":"Ann"}."""
    return json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)


def template_body(name: str, variables_json: str) -> str:
    """`Message.body` for a template send: "template <name> <variables JSON>"."""
    return f"template {name} {variables_json}"


def to_message(payload: Mapping[str, Any], *, fallback_created_at: datetime, body: str | None = None) -> Message:
    """The shared model for one Twilio Message resource, keeping the whole payload as `raw`.

    `body` replaces the resource's body (a template send reports its name and variables).
    """
    to = str(payload.get("to") or "")
    return Message(
        id=str(payload["sid"]),
        to=to.removeprefix(WHATSAPP_PREFIX),
        body=str(payload.get("body") or "") if body is None else body,
        channel="whatsapp" if to.startswith(WHATSAPP_PREFIX) else "sms",
        status=str(payload.get("status") or "queued"),
        created_at=parse_rfc2822(payload.get("date_created")) or fallback_created_at,
        provider=PROVIDER,
        raw=dict(payload),
    )


def sender_of(settings: TwilioSettings) -> str:
    """The configured SMS sender: the From number, or the Messaging Service SID."""
    sender = settings.from_number or settings.messaging_service_sid
    if sender is None:  # the settings model guarantees one of them
        raise AssertionError("TwilioSettings without a sender")
    return sender


def create_params(attempt: Attempt, settings: TwilioSettings, status_callback: str | None) -> dict[str, str]:
    """Keyword arguments for the SDK's `messages.create`.

    SMS: To, From or MessagingServiceSid, Body. WhatsApp: To and From as "whatsapp:" addresses,
    then Body for free text, or ContentSid (+ ContentVariables) and no Body for a template.
    StatusCallback in both cases, unless turned off.
    """
    params = {"to": attempt.to}
    if attempt.channel == "whatsapp":
        params["from_"] = attempt.sender
    elif settings.messaging_service_sid is not None:
        params["messaging_service_sid"] = settings.messaging_service_sid
    else:
        params["from_"] = sender_of(settings)
    if attempt.template is None:
        params["body"] = attempt.body
    else:
        params["content_sid"] = attempt.template.content_sid
        if attempt.template.variables:
            params["content_variables"] = attempt.template.variables_json
    if status_callback is not None:
        params["status_callback"] = status_callback
    return params
