"""Turning what happened into hook deliveries: tool writes (through the dispatcher) and explicit events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tool_server.agents.models import Agent
from tool_server.calls.sync import CallSync
from tool_server.clock import Clock
from tool_server.dispatch import CallInfo
from tool_server.hooks.events import HookEvent, envelope
from tool_server.hooks.subscriptions import HookSubscriptions

__all__ = ["HookEmitter", "event_of_tool"]

logger = logging.getLogger(__name__)


def event_of_tool(tool: str, result: dict[str, Any]) -> tuple[HookEvent, str, dict[str, Any]] | None:
    """The event a successful tool write means, with an id that is the same however often it is seen."""
    appointment = result.get("appointment")
    if tool in ("book_appointment", "reschedule_appointment") and isinstance(appointment, dict):
        # A moved appointment is booked again at its new time: a new event.
        event_id = f"appointment.booked:{appointment.get('appointment_id')}:{appointment.get('start')}"
        return "appointment.booked", event_id, _without_speech(appointment)
    if tool == "cancel_appointment" and isinstance(appointment, dict):
        return (
            "appointment.cancelled",
            f"appointment.cancelled:{appointment.get('appointment_id')}",
            _without_speech(appointment),
        )
    contact = result.get("contact")
    if tool == "create_contact" and result.get("created") and isinstance(contact, dict):
        return "contact.created", f"contact.created:{contact.get('contact_id')}", dict(contact)
    return None


def _without_speech(view: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in view.items() if key != "spoken"}


class HookEmitter:
    """Starts one durable delivery per subscriber of an event. Deliveries need the post-call engine."""

    def __init__(self, subscriptions: HookSubscriptions, sync: Callable[[], CallSync | None], clock: Clock) -> None:
        self._subscriptions = subscriptions
        self._sync = sync
        self._clock = clock

    async def emit(
        self, agent_id: str, event: HookEvent, event_id: str, data: dict[str, Any], at: datetime | None = None
    ) -> int:
        """Deliver `event` to each of the agent's subscribers; answers how many deliveries were started."""
        subscribers = await self._subscriptions.of_agent(agent_id, event)
        if not subscribers:
            return 0
        sync = self._sync()
        if sync is None:
            logger.warning("hook event %s not delivered: no post-call engine runs in this process", event)
            return 0
        payload = envelope(event, event_id, agent_id, data, at or self._clock())
        for subscriber in subscribers:
            await sync.deliver_hook(subscriber.id, payload)
        return len(subscribers)

    async def observe(self, agent: Agent, tool: str, result: dict[str, Any], call: CallInfo) -> None:
        """The dispatcher's observer: a booking, a cancellation or a new contact becomes its event."""
        found = event_of_tool(tool, result)
        if found is None:
            return
        event, event_id, data = found
        if event not in await self._subscriptions.events_of(agent.id):
            return  # no subscriber: the common case costs no query (the set is cached)
        await self.emit(agent.id, event, event_id, {**data, "call_id": call.call_id})
