"""Google's conventions for the Calendar emulator, as pure functions: error answers, timestamps, page
tokens, and what Google checks and filters on one event (its times, attendees, patches, list filters).

- Errors: https://developers.google.com/workspace/calendar/api/guides/errors
- Events: https://developers.google.com/workspace/calendar/api/v3/reference/events#resource
- Listing: https://developers.google.com/workspace/calendar/api/v3/reference/events/list
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from integrations.common.zones import UnknownZoneError, zone_info

__all__ = [
    "ApiError",
    "EventQuery",
    "check_attendees",
    "check_send_updates",
    "check_times",
    "event_instant",
    "html_link",
    "is_listed",
    "merge_patch",
    "now_stamp",
    "page_offset",
    "page_token",
    "parse_instant",
    "utc_stamp",
]

_SEND_UPDATES = ("all", "externalOnly", "none")


class ApiError(Exception):
    """A Google API error answer: HTTP status, `reason` code and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def now_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str, what: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as Google requires for timeMin, timeMax and freeBusy."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "invalid", f"Bad Request: invalid {what}") from None
    if moment.tzinfo is None:
        raise ApiError(400, "invalid", f"Bad Request: {what} needs a time zone offset")
    return moment


def event_instant(value: Any, what: str) -> datetime:
    """An event's start or end ({dateTime[, timeZone]} or all-day {date}) as an aware datetime."""
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise ApiError(400, "required", f"Missing {what} time.")
    try:
        zone = zone_info(str(value.get("timeZone") or "UTC"))
    except UnknownZoneError:
        raise ApiError(400, "timeZoneInvalid", f"Invalid time zone definition for {what} time.") from None
    try:
        if value.get("dateTime"):
            moment = datetime.fromisoformat(str(value["dateTime"]))
            return moment if moment.tzinfo else moment.replace(tzinfo=zone)
        return datetime.combine(date.fromisoformat(str(value["date"])), time(0), tzinfo=zone)
    except ValueError:
        raise ApiError(400, "invalid", f"Invalid {what} time.") from None


def check_send_updates(value: str | None) -> None:
    if value is not None and value not in _SEND_UPDATES:
        raise ApiError(
            400,
            "invalidParameter",
            f"Invalid value '{value}'. Values must match the following: all, externalOnly, none",
        )


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "invalid", "Invalid page token value.") from None
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(400, "invalid", "Invalid page token value.")
    return offset


# -- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    """The events.list filters the emulator honours."""

    time_min: datetime | None = None
    time_max: datetime | None = None
    single_events: bool = False
    order_by: str | None = None
    private_properties: tuple[str, ...] = ()
    shared_properties: tuple[str, ...] = ()
    show_deleted: bool = False
    max_results: int = 250
    page_token: str | None = None


def merge_patch(target: dict[str, Any], changes: dict[str, Any]) -> None:
    """Patch semantics: objects merge field by field, everything else (arrays included) is replaced."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _property_matches(properties: dict[str, Any], filters: tuple[str, ...]) -> bool:
    for text in filters:
        name, _, value = text.partition("=")
        if properties.get(name) != value:
            return False
    return True


def check_times(event: dict[str, Any]) -> None:
    """Google's 400 for a missing, malformed or empty start-to-end range."""
    start = event_instant(event.get("start"), "start")
    end = event_instant(event.get("end"), "end")
    if end <= start:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")


def check_attendees(event: dict[str, Any]) -> None:
    """Google's 400 for an attendee without an email."""
    for attendee in event.get("attendees") or []:
        if not isinstance(attendee, dict) or not attendee.get("email"):
            raise ApiError(400, "required", "Missing attendee email.")


def is_listed(event: dict[str, Any], query: EventQuery) -> bool:
    """Whether events.list with `query` returns the event (before paging)."""
    if event.get("status") == "cancelled" and not query.show_deleted:
        return False
    # timeMin bounds an event's end and timeMax its start, both exclusive.
    if query.time_min and event_instant(event["end"], "end") <= query.time_min:
        return False
    if query.time_max and event_instant(event["start"], "start") >= query.time_max:
        return False
    properties = event.get("extendedProperties") or {}
    return _property_matches(properties.get("private") or {}, query.private_properties) and _property_matches(
        properties.get("shared") or {}, query.shared_properties
    )
