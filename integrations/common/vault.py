"""Where a connector's secrets live. Connectors read and update them only through this protocol.

The tool server implements it over encrypted database columns; tests use `MemoryVault`.
Secrets never appear in settings, logs or error messages.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["CredentialVault", "MemoryVault"]


@runtime_checkable
class CredentialVault(Protocol):
    """One connection's secrets: API keys, OAuth client secrets and tokens."""

    async def load(self) -> dict[str, str]:
        """The current secrets (e.g. {"access_token": …, "refresh_token": …, "expires_at": …})."""
        ...

    async def reload(self) -> dict[str, str]:
        """The secrets as stored right now, past any cache: another process, or another connection
        sharing the same grant, may just have rotated a refresh token."""
        ...

    async def save(self, updates: dict[str, str]) -> None:
        """Merge `updates` into the stored secrets (e.g. a refreshed access token)."""
        ...

    async def mark_expired(self, reason: str) -> None:
        """The credentials no longer work (revoked refresh token): the connection must be redone."""
        ...


class MemoryVault:
    """A vault held in memory, for tests and one-off scripts."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets = dict(secrets or {})
        self.expired_reason: str | None = None

    async def load(self) -> dict[str, str]:
        return dict(self.secrets)

    async def reload(self) -> dict[str, str]:
        return dict(self.secrets)

    async def save(self, updates: dict[str, str]) -> None:
        self.secrets.update(updates)

    async def mark_expired(self, reason: str) -> None:
        self.expired_reason = reason
