"""One signed POST of an event to a subscriber, and what its answer means.

The signature is HMAC-SHA256 with the subscription's secret over `"<timestamp>.<body>"`, sent as
`X-Hook-Signature: t=<unix seconds>,v1=<hex>` (the scheme Stripe uses, which n8n and Make users
already know how to check). A subscriber should recompute it over the raw body, compare in
constant time, and refuse a timestamp more than five minutes old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

__all__ = ["HookGoneError", "HookRetryError", "deliver_once", "sign", "verify"]

SIGNATURE_HEADER = "X-Hook-Signature"
TOLERANCE_SECONDS = 300


class HookGoneError(Exception):
    """The subscriber answered 410 Gone: it unsubscribed itself."""


class HookRetryError(Exception):
    """Worth trying again later (5xx, 429, timeout, refused connection); `retry_after` when the target said."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class HookRefusedError(Exception):
    """The subscriber refused the delivery for good (a 4xx other than 410 and 429)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a subscriber does with `X-Hook-Signature` (used by the tests and shown in the README)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


async def deliver_once(
    url: str, secret: str, payload: dict[str, Any], *, subscription_id: str, timestamp: int, wait_seconds: float = 10.0
) -> int:
    """POST `payload` signed; answers the 2xx status, or raises what the answer means."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "X-Hook-Id": str(payload.get("id", "")),
        "X-Hook-Event": str(payload.get("event", "")),
        "X-Hook-Subscription": subscription_id,
        "User-Agent": "voice-tool-server-hooks/1",
    }
    try:
        async with httpx.AsyncClient(timeout=wait_seconds, follow_redirects=False) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise HookRetryError(f"the subscriber could not be reached ({type(error).__name__})") from None
    status = response.status_code
    if status == 410:
        raise HookGoneError("the subscriber answered 410 Gone")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        raise HookRetryError(f"the subscriber answered {status}", float(retry_after) if retry_after.isdigit() else None)
    if status >= 300:
        raise HookRefusedError(f"the subscriber refused the delivery with {status}")
    return status
