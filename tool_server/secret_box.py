"""Encrypting connection credentials at rest.

Keys come from `TOOL_SERVER_SECRET_KEY` (any strings, comma-separated; each is stretched to a
Fernet key with SHA-256). With no key set, one is generated into `secret_key_file` (in the
server's home, 0600 in a 0700 folder) so the embedded default works on a fresh machine, and
every process finds the same key whatever its working directory; production sets the variable. Rotation follows
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

from tool_server.home import make_private_directory, tighten
from tool_server.settings import ServerSettings

__all__ = ["SecretBox", "SecretKeyError", "SecretKeyFileError"]

logger = logging.getLogger(__name__)


class SecretKeyError(Exception):
    """Stored credentials cannot be decrypted with the configured keys."""


class SecretKeyFileError(Exception):
    """The key file cannot be read or holds no key. The message names TOOL_SERVER_SECRET_KEY_FILE."""


def _fernet(material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode("utf-8")).digest()))


def _generate_key_file(path: Path) -> bool:
    """Write a new key to `path` (0600) unless a key is there already; True when this call wrote it.

    Written to a private temporary file first and then linked into place, so a process starting
    at the same moment reads either no file or the whole key, never an empty one.
    """
    make_private_directory(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        os.link(temporary, path)
    except FileExistsError:
        return False  # another process generated it first: theirs is read
    finally:
        temporary.unlink(missing_ok=True)
    return True


def _key_material(settings: ServerSettings) -> list[str]:
    if settings.secret_key is not None:
        keys = [part.strip() for part in settings.secret_key.get_secret_value().split(",") if part.strip()]
        if keys:
            return keys
    path = settings.secret_key_file
    try:
        if not path.exists() and _generate_key_file(path):
            logger.warning("TOOL_SERVER_SECRET_KEY is not set; generated a local key in %s", path)
        tighten(path)
        key = path.read_text().strip()
    except OSError as error:
        raise SecretKeyFileError(
            f"TOOL_SERVER_SECRET_KEY_FILE: cannot use {path} ({error.strerror or type(error).__name__})"
        ) from None
    if not key:
        raise SecretKeyFileError(f"TOOL_SERVER_SECRET_KEY_FILE: {path} holds no key")
    return [key]


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
