"""What the transports need from the post-call sync, without knowing how it runs."""

from __future__ import annotations

from typing import Protocol

__all__ = ["CallSync"]


class CallSync(Protocol):
    """Starts and restarts a call's post-call sync. Both are safe to repeat."""

    async def submit(self, record_id: str) -> None:
        """Start the sync of a record whose final event arrived (once per record, however often called)."""
        ...

    async def retry(self, record_id: str) -> list[str]:
        """Run the record's failed jobs again; returns their names (empty when none had failed)."""
        ...
