"""The automation capability: hand an event to the business's own workflows (a Zapier catch hook, say)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from integrations.capabilities.models import WorkflowRun

__all__ = ["AutomationProvider"]


@runtime_checkable
class AutomationProvider(Protocol):
    """Delivers (or, for the outbox, records) one event with its data."""

    name: str

    async def trigger_workflow(
        self, event: str, data: dict[str, Any], *, idempotency_key: str | None = None
    ) -> WorkflowRun:
        """Deliver `event` with `data`; any 2xx from the automation counts as accepted.

        The same `idempotency_key` is sent along (as `Idempotency-Key`) for automations that
        deduplicate; the tool server never triggers twice under one key.
        """
        ...
