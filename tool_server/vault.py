"""The credential vault connectors see, backed by sealed columns in the database."""

from __future__ import annotations

import time

from integrations.capabilities import ConfigurationError
from tool_server.agents.repository import AgentRepository
from tool_server.secret_box import SecretKeyError

__all__ = ["DatabaseVault"]


class DatabaseVault:
    """One connection's secrets, decrypted on demand and cached briefly in this process.

    The cache spares a database read and a decryption per provider request; a token refreshed
    by another process is picked up within `cache_seconds` (an older token stays valid until it
    expires, so a stale read costs nothing).
    """

    def __init__(self, agents: AgentRepository, connection_id: str, *, cache_seconds: float = 30.0) -> None:
        self._agents = agents
        self._connection_id = connection_id
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, str]] | None = None

    async def load(self) -> dict[str, str]:
        if self._cached is not None and self._cached[0] > time.monotonic():
            return dict(self._cached[1])
        try:
            secrets = await self._agents.connection_secrets(self._connection_id)
        except SecretKeyError as error:
            raise ConfigurationError("TOOL_SERVER_SECRET_KEY", str(error)) from None
        self._cached = (time.monotonic() + self._cache_seconds, secrets)
        return dict(secrets)

    async def reload(self) -> dict[str, str]:
        self._cached = None
        return await self.load()

    async def save(self, updates: dict[str, str]) -> None:
        await self._agents.save_connection_secrets(self._connection_id, updates)
        self._cached = None

    async def mark_expired(self, reason: str) -> None:
        await self._agents.mark_connection_expired(self._connection_id, reason)
        self._cached = None
