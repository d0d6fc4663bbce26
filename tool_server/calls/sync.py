"""What the transports need from the post-call sync, without knowing how it runs."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["CallSync"]


class CallSync(Protocol):
    """Starts and restarts a call's post-call sync. Both are safe to repeat."""

    async def submit(self, record_id: str) -> None:
        """Start the sync of a record whose final event arrived (once per record, however often called)."""
        ...

    async def resync(self, record_id: str, fields: tuple[str, ...]) -> str | None:
        """Send what a late event changed (`fields`) to the CRM, once per change; the job's name or None."""
        ...

    async def retry(self, record_id: str) -> list[str]:
        """Run the record's failed jobs again; returns their names (empty when none had failed)."""
        ...

    async def deliver_hook(self, subscription_id: str, payload: dict[str, Any]) -> None:
        """Deliver one event to one subscriber, durably and with retries (once per subscription and event id)."""
        ...

    async def fall_back_to_sms(self, message_id: str) -> None:
        """Text a failed WhatsApp follow-up's recipient by SMS instead (once per message)."""
        ...

    async def send_receipt(self, agent_id: str, provider: str, object_id: str) -> None:
        """Text whoever paid this link or invoice a receipt, durably (once per paid object)."""
        ...
