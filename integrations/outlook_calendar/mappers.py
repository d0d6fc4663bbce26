"""Pure mappings between Microsoft Graph calendar JSON and the shared calendar models.

- Event: https://learn.microsoft.com/graph/api/resources/event
- dateTimeTimeZone: https://learn.microsoft.com/graph/api/resources/datetimetimezone
- Extended properties: https://learn.microsoft.com/graph/api/resources/extended-properties-overview
- getSchedule: https://learn.microsoft.com/graph/api/calendar-getschedule
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from integrations.capabilities.errors import UpstreamError
from integrations.capabilities.models import Appointment, BookingRequest
from integrations.capabilities.scheduling import Interval
from integrations.common.zones import UnknownZoneError, zone_info
from integrations.outlook_calendar.windows_zones import iana_zone, windows_zone

__all__ = [
    "BUSY_STATUSES",
    "CANCELLED",
    "EMAIL_PROPERTY",
    "KEY_PROPERTY",
    "NAME_PROPERTY",
    "PHONE_PROPERTY",
    "PROPERTY_IDS",
    "PROVIDER",
    "STATUS_PROPERTY",
    "appointment",
    "busy_intervals",
    "cancel_changes",
    "event_body",
    "graph_time",
    "graph_zone",
    "is_ours",
    "parse_time",
    "properties",
    "restore_changes",
    "schedule_errors",
    "transaction_id_for",
]

PROVIDER = "outlook_calendar"

# Named MAPI string properties in this integration's own property set (a GUID we chose), so
# `find` can filter events by caller with `singleValueExtendedProperties/Any(...)`. Graph matches
# the Name part case-sensitively and the value case-insensitively.
_PROPERTY_SET = "{8c1b3f4e-5a7d-4e0b-9c61-2f7d0a9e4b53}"
KEY_PROPERTY = f"String {_PROPERTY_SET} Name tool_server_key"
NAME_PROPERTY = f"String {_PROPERTY_SET} Name caller_name"
PHONE_PROPERTY = f"String {_PROPERTY_SET} Name caller_phone"
EMAIL_PROPERTY = f"String {_PROPERTY_SET} Name caller_email"
STATUS_PROPERTY = f"String {_PROPERTY_SET} Name booking_status"
PROPERTY_IDS = (KEY_PROPERTY, NAME_PROPERTY, PHONE_PROPERTY, EMAIL_PROPERTY, STATUS_PROPERTY)
CANCELLED = "cancelled"

# getSchedule statuses that make a slot unavailable. `workingElsewhere` and `free` do not.
BUSY_STATUSES = frozenset({"busy", "oof", "tentative"})
_NOTES_HEADING = "Notes:"
_CANCELLED_PREFIX = "Cancelled: "


def graph_zone(iana: str) -> str:
    """The zone name to send Graph: its Windows name when it has one, else the IANA name (Graph takes both)."""
    return windows_zone(iana) or iana


def graph_time(moment: datetime, iana: str) -> dict[str, str]:
    """An aware datetime as Graph's dateTimeTimeZone: wall-clock time (no offset) plus the zone's name."""
    local = moment.astimezone(zone_info(iana))
    return {"dateTime": local.replace(tzinfo=None).isoformat(), "timeZone": graph_zone(iana)}


def parse_time(value: Any) -> datetime:
    """A dateTimeTimeZone as an aware datetime, in the zone Graph named (Windows or IANA).

    Graph writes `2026-03-09T14:00:00.0000000` (seven fractional digits, no offset) and the zone
    beside it; the time is never assumed to be UTC. A zone we cannot map is an UpstreamError: a
    guessed zone would put the appointment at the wrong hour.
    """
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise UpstreamError(PROVIDER, "an event time without dateTime")
    text = str(value["dateTime"])
    head, dot, fraction = text.partition(".")
    if dot and fraction.isdigit():
        # Graph's usual seven digits; Python reads at most six.
        text = f"{head}.{fraction[:6]}"
    elif dot:
        digits = "".join(c for c in fraction if c.isdigit())
        text = f"{head}.{digits[:6]}{fraction[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UpstreamError(PROVIDER, "an unreadable event time") from None
    if moment.tzinfo is not None:
        return moment
    name = str(value.get("timeZone") or "")
    try:
        zone = zone_info(iana_zone(name))
    except UnknownZoneError:
        raise UpstreamError(PROVIDER, f"Graph named a time zone this integration cannot map: {name[:64]!r}") from None
    return moment.replace(tzinfo=zone)


def transaction_id_for(request: BookingRequest) -> str:
    """The event's `transactionId`, so Graph answers a retried create with the event it already made.

    From the idempotency key when there is one; otherwise from what makes the booking itself
    (start and caller), so the same booking asked twice is still one event.
    """
    if request.idempotency_key:
        seed = f"key:{request.idempotency_key}"
    else:
        seed = "|".join(
            (
                "booking",
                request.start.astimezone(UTC).isoformat(),
                request.attendee_phone or "",
                (request.attendee_email or "").lower(),
                request.attendee_name,
            )
        )
    return "tsb-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:40]


def event_body(request: BookingRequest, *, transaction_id: str, zone: str) -> dict[str, Any]:
    """The POST /events body: the caller's details in the body text (what staff read), as attendee
    when they gave an email, and in extended properties (what `find` filters on)."""
    values = {KEY_PROPERTY: transaction_id, NAME_PROPERTY: request.attendee_name, STATUS_PROPERTY: "booked"}
    if request.attendee_phone:
        values[PHONE_PROPERTY] = request.attendee_phone
    if request.attendee_email:
        values[EMAIL_PROPERTY] = request.attendee_email.lower()
    body: dict[str, Any] = {
        "subject": f"Appointment: {request.attendee_name}",
        "body": {"contentType": "text", "content": _description(request)},
        "start": graph_time(request.start, zone),
        "end": graph_time(request.end, zone),
        "showAs": "busy",
        "allowNewTimeProposals": False,
        "transactionId": transaction_id,
        "singleValueExtendedProperties": [{"id": key, "value": value} for key, value in values.items()],
    }
    if request.attendee_email:
        body["attendees"] = [
            {
                "emailAddress": {"address": request.attendee_email.lower(), "name": request.attendee_name},
                "type": "required",
            }
        ]
    return body


def cancel_changes(event: dict[str, Any]) -> dict[str, Any]:
    """The PATCH that cancels a booking but keeps the event (and so its id) in the calendar.

    Removing the attendee makes Outlook send them a cancellation; `showAs: free` gives the time
    back; the status property is what `get` and `find` read. Deleting would move the event to
    Deleted Items under a new id, and a second cancel could no longer tell it from an unknown id.
    """
    subject = str(event.get("subject") or "")
    return {
        "subject": subject if subject.startswith(_CANCELLED_PREFIX) else _CANCELLED_PREFIX + subject,
        "showAs": "free",
        "isReminderOn": False,
        "attendees": [],
        "singleValueExtendedProperties": [{"id": STATUS_PROPERTY, "value": CANCELLED}],
    }


def restore_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The PATCH that books a cancelled booking again (its transactionId came back from a create)."""
    changes = {k: v for k, v in body.items() if k not in ("transactionId", "singleValueExtendedProperties")}
    changes.setdefault("attendees", [])
    changes["isReminderOn"] = True
    changes["singleValueExtendedProperties"] = [{"id": STATUS_PROPERTY, "value": "booked"}]
    return changes


