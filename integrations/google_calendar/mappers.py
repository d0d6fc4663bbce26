"""Pure mappings between Google Calendar JSON and the shared calendar models.

Event fields: https://developers.google.com/workspace/calendar/api/v3/reference/events#resource
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from integrations.capabilities.models import Appointment, BookingRequest
from integrations.capabilities.scheduling import Interval
from integrations.common.zones import UnknownZoneError, zone_info

__all__ = [
    "EMAIL_PROPERTY",
    "KEY_PROPERTY",
    "NAME_PROPERTY",
    "PHONE_PROPERTY",
    "PROVIDER",
    "appointment",
    "busy_intervals",
    "event_body",
    "event_id_for",
    "event_time",
    "freebusy_errors",
    "parse_time",
    "rfc3339",
]

PROVIDER = "google_calendar"
# Private extended properties (visible to this OAuth client only) that tie an event to its caller,
# so `find` can search by phone or email with `privateExtendedProperty=caller_phone=…`.
KEY_PROPERTY = "tool_server_key"
NAME_PROPERTY = "caller_name"
PHONE_PROPERTY = "caller_phone"
EMAIL_PROPERTY = "caller_email"
_NOTES_HEADING = "Notes:"


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC, the form Google's timeMin/timeMax expect."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_time(moment: datetime, zone: str) -> dict[str, str]:
    """An event's start or end: the wall-clock time in the business's zone, plus that zone."""
    return {"dateTime": moment.astimezone(zone_info(zone)).isoformat(), "timeZone": zone}


def parse_time(value: dict[str, Any], default_zone: str) -> datetime:
    """An event's start or end as an aware datetime. All-day events (`date`) start at local midnight."""
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=_zone(value, default_zone))
    day = date.fromisoformat(str(value["date"]))
    return datetime.combine(day, time(0), tzinfo=_zone(value, default_zone))


def _zone(value: dict[str, Any], default_zone: str) -> ZoneInfo:
    """The zone an event's start or end names, or `default_zone` when it names none we accept."""
    try:
        return zone_info(str(value.get("timeZone") or default_zone))
    except UnknownZoneError:
        return zone_info(default_zone)


def event_id_for(request: BookingRequest) -> str:
    """A client-chosen event id, so a retried insert answers 409 instead of creating a second event.

    Google ids use base32hex characters (a-v, 0-9), 5 to 1024 long; a SHA-256 hex digest is one.
    Without an idempotency key the id comes from what makes the booking itself: start and caller.
    """
    if request.idempotency_key:
        seed = f"key:{request.idempotency_key}"
    else:
        seed = "|".join(
            (
                "booking",
                rfc3339(request.start),
                request.attendee_phone or "",
                (request.attendee_email or "").lower(),
                request.attendee_name,
            )
        )
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def event_body(request: BookingRequest, *, event_id: str, zone: str) -> dict[str, Any]:
    """The events.insert body for a booking: the caller's details in the description (what staff
    read), as attendee when they gave an email, and in private properties (what `find` searches)."""
    private = {KEY_PROPERTY: request.idempotency_key or event_id, NAME_PROPERTY: request.attendee_name}
    if request.attendee_phone:
        private[PHONE_PROPERTY] = request.attendee_phone
    if request.attendee_email:
        private[EMAIL_PROPERTY] = request.attendee_email.lower()
    body: dict[str, Any] = {
        "id": event_id,
        "summary": f"Appointment: {request.attendee_name}",
        "description": _description(request),
        "start": event_time(request.start, zone),
        "end": event_time(request.end, zone),
        "extendedProperties": {"private": private},
        "reminders": {"useDefault": True},
    }
    if request.attendee_email:
        body["attendees"] = [{"email": request.attendee_email.lower(), "displayName": request.attendee_name}]
    return body


def _description(request: BookingRequest) -> str:
    lines = ["Booked by the phone assistant.", "", f"Name: {request.attendee_name}"]
    if request.attendee_phone:
        lines.append(f"Phone: {request.attendee_phone}")
    if request.attendee_email:
        lines.append(f"Email: {request.attendee_email.lower()}")
    if request.notes:
        lines += ["", _NOTES_HEADING, request.notes]
    return "\n".join(lines)


def _notes(description: str | None) -> str | None:
    """The notes section of a description this integration wrote (staff may have edited it since)."""
    if not description:
        return None
    lines = description.splitlines()
    if _NOTES_HEADING not in lines:
        return None
    notes = "\n".join(lines[lines.index(_NOTES_HEADING) + 1 :]).strip()
    return notes or None


def appointment(event: dict[str, Any], default_zone: str) -> Appointment:
    """A Google event as an Appointment; `raw` keeps the whole event."""
    private: dict[str, Any] = (event.get("extendedProperties") or {}).get("private") or {}
    guests = [a for a in event.get("attendees") or [] if not a.get("self") and not a.get("organizer")]
    guest: dict[str, Any] = guests[0] if guests else {}
    zone = _zone(event.get("start") or {}, default_zone)
    return Appointment(
        id=str(event["id"]),
        start=parse_time(event["start"], default_zone).astimezone(zone),
        end=parse_time(event["end"], default_zone).astimezone(zone),
        status="cancelled" if event.get("status") == "cancelled" else "booked",
        attendee_name=private.get(NAME_PROPERTY) or guest.get("displayName"),
        attendee_phone=private.get(PHONE_PROPERTY),
        attendee_email=private.get(EMAIL_PROPERTY) or guest.get("email"),
        notes=_notes(event.get("description")),
        provider=PROVIDER,
        raw=event,
    )


def busy_intervals(answer: dict[str, Any]) -> list[Interval]:
    """Every busy interval of every calendar in a freeBusy answer."""
    busy: list[Interval] = []
    for calendar in (answer.get("calendars") or {}).values():
        for period in calendar.get("busy") or []:
            busy.append((datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])))
    return busy


def freebusy_errors(answer: dict[str, Any]) -> dict[str, list[str]]:
    """Calendars freeBusy could not read ({calendar id: [reason, …]}): their busy lists are empty, not free."""
    errors: dict[str, list[str]] = {}
    for calendar_id, calendar in (answer.get("calendars") or {}).items():
        reasons = [str(e.get("reason", "unknown")) for e in calendar.get("errors") or []]
        if reasons:
            errors[str(calendar_id)] = reasons
    return errors
