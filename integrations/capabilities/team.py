"""The team capability: a short message to the business's own channel (Slack, say)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from integrations.capabilities.models import TeamMessage, TeamPost

__all__ = ["TeamNotifier"]


@runtime_checkable
class TeamNotifier(Protocol):
    """Posts (or, for the outbox, records) a message to the connection's team channel."""

    name: str

    async def post_team_message(self, message: TeamMessage) -> TeamPost:
        """Post `message`; the same `message.idempotency_key` never posts twice.

        Raises `ConfigurationError` when the channel is missing or the bot is not in it (the
        message says how to fix it), `ProviderNotConnectedError` when the token was revoked.
        """
        ...
