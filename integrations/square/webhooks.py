"""Square's webhook as the server receives it: `x-square-hmacsha256-signature` checked, then payments as events.

Square signs each notification with the subscription's signature key:
base64(HMAC-SHA256(key, notification URL + raw body)), checked here with the SDK's own
`verify_signature`. `invoice.payment_made` becomes a `PaymentEvent` for the invoice; every other
event type is acknowledged and ignored. unconfirmed: Square documents no timestamp tolerance, so
replays are left to the server's per-event-id handling.
Docs: https://developer.squareup.com/docs/webhooks/step3validate
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from square.utils.webhooks_helper import verify_signature

from integrations.common.spec import PaymentEvent, WebhookEvent, WebhookRejectedError, WebhookReply, WebhookRequest

__all__ = ["MAX_BODY_BYTES", "SIGNATURE_HEADER", "handle", "payment_event"]

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
# Square notifications are a few kilobytes; a larger body is refused before any HMAC is computed.
MAX_BODY_BYTES = 512 * 1024


def payment_event(notification: dict[str, Any]) -> PaymentEvent | None:
    """`invoice.payment_made` as a `PaymentEvent` (amount: what the payment requests have collected)."""
    data = notification.get("data")
    if notification.get("type") != "invoice.payment_made" or not isinstance(data, dict):
        return None
    wrapped = data.get("object")
    paid = wrapped.get("invoice") if isinstance(wrapped, dict) else None
    invoice_id = data.get("id")
    if not isinstance(invoice_id, str) or not isinstance(paid, dict):
        return None
    amounts = [r.get("total_completed_amount_money") or {} for r in paid.get("payment_requests") or []]
    total = sum(int(money.get("amount") or 0) for money in amounts)
    currency = next((str(money["currency"]) for money in amounts if money.get("currency")), None)
    return PaymentEvent(invoice_id, "invoice", str(notification.get("event_id", "")), total or None, currency)


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook for kind `events`: verify the signature over URL + body, then map."""
    if request.kind != "events":
        raise WebhookRejectedError(f"square sends no {request.kind!r} callback", status=400)
    if len(request.body) > MAX_BODY_BYTES:
        raise WebhookRejectedError("the body is larger than any Square notification", status=400)
    key = secrets.get("webhook_signature_key", "")
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not key or not header:
        raise WebhookRejectedError("the signature header or the subscription's signature key is missing")
    body = request.body.decode("utf-8", "replace")
    if not verify_signature(
        request_body=body, signature_header=header, signature_key=key, notification_url=request.url
    ):
        raise WebhookRejectedError("x-square-hmacsha256-signature does not match")
    try:
        notification = json.loads(request.body)
    except ValueError:
        raise WebhookRejectedError("the body is not a Square notification", status=400) from None
    if not isinstance(notification, dict):
        raise WebhookRejectedError("the body is not a Square notification", status=400)
    payment = payment_event(notification)
    return ([payment] if payment is not None else []), WebhookReply(status=200)
