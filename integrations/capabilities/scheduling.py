"""Booking rules and the slot arithmetic shared by every calendar that computes its own slots.

A slot is offered when it lies inside the business's opening hours on an open day, starts on
the slot grid counted from the opening time, respects the minimum notice and the booking
horizon, and keeps `buffer_minutes` clear on both sides of every busy interval.

Opening hours are wall-clock times in the rules' IANA zone, converted per date, so a DST change
moves the UTC instants and never the local hours. Durations are absolute (a 60-minute
appointment lasts 60 real minutes even across a DST change).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integrations.capabilities.models import TimeSlot
from integrations.common.linear_regex import compile_linear
from integrations.common.setting_types import ZoneName
from integrations.common.zones import zone_info

__all__ = [
    "WEEKDAYS",
    "BookingRules",
    "CalendarRulesSettings",
    "Interval",
    "Weekday",
    "candidate_slots",
    "rule_violation",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Interval = tuple[datetime, datetime]

_HOURS_RANGE = compile_linear(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")


# Opening hours are read for every day of every availability check; a business has a handful.
@lru_cache(maxsize=512)
def _parse_range(text: str) -> tuple[time, time | None]:
    """'09:00-17:00' -> (09:00, 17:00); a close of '24:00' is returned as None (midnight next day)."""
    match = _HOURS_RANGE.fullmatch(text)
    if not match:
        raise ValueError(f"opening hours must look like '09:00-17:00', got {text!r}")
    oh, om, ch, cm = (int(match.group(number)) for number in (1, 2, 3, 4))
    if ch == 24 and cm != 0:
        raise ValueError(f"'{text}' closes after midnight")
    opens = time(oh, om)
    closes = None if ch == 24 else time(ch, cm)
    if closes is not None and closes <= opens:
        raise ValueError(f"'{text}' closes before it opens")
    return opens, closes


class BookingRules(BaseModel):
    """When a business takes appointments.

    `weekly_hours` maps a weekday to its opening ranges, e.g. {"mon": ["09:00-12:00", "13:00-17:00"]};
    a weekday that is missing or empty is closed.
    """

    model_config = ConfigDict(frozen=True)

    timezone: ZoneName = Field(description="IANA zone the opening hours are in (e.g. America/Chicago).")
    weekly_hours: dict[Weekday, list[str]] = Field(
        default_factory=lambda: {day: ["09:00-17:00"] for day in WEEKDAYS[:5]},
        description='Opening ranges per weekday, e.g. {"mon": ["09:00-12:00", "13:00-17:00"]}; a missing day: closed.',
    )
    slot_minutes: int = Field(
        default=30, ge=5, le=24 * 60, description="Slot length; starts fall on this grid from opening time."
    )
    buffer_minutes: int = Field(default=0, ge=0, le=24 * 60, description="Kept free before and after each booking.")
    min_notice_minutes: int = Field(default=60, ge=0, description="How soon from now a slot may start.")
    horizon_days: int = Field(default=60, ge=1, le=3660, description="How many days ahead can be booked.")
    closed_dates: list[date] = Field(default_factory=list, description="Days closed whatever the weekly hours say.")

    @field_validator("weekly_hours")
    @classmethod
    def _valid_ranges(cls, value: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for ranges in value.values():
            for text in ranges:
                _parse_range(text)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return zone_info(self.timezone)

    def opening_intervals(self, day: date) -> list[Interval]:
        """The open intervals of one local calendar day, as aware datetimes in the rules' zone."""
        if day in self.closed_dates:
            return []
        zone = self.zone
        intervals: list[Interval] = []
        for text in self.weekly_hours.get(WEEKDAYS[day.weekday()], []):
            opens, closes = _parse_range(text)
            start = datetime.combine(day, opens, tzinfo=zone)
            end = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if closes is None
                else datetime.combine(day, closes, tzinfo=zone)
            )
            intervals.append((start, end))
        return intervals


