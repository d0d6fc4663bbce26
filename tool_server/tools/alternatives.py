"""SLOT_UNAVAILABLE with the nearest free slots to offer instead."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integrations.capabilities.models import elapsed
from tool_server.errors import ErrorCode, ToolError
from tool_server.slots.guard import GuardedCalendar
from tool_server.spoken import spoken_datetime
from tool_server.tools.base import ToolContext
from tool_server.tools.views import slot_view, speak_slots

__all__ = ["slot_unavailable"]


async def slot_unavailable(
    ctx: ToolContext,
    calendar: GuardedCalendar,
    start: datetime,
    duration: timedelta,
    zone: ZoneInfo,
    reason: str,
) -> ToolError:
    """SLOT_UNAVAILABLE carrying the free slots nearest to the requested start."""
    alternatives = []
    for days_after in (3, 14):
        window_start = max(start - timedelta(days=1), ctx.now)
        candidates = await calendar.free_slots(window_start, start + timedelta(days=days_after), duration)
        if candidates:
            nearest = sorted(candidates, key=lambda slot: abs(elapsed(start, slot.start)))[:3]
            alternatives = sorted(nearest, key=lambda slot: slot.start)
            break
    today = ctx.now.astimezone(zone).date()
    local = start.astimezone(zone)
    asked = spoken_datetime(local, today)
    if alternatives:
        same_day = alternatives[0].start.astimezone(zone).date() == local.date()
        offer = speak_slots([slot.start for slot in alternatives], zone, today, first_day_known=same_day)
        speech = f"Sorry, {asked} isn't available. I could do {offer} instead."
    else:
        speech = f"Sorry, {asked} isn't available, and I don't see other openings soon."
    return ToolError(
        ErrorCode.SLOT_UNAVAILABLE,
        f"{local.isoformat()} cannot be booked: {reason}. Offer one of details.alternatives instead.",
        speech=speech,
        details={"reason": reason, "alternatives": [slot_view(s, zone, today).model_dump() for s in alternatives]},
    )
