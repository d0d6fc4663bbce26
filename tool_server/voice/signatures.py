"""Each platform's request-signing scheme, verified on the raw body.

| platform   | header                               | signed                          | digest        | tolerance |
|------------|--------------------------------------|---------------------------------|---------------|-----------|
| Retell     | x-retell-signature: v=<ms>,d=<hex>   | raw body + v                    | HMAC-SHA256 hex | 5 min   |
| ElevenLabs | elevenlabs-signature: t=<s>,v0=<hex> | "{t}.{raw body}"                | HMAC-SHA256 hex | 30 min  |
| Vapi       | x-signature + x-timestamp (HMAC)     | "{timestamp}.{raw body}"        | HMAC-SHA256 hex | 5 min   |
| Vapi       | x-vapi-secret (legacy credential)    | the header equals the secret    | -               | none    |
| Bland      | x-webhook-signature                  | raw body                        | HMAC-SHA256 hex | none    |
| Synthflow  | http_synthflow_signature / synthflow-signature | the call_id           | HMAC-SHA256 base64 | none |

Sources: shared/reference/voice-platforms.md (Retell's webhook_auth.ts, ElevenLabs' HMAC snippet,
Vapi's HMACAuthenticationPlan defaults, Bland's and Synthflow's signing guides). Every compare is
constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from integrations.common.linear_regex import compile_linear

__all__ = [
    "SignatureError",
    "sign_bland",
    "sign_elevenlabs",
    "sign_retell",
    "sign_synthflow",
    "sign_vapi",
    "verify_bland",
    "verify_elevenlabs",
    "verify_retell",
    "verify_synthflow",
    "verify_vapi",
]

_RETELL_HEADER = compile_linear(r"v=(\d{1,20}),d=([0-9a-fA-F]{1,256})")
RETELL_TOLERANCE_MS = 5 * 60 * 1000
ELEVENLABS_TOLERANCE_S = 30 * 60
VAPI_TOLERANCE_S = 5 * 60


class SignatureError(Exception):
    """The request is not signed by the platform (missing, malformed, wrong or stale signature)."""


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().lower().encode(), expected.lower().encode())


def sign_retell(secret: str, body: bytes, timestamp_ms: int) -> str:
    return f"v={timestamp_ms},d={_hex(secret, body + str(timestamp_ms).encode())}"


def verify_retell(secret: str, body: bytes, header: str | None, now_ms: int) -> None:
    match = _RETELL_HEADER.fullmatch((header or "").strip()[:512])
    if not match:
        raise SignatureError("missing or malformed X-Retell-Signature")
    stamp = int(match.group(1))
    if abs(now_ms - stamp) > RETELL_TOLERANCE_MS:
        raise SignatureError("X-Retell-Signature timestamp is outside the 5-minute tolerance")
    if not _equal(match.group(2), _hex(secret, body + match.group(1).encode())):
        raise SignatureError("X-Retell-Signature does not match")


def sign_elevenlabs(secret: str, body: bytes, timestamp_s: int) -> str:
    return f"t={timestamp_s},v0={_hex(secret, f'{timestamp_s}.'.encode() + body)}"


def verify_elevenlabs(secret: str, body: bytes, header: str | None, now_s: int) -> None:
    parts = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    stamp, digest = parts.get("t", "").strip(), parts.get("v0", "").strip()
    if not stamp.isdigit() or not digest:
        raise SignatureError("missing or malformed ElevenLabs-Signature")
    if abs(now_s - int(stamp)) > ELEVENLABS_TOLERANCE_S:
        raise SignatureError("ElevenLabs-Signature timestamp is outside the 30-minute tolerance")
    if not _equal(digest, _hex(secret, f"{stamp}.".encode() + body)):
        raise SignatureError("ElevenLabs-Signature does not match")


def sign_vapi(secret: str, body: bytes, timestamp: int) -> str:
    return _hex(secret, f"{timestamp}.".encode() + body)


def verify_vapi(secret: str, body: bytes, headers: Mapping[str, str], now_s: int) -> None:
    """A Vapi HMAC credential (x-signature over "{x-timestamp}.{body}"), or a legacy X-Vapi-Secret."""
    legacy = headers.get("x-vapi-secret")
    if legacy is not None and not headers.get("x-signature"):
        if not hmac.compare_digest(legacy.encode(), secret.encode()):
            raise SignatureError("X-Vapi-Secret does not match")
        return
    signature = (headers.get("x-signature") or "").strip().removeprefix("sha256=")
    stamp = (headers.get("x-timestamp") or "").strip()
    if not signature or not stamp.isdigit():
        raise SignatureError("missing x-signature/x-timestamp (or X-Vapi-Secret)")
    # Vapi's docs do not say whether the timestamp is seconds or milliseconds: accept either.
    seconds = int(stamp) // 1000 if len(stamp) >= 13 else int(stamp)
    if abs(now_s - seconds) > VAPI_TOLERANCE_S:
        raise SignatureError("x-timestamp is outside the 5-minute tolerance")
    if not _equal(signature, _hex(secret, f"{stamp}.".encode() + body)):
        raise SignatureError("x-signature does not match")


def sign_bland(secret: str, body: bytes) -> str:
    return _hex(secret, body)


def verify_bland(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("missing X-Webhook-Signature")
    if not _equal(header, _hex(secret, body)):
        raise SignatureError("X-Webhook-Signature does not match")


def sign_synthflow(secret: str, call_id: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), call_id.encode(), hashlib.sha256).digest()).decode()


def verify_synthflow(secret: str, call_id: str, header: str | None) -> None:
    # Synthflow signs only the call id, so this proves the sender, not the body.
    if not header or not call_id:
        raise SignatureError("missing Synthflow signature or call_id")
    if not hmac.compare_digest(header.strip().encode(), sign_synthflow(secret, call_id).encode()):
        raise SignatureError("Synthflow signature does not match")
