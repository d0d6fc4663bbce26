"""The messaging capability: text messages to a caller."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from integrations.capabilities.models import Message

__all__ = ["MessagingProvider"]


@runtime_checkable
class MessagingProvider(Protocol):
    """Sends (or, for the outbox, records) a text message to an E.164 number."""

    name: str

    async def send_sms(
        self,
        to: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Send one SMS; the same `idempotency_key` never sends a second one.

        `earlier_attempt_at` says an earlier attempt under the same key started then and its
        process died without an answer: a provider without server-side keys looks for the
        message that attempt may have sent before sending. Raises `RecipientOptedOutError` when
        the provider says the recipient unsubscribed.
        """
        ...
