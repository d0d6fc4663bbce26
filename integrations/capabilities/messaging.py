"""The messaging capability: texts to a caller, by SMS and (where the provider has it) WhatsApp."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from integrations.capabilities.models import Message, WhatsAppTemplate

__all__ = ["MessagingProvider", "WhatsAppSender"]


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


@runtime_checkable
class WhatsAppSender(Protocol):
    """A messaging provider that also sends WhatsApp messages.

    The caller (the tool server) decides free text versus template: free text only inside the
    24-hour customer-service window the recipient's last inbound WhatsApp message opened, an
    approved template otherwise. The provider sends what it is given.
    """

    name: str

    def whatsapp_templates(self) -> list[str]:
        """The template names this connection can send (empty when WhatsApp is not set up)."""
        ...

    async def send_whatsapp(
        self,
        to: str,
        *,
        body: str | None = None,
        template: WhatsAppTemplate | None = None,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Send one WhatsApp message to `to` (E.164, no `whatsapp:` prefix): `body` or `template`, exactly one.

        Raises `ConfigurationError` when the connection has no WhatsApp sender or does not know
        the template, `RecipientOptedOutError` when the recipient unsubscribed. A message sent
        outside the window is accepted and fails later (Twilio error 63016, in a status callback).
        """
        ...
