"""check_availability: free slots on a day or over a range."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from integrations.capabilities import TimeSlot
from tool_server.errors import ToolError
from tool_server.spoken import spoken_day
from tool_server.timeparse import parse_day
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.calendar_access import calendar_for
from tool_server.tools.fields import DateText, TimeZoneName
from tool_server.tools.views import SlotView, slot_view, speak_slots, spread

__all__ = ["CHECK_AVAILABILITY", "CheckAvailabilityInput", "CheckAvailabilityResult"]

MAX_RANGE_DAYS = 31
LOOKAHEAD_DAYS = 14


class CheckAvailabilityInput(ToolInput):
    date: DateText | None = Field(
        default=None,
        description="First day to search: YYYY-MM-DD, 'today', 'tomorrow' or a weekday name "
        "(its next occurrence). Leave out to search the coming 7 days.",
        examples=["2026-03-09", "tomorrow", "friday"],
    )
    end_date: DateText | None = Field(
        default=None,
        description="Last day to search, inclusive, same formats as `date`; at most 31 days after it.",
        examples=["2026-03-13"],
    )
    duration_minutes: int | None = Field(
        default=None, ge=5, le=480, description="Appointment length. Defaults to the business's slot length."
    )
    time_of_day: Literal["morning", "afternoon", "evening"] | None = Field(
        default=None,
        description="Only slots starting in this part of the day, in `timezone`: morning before noon, "
        "afternoon noon to 5 PM, evening from 5 PM. For 'tomorrow morning': date 'tomorrow', time_of_day 'morning'.",
    )
    timezone: TimeZoneName | None = None
    max_slots: int = Field(default=5, ge=1, le=10, description="How many slots to offer at most.")


class CheckAvailabilityResult(ToolResult):
    timezone: str = Field(description="The zone every time in this result is given in.")
    date_from: str = Field(description="First day searched, YYYY-MM-DD.")
    date_to: str = Field(description="Last day searched, YYYY-MM-DD.")
    slots: list[SlotView] = Field(description="Free slots, spread across the range, in time order.")
    next_available: list[SlotView] = Field(
        default_factory=list, description="When the range is full: the first openings after it."
    )


# Where each part of the day starts and ends, in the caller's zone.
_PARTS_OF_DAY: dict[str, tuple[time, time | None]] = {
    "morning": (time(0), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), None),
}


def _in_part_of_day(slots: list[TimeSlot], part: str | None, zone: ZoneInfo) -> list[TimeSlot]:
    if part is None:
        return slots
    begins, ends = _PARTS_OF_DAY[part]
    return [
        slot
        for slot in slots
        if begins <= slot.start.astimezone(zone).time() and (ends is None or slot.start.astimezone(zone).time() < ends)
    ]


def _part_words(part: str | None) -> str:
    return f" in the {part}" if part else ""


def _range_words(first: date, last: date, today: date) -> str:
    if first == last:
        day = spoken_day(first, today)
        return day if day in ("today", "tomorrow") else f"on {day}"
    return f"between {spoken_day(first, today)} and {spoken_day(last, today)}"


async def check_availability(ctx: ToolContext, args: CheckAvailabilityInput) -> CheckAvailabilityResult:
    zone = ZoneInfo(args.timezone) if args.timezone else ctx.zone
    today = ctx.now.astimezone(zone).date()
    first = parse_day(args.date, zone, ctx.now, "date") if args.date else today
    if args.end_date:
        last = parse_day(args.end_date, zone, ctx.now, "end_date")
    else:
        last = first if args.date else first + timedelta(days=6)
    if last < first:
        raise ToolError.invalid("end_date", "end_date is before date")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ToolError.invalid("end_date", f"search at most {MAX_RANGE_DAYS} days at a time")
    if first < today:
        raise ToolError.invalid(
            "date",
            f"{first.isoformat()} is in the past (today is {today.isoformat()} in {zone.key})",
            speech="That date has already passed. Which day would you like?",
        )

    calendar = calendar_for(ctx)
    duration = timedelta(minutes=args.duration_minutes) if args.duration_minutes else calendar.default_duration
    window_start = max(datetime.combine(first, time(0), tzinfo=zone), ctx.now)
    window_end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    free = _in_part_of_day(await calendar.free_slots(window_start, window_end, duration), args.time_of_day, zone)
    chosen = spread(free, args.max_slots, zone)

    next_available = []
    if not chosen:
        later = _in_part_of_day(
            await calendar.free_slots(window_end, window_end + timedelta(days=LOOKAHEAD_DAYS), duration),
            args.time_of_day,
            zone,
        )
        next_available = later[:3]

    if chosen:
        speech = f"I have {speak_slots([s.start for s in chosen], zone, today)}."
    elif next_available:
        speech = (
            f"I don't have anything open {_range_words(first, last, today)}{_part_words(args.time_of_day)}. "
            f"The next openings are {speak_slots([s.start for s in next_available], zone, today)}."
        )
    else:
        kind = f"{args.time_of_day} " if args.time_of_day else ""
        speech = f"I don't have any {kind}openings in the next few weeks."
    return CheckAvailabilityResult(
        timezone=zone.key,
        date_from=first.isoformat(),
        date_to=last.isoformat(),
        slots=[slot_view(slot, zone, today) for slot in chosen],
        next_available=[slot_view(slot, zone, today) for slot in next_available],
        speech=speech,
    )


CHECK_AVAILABILITY = ToolSpec(
    name="check_availability",
    title="Check availability",
    description=(
        "Find free appointment times. Give a day (or a day range) and, if the caller is in another "
        "timezone, their IANA timezone. Returns up to `max_slots` well-spread slots, each with ISO 8601 "
        "start/end and a spoken form; offer two or three of them to the caller. If the range is full, "
        "`next_available` holds the first openings after it."
    ),
    input_model=CheckAvailabilityInput,
    output_model=CheckAvailabilityResult,
    run=check_availability,
    capability="calendar",
    read_only=True,
    idempotent=True,
    destructive=False,
    examples=[
        {"date": "tomorrow"},
        {"date": "tomorrow", "time_of_day": "morning", "timezone": "America/Los_Angeles"},
        {"date": "2026-03-09", "end_date": "2026-03-13", "duration_minutes": 60, "timezone": "America/Chicago"},
    ],
    wait_message="Let me check the calendar.",
)
