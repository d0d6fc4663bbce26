"""The calendar a tool books through: the agent's provider behind the server's slot claims."""

from __future__ import annotations

from tool_server.slots.guard import GuardedCalendar
from tool_server.slots.store import Claimant
from tool_server.tools.base import ToolContext

__all__ = ["calendar_for"]


def calendar_for(ctx: ToolContext, *, phone: str | None = None, email: str | None = None) -> GuardedCalendar:
    """The agent's calendar for this caller (known by call id, and by phone or email when given)."""
    if ctx.holds is None:
        raise RuntimeError("the dispatcher was built without slot holds")
    claimant = Claimant(call_id=ctx.call_id, phone=phone, email=email)
    return GuardedCalendar(ctx.providers.calendar(), ctx.holds, ctx.agent.id, claimant, ctx.agent.hold_minutes)
