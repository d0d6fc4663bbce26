"""The Cal.com emulator's in-memory state: one user, one event type on a weekly schedule, bookings,
slot reservations and the API keys it accepts.

It follows the API v2 semantics the integration relies on: slots computed from the event
type's schedule minus live bookings and unexpired reservations; a booking refused (400) when its
start is not such a slot, or (409) while someone else's reservation holds it; a reschedule that
cancels the booking and creates its successor (`rescheduledToUid` / `rescheduledFromUid`);
a cancel that keeps the booking with status `cancelled`.

Not emulated: minimum booking notice and "in the past" refusals (the test and demo worlds run
on fixed 2026 dates while this machine's clock moves on), seats, recurring and team events.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.calcom.sandbox_wire import ApiError, Schedule, now_stamp, parse_utc, utc_stamp

__all__ = [
    "EVENT_TYPE_ID",
    "OWNER",
    "SANDBOX_API_KEY",
    "SNAPSHOT_VERSION",
    "CalcomState",
]

SANDBOX_API_KEY = "cal_test_sandbox0000000000000000000000"
EVENT_TYPE_ID = 1001
OWNER: dict[str, Any] = {
    "id": 501,
    "username": "sandbox-dental",
    "email": "owner@sandbox-dental.example.com",
    "name": "Sandbox Dental",
    "timeZone": "America/New_York",
}
EVENT_TYPE: dict[str, Any] = {
    "id": EVENT_TYPE_ID,
    "slug": "appointment",
    "title": "Appointment",
    "lengthInMinutes": 30,
    # Callers may book 30 or 60 minutes; any other length is refused as Cal.com refuses it.
    "lengthInMinutesOptions": [30, 60],
    "slotInterval": 30,
}
SCHEDULE = Schedule("America/New_York", {day: ((time(9), time(17)),) for day in range(1, 6)})
SNAPSHOT_VERSION = 1
_METADATA_KEYS = 50
_METADATA_KEY_LENGTH = 40
_METADATA_VALUE_LENGTH = 500
_UNAVAILABLE = "User either already has booking at this time or is not available"
# The fields of a booking the state reads; a snapshot whose bookings lack one is not ours.
_BOOKING_FIELDS = frozenset({"id", "uid", "status", "start", "end", "attendees", "metadata"})


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    bookings: dict[str, dict[str, Any]]
    reservations: dict[str, dict[str, Any]]
    api_keys: list[str]
    next_id: int


def _now() -> datetime:
    return datetime.now(UTC)


class CalcomState:
    """Everything the emulator remembers; `reset()` returns it to an empty calendar.

    `clock` is the emulator's own clock, for reservation expiry and record timestamps; tests set it.
    """

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self.clock = clock
        self.bookings: dict[str, dict[str, Any]] = {}
        self.reservations: dict[str, dict[str, Any]] = {}
        self.api_keys: set[str] = set()
        self.next_id = 1
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.bookings = {}
        self.reservations = {}
        self.api_keys = {SANDBOX_API_KEY}
        self.next_id = 1

    def dump(self) -> dict[str, Any]:
        return {
            "user": OWNER,
            "event_types": [{**EVENT_TYPE, "schedule": "Mon-Fri 09:00-17:00 America/New_York"}],
            "bookings": sorted(self.bookings.values(), key=lambda b: (b["start"], b["id"])),
            "reservations": sorted(self.reservations.values(), key=lambda r: (r["slotStart"], r["reservationUid"])),
            "api_key_valid": SANDBOX_API_KEY in self.api_keys,
        }

    def expire_access_tokens(self) -> None:
        """Nothing to expire: Cal.com API keys are not short-lived tokens."""

    def revoke_refresh_tokens(self) -> None:
        """The nearest Cal.com has: the API key is deleted, so every authenticated call answers 401."""
        self.api_keys.clear()

    def snapshot(self) -> dict[str, Any]:
        saved = _Snapshot(
            version=SNAPSHOT_VERSION,
            bookings=self.bookings,
            reservations=self.reservations,
            api_keys=sorted(self.api_keys),
            next_id=self.next_id,
        )
        return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a calcom sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for uid, booking in saved.bookings.items():
            missing = _BOOKING_FIELDS - booking.keys()
            if missing or booking["uid"] != uid:
                raise KeyError(f"saved booking {uid!r} lacks {sorted(missing)} or names another uid")
            parse_utc(str(booking["start"]), "start")
        for uid, reservation in saved.reservations.items():
            if reservation.get("reservationUid") != uid or "releaseAt" not in reservation:
                raise KeyError(f"saved reservation {uid!r} is not one this emulator wrote")
            datetime.fromisoformat(str(reservation["releaseAt"]))
        self.bookings = saved.bookings
        self.reservations = saved.reservations
        self.api_keys = set(saved.api_keys)
        self.next_id = saved.next_id

    # -- availability -----------------------------------------------------------------------------------

    def _live(self) -> list[dict[str, Any]]:
        return [b for b in self.bookings.values() if b["status"] in ("accepted", "pending")]

    def _active_reservations(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [r for r in self.reservations.values() if datetime.fromisoformat(r["releaseAt"]) > now]

    def _booked(self, start: datetime, end: datetime, ignoring: str | None = None) -> bool:
        return any(
            parse_utc(b["start"], "start") < end and start < parse_utc(b["end"], "end")
            for b in self._live()
            if b["uid"] != ignoring
        )

    def _reserved(self, start: datetime, end: datetime) -> dict[str, Any] | None:
        for r in self._active_reservations():
            if parse_utc(r["slotStart"], "slotStart") < end and start < parse_utc(r["slotEnd"], "slotEnd"):
                return r
        return None

    def length(self, minutes: Any, what: str) -> timedelta:
        """An allowed length of the event type (its default when `minutes` is None)."""
        if minutes is None:
            return timedelta(minutes=EVENT_TYPE["lengthInMinutes"])
        if not isinstance(minutes, int | float) or int(minutes) not in EVENT_TYPE["lengthInMinutesOptions"]:
            options = ", ".join(str(m) for m in EVENT_TYPE["lengthInMinutesOptions"])
            raise ApiError(
                400,
                f"Provided '{what}' is not one of the possible lengths for the event type. "
                f"The possible lengths for this variable length event type are: {options}",
            )
        return timedelta(minutes=int(minutes))

    def free_starts(
        self, start: datetime, end: datetime, length: timedelta, *, rescheduling: str | None = None
    ) -> list[datetime]:
        """Slot starts in [start, end] that neither a live booking nor an active reservation covers."""
        interval = timedelta(minutes=EVENT_TYPE["slotInterval"])
        return [
            moment
            for moment in SCHEDULE.slot_starts(start, end, length, interval)
            if not self._booked(moment, moment + length, rescheduling)
            and self._reserved(moment, moment + length) is None
        ]

    def event_type(self, event_type_id: Any) -> dict[str, Any]:
        try:
            known = int(event_type_id) == EVENT_TYPE_ID
        except (TypeError, ValueError):
            known = False
        if not known:
            raise ApiError(404, f"Event type with id {event_type_id} not found.")
        return EVENT_TYPE

    # -- bookings -----------------------------------------------------------------------------------------

    def booking(self, uid: str) -> dict[str, Any]:
        found = self.bookings.get(uid)
        if found is None:
            raise ApiError(404, f"Booking with uid={uid} not found")
        return found

    def create_booking(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("eventTypeId"):
            raise ApiError(400, "eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug are required")
        self.event_type(body["eventTypeId"])
        if not isinstance(body.get("start"), str):
            raise ApiError(400, "start must be a valid ISO 8601 date string")
        attendee = body.get("attendee")
        if not isinstance(attendee, dict) or not attendee.get("name") or not attendee.get("timeZone"):
            raise ApiError(400, "attendee.name and attendee.timeZone are required")
        if not attendee.get("email") and not attendee.get("phoneNumber"):
            raise ApiError(400, "Either attendee.email or attendee.phoneNumber must be provided")
        metadata = body.get("metadata") or {}
        _check_metadata(metadata)
        start = parse_utc(body["start"], "start")
        length = self.length(body.get("lengthInMinutes"), "lengthInMinutes")
        interval = timedelta(minutes=EVENT_TYPE["slotInterval"])
        if start not in SCHEDULE.slot_starts(start, start, length, interval) or self._booked(start, start + length):
            raise ApiError(400, _UNAVAILABLE)
        if self._reserved(start, start + length) is not None:
            # Cal.com's createBookingWithReservedSlot: someone else holds the slot.
            raise ApiError(409, "reserved_slot_not_first_in_line", code="HttpError")
        booking = self._new_booking(start, length, attendee, metadata, body.get("bookingFieldsResponses") or {})
        self.bookings[booking["uid"]] = booking
        return booking

    def reschedule(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        old = self.booking(uid)
        if old["status"] == "cancelled":
            raise ApiError(
                400,
                f"Can't reschedule booking with uid={uid} because it has been cancelled. "
                "Please provide uid of a booking that is not cancelled.",
            )
        if not isinstance(body.get("start"), str):
            raise ApiError(400, "start must be a valid ISO 8601 date string")
        start = parse_utc(body["start"], "start")
        length = timedelta(minutes=old["duration"])
        if start not in self.free_starts(start, start, length, rescheduling=uid):
            raise ApiError(400, _UNAVAILABLE)
        attendee = {
            k: old["attendees"][0][k] for k in ("name", "email", "timeZone", "phoneNumber") if k in old["attendees"][0]
        }
        new = self._new_booking(start, length, attendee, old.get("metadata") or {}, old["bookingFieldsResponses"])
        new["rescheduledFromUid"] = uid
        if body.get("reschedulingReason"):
            new["reschedulingReason"] = str(body["reschedulingReason"])
        new["rescheduledByEmail"] = OWNER["email"]
        old.update(status="cancelled", rescheduledToUid=new["uid"], updatedAt=now_stamp(self.clock()))
        self.bookings[new["uid"]] = new
        return new

    def cancel(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        booking = self.booking(uid)
        if booking["status"] == "cancelled":
            raise ApiError(400, "This booking has already been cancelled.")
        booking.update(status="cancelled", cancelledByEmail=OWNER["email"], updatedAt=now_stamp(self.clock()))
        if body.get("cancellationReason"):
            booking["cancellationReason"] = str(body["cancellationReason"])
        return booking

    def list_bookings(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Bookings matching GET /v2/bookings filters, by start time (before paging)."""
        chosen = list(self.bookings.values())
        email = filters.get("attendeeEmail")
        if email:
            chosen = [b for b in chosen if any(a["email"].lower() == email.lower() for a in b["attendees"])]
        name = filters.get("attendeeName")
        if name:
            chosen = [b for b in chosen if any(name.lower() in a["name"].lower() for a in b["attendees"])]
        if filters.get("afterStart"):
            after = parse_utc(filters["afterStart"], "afterStart")
            chosen = [b for b in chosen if parse_utc(b["start"], "start") >= after]
        if filters.get("beforeEnd"):
            before = parse_utc(filters["beforeEnd"], "beforeEnd")
            chosen = [b for b in chosen if parse_utc(b["end"], "end") <= before]
        statuses = filters.get("status") or []
        if statuses:
            chosen = [b for b in chosen if self._status_of(b) in statuses]
        reverse = filters.get("sortStart") == "desc"
        return sorted(chosen, key=lambda b: (b["start"], b["id"]), reverse=reverse)

    def _status_of(self, booking: dict[str, Any]) -> str:
        if booking["status"] == "cancelled":
            return "cancelled"
        if booking["status"] == "pending":
            return "unconfirmed"
        return "past" if parse_utc(booking["end"], "end") <= self.clock() else "upcoming"

    def _new_booking(
        self,
        start: datetime,
        length: timedelta,
        attendee: dict[str, Any],
        metadata: dict[str, Any],
        responses: dict[str, Any],
    ) -> dict[str, Any]:
        email = str(attendee.get("email") or _placeholder_email(str(attendee.get("phoneNumber", ""))))
        guest: dict[str, Any] = {
            "name": str(attendee["name"]),
            "email": email,
            "displayEmail": email,
            "timeZone": str(attendee["timeZone"]),
            "absent": False,
        }
        if attendee.get("phoneNumber"):
            guest["phoneNumber"] = str(attendee["phoneNumber"])
        booking_id = self.next_id
        self.next_id += 1
        uid = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(22))
        stamp = now_stamp(self.clock())
        host = {**OWNER, "displayEmail": OWNER["email"]}
        return {
            "id": booking_id,
            "uid": uid,
            "title": f"{EVENT_TYPE['title']} between {OWNER['name']} and {guest['name']}",
            "description": str(responses.get("notes") or ""),
            "hosts": [host],
            "status": "accepted",
            "start": utc_stamp(start),
            "end": utc_stamp(start + length),
            "duration": int(length / timedelta(minutes=1)),
            "eventTypeId": EVENT_TYPE_ID,
            "eventType": {"id": EVENT_TYPE_ID, "slug": EVENT_TYPE["slug"]},
            "location": "integrations:daily",
            "absentHost": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "attendees": [guest],
            "guests": [],
            "metadata": copy.deepcopy(metadata),
            "bookingFieldsResponses": {"name": guest["name"], "email": email, **copy.deepcopy(responses)},
            "icsUid": f"{uid}@Cal.com",
        }

    # -- reservations ---------------------------------------------------------------------------------------

    def reserve(self, body: dict[str, Any], *, authenticated: bool) -> dict[str, Any]:
        if body.get("reservationDuration") is not None and not authenticated:
            raise ApiError(
                401,
                "reservationDuration can only be used for authenticated requests - "
                "use access token, api key or OAuth credentials",
            )
        self.event_type(body.get("eventTypeId"))
        if not isinstance(body.get("slotStart"), str):
            raise ApiError(400, "Invalid start date")
        start = parse_utc(body["slotStart"], "start date")
        length = self.length(body.get("slotDuration"), "slotDuration")
        if self._booked(start, start + length):
            raise ApiError(422, "Can't reserve a slot if the event is already booked.")
        if self._reserved(start, start + length) is not None:
            raise ApiError(422, "This time slot is already reserved by another user. Please choose a different time.")
        minutes = body.get("reservationDuration") or 5
        if not isinstance(minutes, int | float) or minutes <= 0:
            raise ApiError(400, "reservationDuration must be a positive number")
        until = self.clock() + timedelta(minutes=float(minutes))
        reservation: dict[str, Any] = {
            "eventTypeId": EVENT_TYPE_ID,
            "slotStart": utc_stamp(start),
            "slotEnd": utc_stamp(start + length),
            "slotDuration": int(length / timedelta(minutes=1)),
            "reservationUid": str(uuid.uuid4()),
            "reservationDuration": minutes,
            "reservationUntil": utc_stamp(until),
            # Kept to the microsecond: expiry is compared on the emulator's clock.
            "releaseAt": until.isoformat(),
        }
        self.reservations[str(reservation["reservationUid"])] = reservation
        return reservation

    def reservation(self, uid: str) -> dict[str, Any] | None:
        found = self.reservations.get(uid)
        return {k: v for k, v in found.items() if k != "releaseAt"} if found else None

    def release(self, uid: str) -> None:
        # deleteMany: an unknown or expired uid deletes nothing and is not an error.
        self.reservations.pop(uid, None)

    def add_booking(self, start: datetime, minutes: int = 30, name: str = "Walk-in patient") -> dict[str, Any]:
        """A booking made outside the integration (on Cal.com's own booking page), for tests and demos."""
        attendee = {"name": name, "email": "walk-in@example.com", "timeZone": SCHEDULE.time_zone}
        booking = self._new_booking(start.astimezone(UTC), timedelta(minutes=minutes), attendee, {}, {})
        self.bookings[booking["uid"]] = booking
        return booking


def _placeholder_email(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit()) + "@sms.cal.com"


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise ApiError(400, "metadata must be an object")
    if len(metadata) > _METADATA_KEYS:
        raise ApiError(400, f"Metadata can have at most {_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if len(key) > _METADATA_KEY_LENGTH:
            raise ApiError(400, f"Metadata key '{key[:60]}' is longer than {_METADATA_KEY_LENGTH} characters")
        if isinstance(value, str) and len(value) > _METADATA_VALUE_LENGTH:
            raise ApiError(400, f"Metadata value of '{key}' is longer than {_METADATA_VALUE_LENGTH} characters")
