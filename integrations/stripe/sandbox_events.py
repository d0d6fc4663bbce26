"""The Stripe emulator's webhook deliveries: events signed as Stripe signs them, queued for the server.

A test takes them with `StripeState.take_callbacks()`; a demo asks the emulator to post them
(`POST /sandbox/stripe/_callbacks/deliver`, loopback only). The endpoint's signing secret is the
fixed sandbox one below (a real endpoint shows its own `whsec_…` in the Dashboard).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SANDBOX_WEBHOOK_SECRET", "StripeCallback", "event", "signed"]

# Sandbox only: signs the emulator's events; never a real endpoint's secret.
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_ToolServerStripeEmulator00"


@dataclass(frozen=True)
class StripeCallback:
    """One signed webhook delivery: where, its headers, its raw JSON body."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def event(event_type: str, data_object: dict[str, Any], api_version: str, now: int) -> dict[str, Any]:
    """A Stripe Event object wrapping `data_object` (https://docs.stripe.com/api/events/object)."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": api_version,
        "created": now,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signed(url: str, payload: dict[str, Any], secret: str = SANDBOX_WEBHOOK_SECRET) -> StripeCallback:
    """The delivery Stripe would make: `Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": f"t={timestamp},v1={digest}"}
    return StripeCallback(url=url, body=body, headers=headers)
