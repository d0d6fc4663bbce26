"""Encrypting connection credentials at rest.

Keys come from `TOOL_SERVER_SECRET_KEY` (any strings, comma-separated; each is stretched to a
Fernet key with SHA-256). With no key set, one is generated into `secret_key_file` so the
embedded default works on a fresh machine; production sets the variable. Rotation follows
`MultiFernet`: put the new key first, keep the old one after it, run `tool-server keys rotate`,
then remove the old key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tool_server.settings import ServerSettings

__all__ = ["SecretBox", "SecretKeyError"]

logger = logging.getLogger(__name__)


class SecretKeyError(Exception):
    """Stored credentials cannot be decrypted with the configured keys."""


def _fernet(material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode("utf-8")).digest()))


def _key_material(settings: ServerSettings) -> list[str]:
    if settings.secret_key is not None:
        keys = [part.strip() for part in settings.secret_key.get_secret_value().split(",") if part.strip()]
        if keys:
            return keys
    path = settings.secret_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        logger.warning("TOOL_SERVER_SECRET_KEY is not set; generated a local key in %s", path)
    return [Path(path).read_text().strip()]


class SecretBox:
    """Encrypts and decrypts one connection's secrets as a single token."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is needed")
        self._box = MultiFernet([_fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> SecretBox:
        return cls(_key_material(settings))

    def seal(self, secrets_: dict[str, str]) -> str:
        return self._box.encrypt(json.dumps(secrets_, sort_keys=True).encode("utf-8")).decode("ascii")

    def open(self, token: str) -> dict[str, str]:
        try:
            data = json.loads(self._box.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise SecretKeyError(
                "stored credentials cannot be decrypted: TOOL_SERVER_SECRET_KEY does not hold the key they were "
                "sealed with"
            ) from None
        return {str(key): str(value) for key, value in dict(data).items()}

    def rotate(self, token: str) -> str:
        """The same secrets sealed under the first (newest) key."""
        try:
            return self._box.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError("stored credentials cannot be decrypted with any configured key") from None
