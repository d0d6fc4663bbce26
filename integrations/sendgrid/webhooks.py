"""SendGrid's Event Webhook as the server receives it: signature check, then delivery status events.

SendGrid posts a JSON array of events, signed with ECDSA (P-256, SHA-256) over the
`X-Twilio-Email-Event-Webhook-Timestamp` header followed by the raw body; the base64 DER
signature is in `X-Twilio-Email-Event-Webhook-Signature`. The connection's secret
`event_webhook_public_key` is the verification key SendGrid shows (base64 DER).
Docs: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features

SendGrid documents no replay window and retries a failed POST for up to 24 hours, so the
timestamp is not held to one; applying the same status twice changes nothing.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from integrations.common.spec import WebhookEvent, WebhookRejectedError, WebhookReply, WebhookRequest
from integrations.sendgrid.mappers import to_status_event

__all__ = ["MAX_BODY_BYTES", "PUBLIC_KEY_SECRET", "handle", "verify"]

PUBLIC_KEY_SECRET = "event_webhook_public_key"
# SendGrid posts batches of events; far below this. A larger body is refused before any crypto.
# unconfirmed: SendGrid's maximum batch size (a few hundred kilobytes is what integrators report).
MAX_BODY_BYTES = 4 * 1024 * 1024


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def verify(body: bytes, headers: Mapping[str, str], public_key: str) -> bool:
    """Whether `body` carries SendGrid's valid signature under `public_key` (base64 DER, as SendGrid shows it)."""
    signature = _header(headers, EventWebhookHeader.SIGNATURE)
    timestamp = _header(headers, EventWebhookHeader.TIMESTAMP)
    if not public_key or not signature or not timestamp:
        return False
    try:
        # https://github.com/sendgrid/sendgrid-python/blob/main/sendgrid/helpers/eventwebhook/__init__.py
        verifier = EventWebhook(public_key)
        valid: bool = verifier.verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, TypeError, binascii.Error):
        # A malformed key, a signature that is not base64 or a body that is not UTF-8: not SendGrid's.
        return False
    return valid


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise WebhookRejectedError("the Event Webhook body is not JSON", status=400) from None
    if not isinstance(payload, list) or not all(isinstance(event, dict) for event in payload):
        raise WebhookRejectedError("the Event Webhook body is not a JSON array of events", status=400)
    return payload


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook for kind `events`: verify the signature, then map each event.

    processed -> sent, deferred, delivered, open -> read, bounce -> failed ("undelivered" for
    a blocked one), dropped -> failed; other events (click, spam report, unsubscribes) are
    acknowledged and change nothing. SendGrid wants a 2xx, or it retries.
    """
    if request.kind != "events":
        raise WebhookRejectedError(f"sendgrid sends no {request.kind!r} callback", status=400)
    if len(request.body) > MAX_BODY_BYTES:
        raise WebhookRejectedError("the Event Webhook body is larger than SendGrid sends", status=400)
    public_key = secrets.get(PUBLIC_KEY_SECRET, "")
    if not public_key:
        raise WebhookRejectedError(f"the connection has no {PUBLIC_KEY_SECRET} to verify SendGrid's signature")
    if not verify(request.body, request.headers, public_key):
        raise WebhookRejectedError("the Event Webhook signature does not match")
    events: list[WebhookEvent] = []
    for event in _events(request.body):
        status = to_status_event(event)
        if status is not None:
            events.append(status)
    return events, WebhookReply(status=200)
