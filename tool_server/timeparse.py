"""Reading dates, times and zones from tool arguments.

Every zone is an explicit IANA name. A datetime without an offset is read as wall-clock time
in the zone the call names (or the agent's business zone). A wall-clock time that a DST change
skips is refused; one that happens twice (clocks going back) is read as the first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tool_server.errors import ToolError

__all__ = ["parse_day", "parse_start", "parse_zone"]

_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_zone(name: str, field: str) -> ZoneInfo:
    """The IANA zone called `name`, or a VALIDATION_ERROR naming `field`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError.invalid(
            field, f"unknown IANA timezone {name!r}; use a name such as 'America/New_York'"
        ) from None


def parse_day(text: str, zone: ZoneInfo, now: datetime, field: str) -> date:
    """A calendar day from 'YYYY-MM-DD', 'today', 'tomorrow' or a weekday name.

    A weekday name means its next occurrence, today included, in `zone`.
    """
    today = now.astimezone(zone).date()
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word in _WEEKDAY_NAMES:
        return today + timedelta(days=(_WEEKDAY_NAMES.index(word) - today.weekday()) % 7)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ToolError.invalid(
            field, f"{text!r} is not a date; use YYYY-MM-DD, 'today', 'tomorrow' or a weekday name"
        ) from None


def parse_start(text: str, zone: ZoneInfo, field: str) -> datetime:
    """An aware datetime from ISO 8601; a bare local time is read in `zone`."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ToolError.invalid(
            field, f"{text!r} is not an ISO 8601 date-time such as '2026-03-09T14:30' or '2026-03-09T14:30-05:00'"
        ) from None
    if parsed.tzinfo is not None:
        return parsed
    local = parsed.replace(tzinfo=zone)
    round_trip = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != parsed:
        raise ToolError.invalid(
            field, f"{text} does not exist in {zone.key}: the clocks skip it for daylight saving time"
        )
    return local