class CalendarRulesSettings(BookingRules):
    """Booking rules as a connection setting: `timezone` may be left out and defaults to the agent's zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: ZoneName | None = Field(  # type: ignore[assignment]
        default=None, description="IANA zone the opening hours are in; defaults to the agent's zone."
    )

    def rules(self, default_timezone: str) -> BookingRules:
        data = self.model_dump(include=set(BookingRules.model_fields))
        data["timezone"] = self.timezone or default_timezone
        return BookingRules.model_validate(data)


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _grid(rules: BookingRules, day: date, duration: timedelta) -> Iterator[datetime]:
    """Every start on the slot grid of one day whose whole duration fits inside opening hours."""
    step = timedelta(minutes=rules.slot_minutes)
    for opens, closes in rules.opening_intervals(day):
        # Absolute arithmetic in UTC: a DST change inside an interval shortens or lengthens it.
        cursor = opens.astimezone(UTC)
        closes_utc = closes.astimezone(UTC)
        while cursor + duration <= closes_utc:
            yield cursor
            cursor += step


def _merged(busy: Iterable[Interval]) -> list[Interval]:
    """Busy intervals in UTC, sorted and merged: disjoint, so their ends ascend with their starts."""
    merged: list[Interval] = []
    for b_start, b_end in sorted((b_start.astimezone(UTC), b_end.astimezone(UTC)) for b_start, b_end in busy):
        if merged and b_start <= merged[-1][1]:
            if b_end > merged[-1][1]:
                merged[-1] = (merged[-1][0], b_end)
        else:
            merged.append((b_start, b_end))
    return merged


def _collides(
    start: datetime, end: datetime, busy: Sequence[Interval], ends: Sequence[datetime], buffer: timedelta
) -> bool:
    # A calendar with thousands of events is checked per slot by bisection, not by a scan.
    first = bisect_right(ends, start - buffer)
    return first < len(busy) and busy[first][0] < end + buffer


def candidate_slots(
    rules: BookingRules,
    start: datetime,
    end: datetime,
    duration: timedelta,
    busy: Iterable[Interval],
    now: datetime,
) -> list[TimeSlot]:
    """Every free slot of `duration` that starts in [start, end), in time order, in the rules' zone."""
    zone = rules.zone
    # All arithmetic in UTC: adding a timedelta to a zoned datetime moves its wall clock.
    now = now.astimezone(UTC)
    earliest = max(start.astimezone(UTC), now + timedelta(minutes=rules.min_notice_minutes))
    horizon = now + timedelta(days=rules.horizon_days)
    latest = min(end.astimezone(UTC), horizon)
    buffer = timedelta(minutes=rules.buffer_minutes)
    busy_sorted = _merged(busy)
    busy_ends = [b_end for _, b_end in busy_sorted]
    slots: list[TimeSlot] = []
    if earliest >= latest:
        return slots
    for day in _days(earliest, latest, zone):
        for slot_start in _grid(rules, day, duration):
            if slot_start < earliest or slot_start >= latest:
                continue
            slot_end = slot_start + duration
            if _collides(slot_start, slot_end, busy_sorted, busy_ends, buffer):
                continue
            slots.append(TimeSlot(start=slot_start.astimezone(zone), end=slot_end.astimezone(zone)))
    return slots


def rule_violation(rules: BookingRules, start: datetime, duration: timedelta, now: datetime) -> str | None:
    """Why the rules forbid this start (ignoring other bookings), or None when they allow it."""
    now = now.astimezone(UTC)
    if start < now + timedelta(minutes=rules.min_notice_minutes):
        return f"bookings need at least {rules.min_notice_minutes} minutes' notice"
    if start >= now + timedelta(days=rules.horizon_days):
        return f"bookings open only {rules.horizon_days} days ahead"
    local_day = start.astimezone(rules.zone).date()
    if local_day in rules.closed_dates:
        return "the business is closed that day"
    if not rules.opening_intervals(local_day):
        return "the business is closed that day"
    utc_start = start.astimezone(UTC)
    if any(slot == utc_start for slot in _grid(rules, local_day, duration)):
        return None
    return "that time is outside opening hours or not on the booking grid"
