"""How tools present slots and appointments: ISO 8601 with offset plus the spoken form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from integrations.capabilities import Appointment, TimeSlot
from tool_server.spoken import spoken_clock, spoken_datetime, spoken_day, spoken_list, zone_label

__all__ = ["AppointmentView", "SlotView", "appointment_view", "slot_view", "speak_slots", "spread"]


class SlotView(BaseModel):
    """A free slot in the zone the caller asked about."""

    start: str = Field(description="ISO 8601 with offset, e.g. 2026-03-09T10:00:00-04:00.")
    end: str = Field(description="ISO 8601 with offset; exclusive.")
    spoken: str = Field(description="How to say it, e.g. 'Monday, March 9 at 10 AM'.")


class AppointmentView(BaseModel):
    """An appointment in the zone the caller asked about."""

    appointment_id: str
    status: str = Field(description="'booked' or 'cancelled'.")
    start: str = Field(description="ISO 8601 with offset.")
    end: str = Field(description="ISO 8601 with offset.")
    timezone: str
    spoken: str = Field(description="How to say the start aloud.")
    caller_name: str | None = None
    caller_phone: str | None = None
    caller_email: str | None = None
    notes: str | None = None


def slot_view(slot: TimeSlot, zone: ZoneInfo, today: date) -> SlotView:
    start, end = slot.start.astimezone(zone), slot.end.astimezone(zone)
    return SlotView(start=start.isoformat(), end=end.isoformat(), spoken=spoken_datetime(start, today))


def appointment_view(appointment: Appointment, zone: ZoneInfo, today: date) -> AppointmentView:
    start, end = appointment.start.astimezone(zone), appointment.end.astimezone(zone)
    return AppointmentView(
        appointment_id=appointment.id,
        status=appointment.status,
        start=start.isoformat(),
        end=end.isoformat(),
        timezone=zone.key,
        spoken=spoken_datetime(start, today),
        caller_name=appointment.attendee_name,
        caller_phone=appointment.attendee_phone,
        caller_email=appointment.attendee_email,
        notes=appointment.notes,
    )


def _evenly(items: Sequence[TimeSlot], count: int) -> list[TimeSlot]:
    if count >= len(items):
        return list(items)
    if count == 1:
        return [items[0]]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def spread(slots: Sequence[TimeSlot], count: int, zone: ZoneInfo) -> list[TimeSlot]:
    """Up to `count` slots spread across the days and hours on offer, in time order.

    Days take turns, so a week-long search offers several days rather than one morning.
    """
    by_day = [list(day_slots) for _, day_slots in groupby(slots, key=lambda s: s.start.astimezone(zone).date())]
    quota = [0] * len(by_day)
    remaining = min(count, len(slots))
    while remaining:
        for index, day_slots in enumerate(by_day):
            if remaining and quota[index] < len(day_slots):
                quota[index] += 1
                remaining -= 1
    chosen: list[TimeSlot] = []
    for day_slots, take in zip(by_day, quota, strict=True):
        chosen.extend(_evenly(day_slots, take))
    return chosen


def speak_slots(starts: Sequence[datetime], zone: ZoneInfo, today: date, *, first_day_known: bool = False) -> str:
    """'Monday, March 9 at 9 AM or 2 PM, and Tuesday, March 10 at 10 AM, Eastern time'.

    With `first_day_known`, times on the first day are said without repeating the day.
    """
    local = [start.astimezone(zone) for start in starts]
    parts = []
    for index, (day, group) in enumerate(groupby(local, key=lambda moment: moment.date())):
        times = spoken_list([spoken_clock(moment) for moment in group])
        parts.append(times if index == 0 and first_day_known else f"{spoken_day(day, today)} at {times}")
    return f"{spoken_list(parts, 'and')}, {zone_label(zone)}"
