"""Cal.com as a `CalendarProvider` (and `SlotReservations`): its slots, its bookings, its rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.calcom.client import BOOKINGS_VERSION, CalcomClient
from integrations.calcom.errors import CalcomError
from integrations.calcom.mappers import (
    KEY_FIELD,
    appointment,
    booking_body,
    booking_key,
    caller_matches,
    is_live,
    parse_instant,
    slots,
    utc_stamp,
)
from integrations.calcom.settings import CalcomSettings
from integrations.capabilities.errors import NotFoundError, SlotUnavailableError, UpstreamError
from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot, elapsed
from integrations.common.keylocks import KeyLocks

__all__ = ["CalcomConnector"]

PROVIDER_NAME = "calcom"
MAX_APPOINTMENT = timedelta(hours=24)
# How far a chain of reschedules is followed (each reschedule is a new Cal.com booking).
_MAX_HOPS = 20
_TAKEN = "that time is already booked or outside the business's hours"


class CalcomConnector:
    """Books callers into one Cal.com event type.

    Cal.com owns the rules: slots are what `GET /v2/slots` offers, and a booking is re-checked
    against it just before `POST /v2/bookings`. Cal.com has no idempotency header, so every
    booking carries its key in `metadata`; a retried create (or one whose answer was lost) first
    looks for a booking with that key, under a per-key lock. A reschedule makes a new Cal.com
    booking; the appointment keeps the uid the caller was given, and reads follow
    `rescheduledToUid` from it.
    """

    name = PROVIDER_NAME
    page_size: int = 100

    def __init__(
        self, settings: CalcomSettings, zone: str, client: CalcomClient, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        self.zone = zone
        self._client = client
        self._clock = clock
        self._locks = KeyLocks()

    @property
    def default_duration(self) -> timedelta:
        """The event type's length."""
        return timedelta(minutes=self._settings.length_minutes)

    async def check_connection(self) -> str:
        """Read the API key's user and ask for a day of slots: proves the key and the event type."""
        me = await self._client.me()
        today = self._clock()
        await self._slots(today, today + timedelta(days=1), self.default_duration)
        return f"cal.com user {me.get('username', '?')}, event type {self._settings.event_type_id} ({self.zone})"

    # -- CalendarProvider ---------------------------------------------------------------------------

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Cal.com's slots for the event type that start in [start, end) and not in the past."""
        earliest = max(start.astimezone(UTC), self._clock().astimezone(UTC))
        if earliest >= end.astimezone(UTC):
            return []
        offered = await self._slots(earliest, end, duration)
        return [s for s in offered if earliest <= s.start.astimezone(UTC) < end.astimezone(UTC)]

    async def book(self, request: BookingRequest) -> Appointment:
        """Book after re-checking Cal.com's slots; idempotent per key and per caller and start."""
        duration = elapsed(request.start, request.end)
        if duration <= timedelta(0) or duration > MAX_APPOINTMENT:
            raise SlotUnavailableError("an appointment must end after it starts and last at most 24 hours")
        if request.start.astimezone(UTC) < self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        key = booking_key(request)
        callers = [
            f"caller:{utc_stamp(request.start)}:{c}" for c in (request.attendee_phone, request.attendee_email) if c
        ]
        async with self._locks.hold_all([f"key:{key}", *callers]):
            existing = await self._earlier_booking(request, key)
            if existing is not None:
                return existing
            if not await self._is_offered(request.start, duration):
                raise SlotUnavailableError(_TAKEN)
            body = booking_body(
                request,
                event_type_id=self._settings.event_type_id,
                zone=self.zone,
                key=key,
                length_minutes=self._settings.length_minutes,
            )
            return await self._create(request, key, body)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked appointment to a time Cal.com offers (its own time counts as free)."""
        current = await self._latest(appointment_id)
        if not is_live(current):
            raise NotFoundError("booked appointment", appointment_id)
        shown = appointment(current, self.zone, appointment_id=appointment_id)
        if shown.start == start and shown.end == end:
            return shown
        duration = elapsed(start, end)
        if duration != elapsed(shown.start, shown.end):
            raise SlotUnavailableError("Cal.com moves an appointment without changing its length")
        if not await self._is_offered(start, duration, rescheduling=str(current["uid"])):
            raise SlotUnavailableError(_TAKEN)
        body = {"start": utc_stamp(start), "reschedulingReason": "Moved by the phone assistant at the caller's request"}
        try:
            moved = await self._client.reschedule(str(current["uid"]), body)
        except CalcomError as error:
            raise self._unavailable(error) from None
        return appointment(moved, self.zone, appointment_id=appointment_id)

    async def cancel(self, appointment_id: str) -> Appointment:
        """Cancel at Cal.com; an appointment already cancelled is returned as it is."""
        current = await self._latest(appointment_id)
        if is_live(current):
            body = {"cancellationReason": "Cancelled by the phone assistant at the caller's request"}
            try:
                current = await self._client.cancel(str(current["uid"]), body)
            except CalcomError as error:
                # Cancelled between our read and our cancel, which is what we wanted.
                if error.status != 400 or "already" not in error.vendor_message.lower():
                    raise
                current = await self._client.booking(str(current["uid"]))
        return appointment(current, self.zone, appointment_id=appointment_id)

    async def get(self, appointment_id: str) -> Appointment:
        """One appointment by the uid it was booked under (following its reschedules)."""
        return appointment(await self._latest(appointment_id), self.zone, appointment_id=appointment_id)

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked appointments for this phone or email that end after `since`, by start time."""
        if not phone and not email:
            return []
        # Cal.com filters by start (afterStart) and by email, never by phone: ask from a day before
        # `since` (nothing lasts longer) and match the phone here.
        params: dict[str, str | int] = {"afterStart": utc_stamp(since - MAX_APPOINTMENT), "sortStart": "asc"}
        if email and not phone:
            params["attendeeEmail"] = email.lower()
        found: dict[str, Appointment] = {}
        for booking in await self._bookings(params):
            if not is_live(booking) or not caller_matches(booking, phone=phone, email=email):
                continue
            if parse_instant(str(booking["end"])) <= since:
                continue
            root = await self._root_uid(booking)
            found[root] = appointment(booking, self.zone, appointment_id=root)
        return sorted(found.values(), key=lambda a: (a.start.astimezone(UTC), a.id))

    # -- SlotReservations -----------------------------------------------------------------------------

    async def reserve(self, start: datetime, end: datetime, minutes: int) -> str:
        """Reserve [start, end) at Cal.com for `minutes`; its reservationUid."""
        body: dict[str, Any] = {
            "eventTypeId": self._settings.event_type_id,
            "slotStart": utc_stamp(start),
            "reservationDuration": minutes,
        }
        length = int(elapsed(start, end) / timedelta(minutes=1))
        if length != self._settings.length_minutes:
            body["slotDuration"] = length
        try:
            reserved = await self._client.reserve_slot(body)
        except CalcomError as error:
            raise self._unavailable(error) from None
        return str(reserved["reservationUid"])

    async def release(self, reservation_id: str) -> None:
        """Delete a reservation; Cal.com answers success for one already gone."""
        await self._client.delete_reservation(reservation_id)

    # -- helpers ----------------------------------------------------------------------------------------

    async def _slots(self, start: datetime, end: datetime, duration: timedelta, **extra: str) -> list[TimeSlot]:
        params: dict[str, str | int] = {
            "eventTypeId": self._settings.event_type_id,
            "start": utc_stamp(start),
            "end": utc_stamp(end),
            "timeZone": self.zone,
            "format": "range",
            **extra,
        }
        minutes = int(duration / timedelta(minutes=1))
        if minutes != self._settings.length_minutes:
            params["duration"] = minutes
        return slots(await self._client.slots(params), duration)

    async def _is_offered(self, start: datetime, duration: timedelta, *, rescheduling: str | None = None) -> bool:
        extra = {"bookingUidToReschedule": rescheduling} if rescheduling else {}
        offered = await self._slots(start, start + duration, duration, **extra)
        return any(slot.start == start and slot.end == start + duration for slot in offered)

    async def _create(self, request: BookingRequest, key: str, body: dict[str, Any]) -> Appointment:
        attempts = 0

        async def attempt() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The previous attempt may have landed at Cal.com with its answer lost.
                landed = await self._with_key(request, key)
                if landed is not None:
                    return landed
            return await self._client.create_booking_once(body)

        try:
            created = await self._client.resilience.call(attempt)
        except CalcomError as error:
            raise self._unavailable(error) from None
        except UpstreamError:
            # Out of retries: one last look, so a booking that did land is never reported as failed.
            landed = await self._with_key_quietly(request, key)
            if landed is None:
                raise
            created = landed
        return appointment(created, self.zone)

    async def _with_key_quietly(self, request: BookingRequest, key: str) -> dict[str, Any] | None:
        try:
            return await self._with_key(request, key)
        except UpstreamError:
            return None

    async def _with_key(self, request: BookingRequest, key: str) -> dict[str, Any] | None:
        """A live booking carrying `key` at the request's start (one look, not retried)."""
        params = self._window(request)
        answer = await self._client.send("GET", "/v2/bookings", version=BOOKINGS_VERSION, params=params, whole=True)
        for booking in answer.get("data") or []:
            if isinstance(booking, dict) and is_live(booking) and (booking.get("metadata") or {}).get(KEY_FIELD) == key:
                return booking
        return None

    async def _earlier_booking(self, request: BookingRequest, key: str) -> Appointment | None:
        """This booking made before (same key), or the same caller already booked at this start."""
        for booking in await self._bookings(self._window(request)):
            if not is_live(booking) or parse_instant(str(booking["start"])) != request.start:
                continue
            same_key = (booking.get("metadata") or {}).get(KEY_FIELD) == key
            if same_key or caller_matches(booking, phone=request.attendee_phone, email=request.attendee_email):
                return appointment(booking, self.zone, appointment_id=await self._root_uid(booking))
        return None

    def _window(self, request: BookingRequest) -> dict[str, str | int]:
        return {"afterStart": utc_stamp(request.start), "beforeEnd": utc_stamp(request.end), "take": self.page_size}

    async def _bookings(self, params: dict[str, str | int]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        skip = 0
        while True:
            page, more = await self._client.bookings_page({**params, "take": self.page_size, "skip": skip})
            found.extend(page)
            if not more or not page:
                return found
            skip += len(page)

    async def _latest(self, uid: str) -> dict[str, Any]:
        """The booking `uid` became: Cal.com cancels a rescheduled booking and points to its successor."""
        booking = await self._client.booking(uid)
        for _ in range(_MAX_HOPS):
            following = booking.get("rescheduledToUid")
            if not following:
                break
            booking = await self._client.booking(str(following))
        return booking

    async def _root_uid(self, booking: dict[str, Any]) -> str:
        """The uid the caller was given: the first booking of a chain of reschedules."""
        for _ in range(_MAX_HOPS):
            earlier = booking.get("rescheduledFromUid")
            if not earlier:
                break
            try:
                booking = await self._client.booking(str(earlier))
            except NotFoundError:
                break
        return str(booking["uid"])

    @staticmethod
    def _unavailable(error: CalcomError) -> Exception:
        """Cal.com's "not available" answers as SlotUnavailableError; anything else as it is."""
        if error.status in (409, 422) or (
            error.status == 400
            and any(
                w in error.vendor_message
                for w in ("not available", "booking at this time", "can't be booked", "in the past")
            )
        ):
            return SlotUnavailableError(_TAKEN)
        return error