def properties(event: dict[str, Any]) -> dict[str, str]:
    """The event's extended properties this integration reads ({id: value}), when Graph expanded them."""
    found: dict[str, str] = {}
    for item in event.get("singleValueExtendedProperties") or []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            found[item["id"]] = str(item.get("value") or "")
    return found


def is_ours(event: dict[str, Any]) -> bool:
    """Whether this integration booked the event (staff's own events are busy time, never appointments)."""
    return KEY_PROPERTY in properties(event)


def _description(request: BookingRequest) -> str:
    lines = ["Booked by the phone assistant.", "", f"Name: {request.attendee_name}"]
    if request.attendee_phone:
        lines.append(f"Phone: {request.attendee_phone}")
    if request.attendee_email:
        lines.append(f"Email: {request.attendee_email.lower()}")
    if request.notes:
        lines += ["", _NOTES_HEADING, request.notes]
    return "\n".join(lines)


def _notes(body: Any) -> str | None:
    """The notes section of a body this integration wrote (Graph may hand back text or HTML)."""
    if not isinstance(body, dict) or not body.get("content"):
        return None
    lines = str(body["content"]).replace("\r\n", "\n").splitlines()
    if _NOTES_HEADING not in lines:
        return None
    notes = "\n".join(lines[lines.index(_NOTES_HEADING) + 1 :]).strip()
    return notes or None


def appointment(event: dict[str, Any], zone: str) -> Appointment:
    """A Graph event as an Appointment in the business's zone; `raw` keeps the whole event."""
    values = properties(event)
    guests = [a for a in event.get("attendees") or [] if isinstance(a, dict)]
    guest: dict[str, Any] = (guests[0].get("emailAddress") or {}) if guests else {}
    cancelled = values.get(STATUS_PROPERTY) == CANCELLED or bool(event.get("isCancelled"))
    local = zone_info(zone)
    return Appointment(
        id=str(event["id"]),
        start=parse_time(event.get("start")).astimezone(local),
        end=parse_time(event.get("end")).astimezone(local),
        status="cancelled" if cancelled else "booked",
        attendee_name=values.get(NAME_PROPERTY) or guest.get("name"),
        attendee_phone=values.get(PHONE_PROPERTY) or None,
        attendee_email=values.get(EMAIL_PROPERTY) or guest.get("address"),
        notes=_notes(event.get("body")),
        provider=PROVIDER,
        raw=event,
    )


def busy_intervals(answer: dict[str, Any]) -> list[Interval]:
    """Every busy, tentative or out-of-office item of every schedule in a getSchedule answer."""
    busy: list[Interval] = []
    for schedule in answer.get("value") or []:
        for item in schedule.get("scheduleItems") or []:
            if str(item.get("status", "busy")) in BUSY_STATUSES:
                busy.append((parse_time(item.get("start")), parse_time(item.get("end"))))
    return busy


def schedule_errors(answer: dict[str, Any]) -> dict[str, str]:
    """Schedules Graph could not read ({address: responseCode}): their items are missing, not free."""
    return {
        str(schedule.get("scheduleId")): str(schedule["error"].get("responseCode") or "unknown")
        for schedule in answer.get("value") or []
        if isinstance(schedule.get("error"), dict)
    }
