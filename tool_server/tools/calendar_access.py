"""The calendar a tool books through: the agent's provider behind the server's slot claims."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tool_server.errors import ToolError
from tool_server.slots.guard import GuardedCalendar
from tool_server.slots.store import Claimant
from tool_server.timeparse import parse_start
from tool_server.tools.base import ToolContext

__all__ = ["calendar_for", "future_start", "zone_for"]


def calendar_for(ctx: ToolContext, *, phone: str | None = None, email: str | None = None) -> GuardedCalendar:
    """The agent's calendar for this caller (known by call id, and by phone or email when given)."""
    if ctx.holds is None:
        raise RuntimeError("the dispatcher was built without slot holds")
    claimant = Claimant(call_id=ctx.call_id, phone=phone, email=email)
    return GuardedCalendar(ctx.providers.calendar(), ctx.holds, ctx.agent.id, claimant, ctx.agent.hold_minutes)


def zone_for(ctx: ToolContext, name: str | None) -> ZoneInfo:
    """The zone the caller named (already validated by the field), else the business's."""
    return ZoneInfo(name) if name else ctx.zone


def future_start(ctx: ToolContext, text: str, zone: ZoneInfo, field: str) -> datetime:
    """A start the caller gave, read in `zone`; VALIDATION_ERROR naming `field` when it has passed."""
    start = parse_start(text, zone, field)
    if start <= ctx.now:
        raise ToolError.invalid(
            field,
            f"{start.isoformat()} is in the past (now is {ctx.now.astimezone(zone).isoformat(timespec='minutes')})",
            speech="That time has already passed. When would you like to come in?",
        )
    return start
