"""Stripe's webhook as the server receives it: `Stripe-Signature` checked, then payments turned into events.

Stripe signs each delivery: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(endpoint secret, "t.body")>`,
and a delivery older than five minutes is refused (replays). `checkout.session.completed` with
`payment_status: paid` (a payment link paid) and `invoice.paid` become a `PaymentEvent`; every other
event type is acknowledged and ignored.
Docs: https://docs.stripe.com/webhooks#verify-events
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

from integrations.common.spec import PaymentEvent, WebhookEvent, WebhookRejectedError, WebhookReply, WebhookRequest

__all__ = ["MAX_BODY_BYTES", "TOLERANCE_SECONDS", "handle"]

TOLERANCE_SECONDS = 300
# Stripe events are a few kilobytes; a larger body is refused before any HMAC is computed.
MAX_BODY_BYTES = 512 * 1024


def _payment(event: dict[str, Any]) -> PaymentEvent | None:
    data = event.get("data")
    paid = data.get("object") if isinstance(data, dict) else None
    if not isinstance(paid, dict) or not isinstance(paid.get("id"), str):
        return None
    event_id = str(event.get("id", ""))
    if event.get("type") == "checkout.session.completed" and paid.get("payment_status") == "paid":
        return PaymentEvent(paid["id"], "payment_link", event_id, paid.get("amount_total"), paid.get("currency"))
    if event.get("type") == "invoice.paid":
        return PaymentEvent(paid["id"], "invoice", event_id, paid.get("amount_paid"), paid.get("currency"))
    return None


def handle(request: WebhookRequest, secrets: Mapping[str, str]) -> tuple[list[WebhookEvent], WebhookReply]:
    """The server's webhook hook for kind `events`: verify, then map the event."""
    if request.kind != "events":
        raise WebhookRejectedError(f"stripe sends no {request.kind!r} callback", status=400)
    if len(request.body) > MAX_BODY_BYTES:
        raise WebhookRejectedError("the body is larger than any Stripe event", status=400)
    secret = secrets.get("webhook_secret", "")
    header = request.headers.get("stripe-signature", "")
    if not secret or not header:
        raise WebhookRejectedError("Stripe-Signature or the endpoint secret is missing")
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode("utf-8", "replace"), header, secret, TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError:
        raise WebhookRejectedError("Stripe-Signature does not match") from None
    try:
        event = json.loads(request.body)
    except ValueError:
        raise WebhookRejectedError("the body is not a Stripe event", status=400) from None
    if not isinstance(event, dict):
        raise WebhookRejectedError("the body is not a Stripe event", status=400)
    payment = _payment(event)
    return ([payment] if payment is not None else []), WebhookReply(status=200)
