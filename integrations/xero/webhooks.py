"""Xero's webhook as the server receives it: `x-xero-signature` checked, then changed invoices as events.

Xero signs every delivery with the app's webhook key: base64(HMAC-SHA256(key, raw body)), the
key used as its UTF-8 text (not base64-decoded). A notification names what changed and no more
(`resourceId` of an INVOICE that was created or updated), so each INVOICE event becomes an
`InvoiceChangedEvent`; the server reads the invoice back to learn whether it is now paid.
CONTACT (and any other category) events are acknowledged and ignored.

Intent to receive: when a webhook is created, re-enabled or given a new URL, Xero posts payloads
with `"events": []`, some signed correctly (it expects 200 with no body) and some signed wrongly
(it expects 401). So a correctly signed empty payload answers 200 with nothing to apply, and a
bad signature is always `WebhookRejectedError` (401), before the body is parsed.
Docs: https://developer.xero.com/documentation/guides/webhooks/configuring-your-server
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from integrations.common.spec import (
    InvoiceChangedEvent,
    WebhookEvent,
    WebhookRejectedError,
    WebhookReply,
    WebhookRequest,
)

__all__ = ["MAX_BODY_BYTES", "SIGNATURE_HEADER", "WEBHOOK_KEY_SECRET", "handle", "invoice_events"]

SIGNATURE_HEADER = "x-xero-signature"
# The connection secret holding the key Xero shows on the app's Webhooks page.
WEBHOOK_KEY_SECRET = "webhook_key"
# unconfirmed: Xero documents no maximum; it batches events per delivery, each about 300 bytes,
# so 1 MiB is generous. A larger body is refused before any HMAC is computed.
MAX_BODY_BYTES = 1024 * 1024


def _signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def invoice_events(payload: Mapping[str, Any]) -> list[InvoiceChangedEvent]:
    """One `InvoiceChangedEvent` per INVOICE event in a verified payload, in the payload's order.

    Xero gives events no id of their own, so the event id is built from what identifies the change:
    tenant, invoice, time and type. A redelivery of the same payload yields the same ids.
    """
    found: list[InvoiceChangedEvent] = []
    for event in payload.get("events") or []:
        if not isinstance(event, dict) or event.get("eventCategory") != "INVOICE":
            continue
        invoice_id = event.get("resourceId")
        if not isinstance(invoice_id, str) or not invoice_id:
            continue
        parts = (event.get("tenantId"), invoice_id, event.get("eventDateUtc"), event.get("eventType"))
        found.append(InvoiceChangedEvent(invoice_id=invoice_id, event_id=":".join(str(p or "") for p in parts)))
    return found


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook for kind `events`: verify the signature over the raw body, then map.

    Answers 200 with an empty body, as Xero requires (and within its 5 seconds: nothing here waits).
    """
    if request.kind != "events":
        raise WebhookRejectedError(f"xero sends no {request.kind!r} callback", status=400)
    if len(request.body) > MAX_BODY_BYTES:
        raise WebhookRejectedError("the body is larger than any Xero notification", status=400)
    key = secrets.get(WEBHOOK_KEY_SECRET, "")
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not key or not header:
        raise WebhookRejectedError("the x-xero-signature header or the app's webhook key is missing")
    # Constant-time, over the bytes as received: re-serialised JSON would not match.
    if not hmac.compare_digest(_signature(key, request.body).encode(), header.strip().encode()):
        raise WebhookRejectedError("x-xero-signature does not match")
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise WebhookRejectedError("the body is not a Xero notification", status=400) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise WebhookRejectedError("the body is not a Xero notification", status=400)
    events: list[WebhookEvent] = list(invoice_events(payload))
    return events, WebhookReply(status=200)
