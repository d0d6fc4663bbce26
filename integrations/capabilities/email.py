"""The email capability: one email to a caller, as text or a provider-side template."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from integrations.capabilities.models import EmailRequest, Message

__all__ = ["EmailProvider"]


@runtime_checkable
class EmailProvider(Protocol):
    """Sends (or, for the outbox, records) one email."""

    name: str

    async def send_email(self, request: EmailRequest) -> Message:
        """Send `request`; answers a `Message` with `channel="email"` and the provider's message id.

        The same `request.idempotency_key` never sends a second email. Raises
        `RecipientOptedOutError` when the address unsubscribed or bounced for good (suppressed),
        `ConfigurationError` for a sender the provider refuses.
        """
        ...
