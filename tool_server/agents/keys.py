"""API keys: random, shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a fast hash is the right tool (a slow password hash
buys nothing against guessing and costs latency on every call).
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["KEY_PREFIX", "generate_key", "hash_key"]

KEY_PREFIX = "tsk_"


def generate_key() -> str:
    """A new API key such as `tsk_Zp3…`."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
