"""Pure mappings between Cal.com API v2 JSON and the shared calendar models.

Booking fields: https://cal.com/docs/api-reference/v2/bookings/get-a-booking
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot
from integrations.common.zones import zone_info

__all__ = [
    "KEY_FIELD",
    "PHONE_FIELD",
    "PLACEHOLDER_EMAIL_DOMAIN",
    "PROVIDER",
    "appointment",
    "booking_body",
    "booking_key",
    "caller_matches",
    "is_live",
    "parse_instant",
    "slots",
    "utc_stamp",
]

PROVIDER = "calcom"
# Booking metadata keys (Cal.com allows 50 keys of at most 40 characters, values of at most 500).
KEY_FIELD = "tool_server_key"
PHONE_FIELD = "caller_phone"
# Cal.com books a caller without an email under `<phone digits>@sms.cal.com` (its isSmsCalEmail).
PLACEHOLDER_EMAIL_DOMAIN = "@sms.cal.com"
_LIVE = frozenset({"accepted", "pending"})


def utc_stamp(moment: datetime) -> str:
    """An aware instant in the UTC ISO form Cal.com asks for (`2026-03-09T14:00:00.000Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """A Cal.com timestamp; it always carries `Z` or an offset, which is kept (never assumed UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"Cal.com sent a time without a zone: {text!r}")
    return moment


def booking_key(request: BookingRequest) -> str:
    """The key a booking carries in its metadata, so a retry can find the booking it made.

    Without an idempotency key it comes from what makes the booking itself: start and caller.
    """
    if request.idempotency_key:
        return request.idempotency_key[:500]
    seed = "|".join(
        (
            utc_stamp(request.start),
            request.attendee_phone or "",
            (request.attendee_email or "").lower(),
            request.attendee_name,
        )
    )
    return "derived:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:40]


def booking_body(
    request: BookingRequest, *, event_type_id: int, zone: str, key: str, length_minutes: int
) -> dict[str, Any]:
    """The `POST /v2/bookings` body (CreateBookingInput_2024_08_13)."""
    attendee: dict[str, Any] = {"name": request.attendee_name, "timeZone": zone}
    if request.attendee_email:
        attendee["email"] = request.attendee_email.lower()
    if request.attendee_phone:
        attendee["phoneNumber"] = request.attendee_phone
    metadata = {KEY_FIELD: key}
    if request.attendee_phone:
        metadata[PHONE_FIELD] = request.attendee_phone
    body: dict[str, Any] = {
        "start": utc_stamp(request.start),
        "eventTypeId": event_type_id,
        "attendee": attendee,
        "metadata": metadata,
    }
    minutes = int((request.end.astimezone(UTC) - request.start.astimezone(UTC)) / timedelta(minutes=1))
    if minutes != length_minutes:
        body["lengthInMinutes"] = minutes
    if request.notes:
        # `notes` is the slug of the "Additional notes" field every event type has.
        body["bookingFieldsResponses"] = {"notes": request.notes}
    return body


def _attendee(booking: dict[str, Any]) -> dict[str, Any]:
    attendees = booking.get("attendees") or []
    return attendees[0] if attendees and isinstance(attendees[0], dict) else {}


def _real_email(email: Any) -> str | None:
    if not isinstance(email, str) or not email or email.lower().endswith(PLACEHOLDER_EMAIL_DOMAIN):
        return None
    return email.lower()


def caller_matches(booking: dict[str, Any], *, phone: str | None, email: str | None) -> bool:
    """Whether the booking's attendee is the caller with this phone or email."""
    attendee = _attendee(booking)
    metadata = booking.get("metadata") or {}
    if phone and phone in (attendee.get("phoneNumber"), metadata.get(PHONE_FIELD)):
        return True
    return bool(email) and _real_email(attendee.get("email")) == (email or "").lower()


def is_live(booking: dict[str, Any]) -> bool:
    return booking.get("status") in _LIVE


def appointment(booking: dict[str, Any], zone: str, *, appointment_id: str | None = None) -> Appointment:
    """A Cal.com booking as an Appointment in the business's zone; `raw` keeps the whole booking.

    `appointment_id` is the uid the caller knows: a rescheduled booking is a new Cal.com booking,
    but it stays the same appointment.
    """
    attendee = _attendee(booking)
    responses = booking.get("bookingFieldsResponses") or {}
    notes = responses.get("notes")
    where = zone_info(zone)
    return Appointment(
        id=appointment_id or str(booking["uid"]),
        start=parse_instant(str(booking["start"])).astimezone(where),
        end=parse_instant(str(booking["end"])).astimezone(where),
        status="booked" if is_live(booking) else "cancelled",
        attendee_name=attendee.get("name"),
        attendee_phone=attendee.get("phoneNumber") or (booking.get("metadata") or {}).get(PHONE_FIELD),
        attendee_email=_real_email(attendee.get("email")),
        notes=notes if isinstance(notes, str) and notes else None,
        provider=PROVIDER,
        raw=booking,
    )


def slots(data: dict[str, Any], duration: timedelta) -> list[TimeSlot]:
    """The slots of a `GET /v2/slots` answer (`format=range`, or start-only strings and objects)."""
    found: list[TimeSlot] = []
    for day in data.values():
        for slot in day or []:
            start_text = slot if isinstance(slot, str) else slot.get("start")
            start = parse_instant(str(start_text))
            end_text = slot.get("end") if isinstance(slot, dict) else None
            end = parse_instant(str(end_text)) if end_text else start + duration
            found.append(TimeSlot(start=start, end=end))
    return sorted(found, key=lambda s: s.start.astimezone(UTC))
