"""Calendly as a `CalendarProvider`: Calendly's own availability, booked through its Scheduling API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.calendly.client import CalendlyClient
from integrations.calendly.errors import SchedulingLinkError
from integrations.calendly.mappers import (
    PROVIDER,
    appointment,
    digits,
    invitee_body,
    is_callers,
    moved_to,
    reschedule_reason,
    slots,
    uuid_of,
)
from integrations.calendly.settings import CalendlySettings
from integrations.capabilities.errors import (
    ConfigurationError,
    NotFoundError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot, elapsed
from integrations.common.keylocks import KeyLocks

__all__ = ["CalendlyConnector"]

# event_type_available_times takes at most 31 days per request (7 before 2026-07-09).
AVAILABILITY_WINDOW = timedelta(days=31)
# Calendly refuses a start_time in the past; ask from a little after our "now" so clock skew cannot.
PAST_MARGIN = timedelta(minutes=1)
# A reschedule chain longer than this is not one this integration made.
MAX_MOVES = 10
CANCEL_REASON = "Canceled by the phone assistant at the caller's request"


class CalendlyConnector:
    """Books callers into one Calendly event type.

    Calendly owns the rules: free slots are `event_type_available_times`, and `POST /invitees`
    refuses a time the event type does not offer. Calendly has no idempotency keys, so every
    booking first looks for the caller's invitee at that start (by phone, email or our key in
    `tracking`), and a retried create looks again before it posts; both under a per-key lock.
    An account whose plan cannot book through the API gets a single-use scheduling link instead
    (`SchedulingLinkError`).
    """

    name = PROVIDER

    def __init__(
        self,
        settings: CalendlySettings,
        client: CalendlyClient,
        clock: Callable[[], datetime],
        timezone: str,
    ) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._zone = settings.timezone or timezone
        self._locks = KeyLocks()
        self._user: dict[str, Any] | None = None
        self._event_type: dict[str, Any] | None = None

    @property
    def default_duration(self) -> timedelta:
        """The event type's length (30 minutes until the event type has been read)."""
        minutes = int(self._event_type["duration"]) if self._event_type else 30
        return timedelta(minutes=minutes)

    async def check_connection(self) -> str:
        """Read the user and the event type: proves the token works and the event type is bookable."""
        event_type = await self._booking_event_type()
        user = await self._me()
        return f"event type {event_type.get('name')} ({event_type['duration']} min) of {user.get('timezone')}"

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Calendly's available times of the event type in [start, end), in the business's zone."""
        event_type = await self._booking_event_type()
        self._check_duration(event_type, duration)
        earliest = max(start.astimezone(UTC), self._clock().astimezone(UTC) + PAST_MARGIN)
        latest = end.astimezone(UTC)
        found: list[TimeSlot] = []
        while earliest < latest:
            chunk_end = min(latest, earliest + AVAILABILITY_WINDOW)
            answer = await self._client.available_times(event_type["uri"], earliest, chunk_end)
            found += slots(answer, earliest, chunk_end, duration, self._zone)
            earliest = chunk_end
        return found

    async def book(self, request: BookingRequest) -> Appointment:
        """Book the caller; the same caller and start again, or the same key, returns the first booking."""
        event_type = await self._booking_event_type()
        self._check_duration(event_type, elapsed(request.start, request.end))
        caller = digits(request.attendee_phone) or (request.attendee_email or "").lower() or request.attendee_name
        keys = [f"key:{request.idempotency_key}" if request.idempotency_key else None, f"caller:{caller}"]
        async with self._locks.hold_all(keys):
            existing = await self._callers_booking(request)
            if existing is not None:
                return existing
            return await self._create(request, event_type)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Book the new time for the same invitee, then cancel the old event (Calendly cannot move one)."""
        current = await self.get(appointment_id)
        if current.status != "booked":
            raise NotFoundError("booked appointment", appointment_id)
        if current.start == start and current.end == end:
            return current
        event_type = await self._booking_event_type()
        invitee: dict[str, Any] = current.raw["invitee"]
        request = BookingRequest(
            start=start,
            end=end,
            attendee_name=current.attendee_name or str(invitee.get("name") or "Caller"),
            attendee_phone=current.attendee_phone,
            attendee_email=current.attendee_email,
            notes=current.notes,
        )
        self._check_duration(event_type, elapsed(start, end))
        async with self._locks.hold(f"appointment:{appointment_id}"):
            moved = await self._callers_booking(request, appointment_id=appointment_id)
            if moved is None:
                moved = await self._create(request, event_type, appointment_id=appointment_id)
            old_uuid = uuid_of(str(current.raw["event"]["uri"]))
            new_uri = str(moved.raw["event"]["uri"])
            if old_uuid is not None:
                await self._cancel_event(old_uuid, reschedule_reason(new_uri))
        return moved.model_copy(update={"id": appointment_id})

    async def cancel(self, appointment_id: str) -> Appointment:
        """Cancel the appointment's event; one already canceled is returned as it is."""
        current = await self.get(appointment_id)
        if current.status == "booked":
            event_uuid = uuid_of(str(current.raw["event"]["uri"]))
            if event_uuid is not None:
                await self._cancel_event(event_uuid, CANCEL_REASON)
        return current.model_copy(update={"status": "cancelled"})

    async def get(self, appointment_id: str) -> Appointment:
        """One appointment by id, following the reschedules this integration made."""
        event_uuid = uuid_of(appointment_id)
        if event_uuid is None or event_uuid != appointment_id:
            raise NotFoundError("appointment", appointment_id)
        event = await self._client.scheduled_event(event_uuid)
        for _ in range(MAX_MOVES):
            following = moved_to(event)
            if following is None:
                break
            event = await self._client.scheduled_event(following)
        invitees = await self._client.invitees(uuid_of(str(event["uri"])) or event_uuid)
        return self._appointment(event, invitees[0] if invitees else None, appointment_id=appointment_id)

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked appointments for this phone or email that end after `since`, by start time."""
        if not phone and not email:
            return []
        user = await self._me()
        # Calendly filters on start time; an event that started up to a day before `since` may still run.
        events = await self._client.scheduled_events(
            user["uri"], min_start=since - timedelta(days=1), invitee_email=None if phone else email
        )
        found: dict[str, Appointment] = {}
        for event in events:
            event_uuid = uuid_of(str(event["uri"]))
            if event_uuid is None:
                continue
            for invitee in await self._client.invitees(event_uuid):
                if invitee.get("status") == "active" and is_callers(invitee, phone=phone, email=email, key=None):
                    booked = self._appointment(event, invitee)
                    if booked.end > since:
                        found.setdefault(booked.id, booked)
        return sorted(found.values(), key=lambda a: (a.start.astimezone(UTC), a.id))

    # -- helpers ------------------------------------------------------------------------------------

    async def _me(self) -> dict[str, Any]:
        if self._user is None:
            self._user = await self._client.me()
        return self._user

    async def _booking_event_type(self) -> dict[str, Any]:
        if self._event_type is not None:
            return self._event_type
        if self._settings.event_type:
            event_uuid = uuid_of(self._settings.event_type)
            if event_uuid is None:
                raise ConfigurationError("event_type", "is not a Calendly event type URI")
            try:
                self._event_type = await self._client.event_type(event_uuid)
            except NotFoundError:
                raise ConfigurationError("event_type", "Calendly has no such event type for this account") from None
        else:
            user = await self._me()
            active = await self._client.active_event_types(user["uri"])
            if not active:
                raise ConfigurationError("event_type", "the Calendly account has no active event type")
            self._event_type = active[0]
        return self._event_type

    def _check_duration(self, event_type: dict[str, Any], duration: timedelta) -> None:
        minutes = int(event_type["duration"])
        if duration != timedelta(minutes=minutes):
            raise SlotUnavailableError(f"this calendar books {minutes}-minute appointments only")

    def _email(self, request: BookingRequest) -> str:
        if request.attendee_email:
            return request.attendee_email.lower()
        # Calendly requires an invitee email; a stand-in built from the phone keeps one per caller.
        stand_in = digits(request.attendee_phone) or "unknown"
        return self._settings.placeholder_email.replace("{digits}", stand_in).lower()

    def _appointment(
        self, event: dict[str, Any], invitee: dict[str, Any] | None, appointment_id: str | None = None
    ) -> Appointment:
        return appointment(
            event,
            invitee,
            zone=self._zone,
            notes_question=self._settings.notes_question,
            placeholder_domain=self._settings.placeholder_email.rsplit("@", 1)[-1],
            appointment_id=appointment_id,
        )

    async def _callers_booking(self, request: BookingRequest, appointment_id: str | None = None) -> Appointment | None:
        """The active booking at `request.start` that is this caller's or this key's, if Calendly has one."""
        user = await self._me()
        events = await self._client.scheduled_events(
            user["uri"],
            min_start=request.start - timedelta(seconds=1),
            max_start=request.start + timedelta(seconds=1),
        )
        for event in events:
            event_uuid = uuid_of(str(event["uri"]))
            if event_uuid is None:
                continue
            for invitee in await self._client.invitees(event_uuid):
                if invitee.get("status") == "active" and is_callers(
                    invitee,
                    phone=request.attendee_phone,
                    email=request.attendee_email,
                    key=request.idempotency_key,
                ):
                    return self._appointment(event, invitee, appointment_id)
        return None

    async def _create(
        self, request: BookingRequest, event_type: dict[str, Any], appointment_id: str | None = None
    ) -> Appointment:
        if request.start.astimezone(UTC) <= self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        offered = await self.free_slots(request.start, request.start + timedelta(seconds=1), self.default_duration)
        if not any(slot.start == request.start for slot in offered):
            raise SlotUnavailableError("that time is not available")
        body = invitee_body(
            request,
            event_type=event_type,
            zone=self._zone,
            email=self._email(request),
            notes_question=self._settings.notes_question,
            appointment_id=appointment_id,
        )

        async def recover() -> dict[str, Any] | None:
            earlier = await self._callers_booking(request, appointment_id)
            return earlier.raw["invitee"] if earlier is not None else None

        try:
            invitee = await self._client.create_invitee(body, recover)
        except UpstreamError as error:
            if error.status == 403:
                raise await self._scheduling_link(event_type, error) from None
            if error.status == 400:
                # Taken between our check and the write, unless it was one of our own attempts.
                earlier = await self._callers_booking(request, appointment_id)
                if earlier is not None:
                    return earlier
                raise SlotUnavailableError("that time is no longer available") from None
            raise
        event_uuid = uuid_of(str(invitee["event"]))
        if event_uuid is None:
            raise UpstreamError(PROVIDER, "Calendly answered a booking without its event")
        event = await self._client.scheduled_event(event_uuid)
        return self._appointment(event, invitee, appointment_id)

    async def _scheduling_link(self, event_type: dict[str, Any], refusal: UpstreamError) -> UpstreamError:
        """The error to raise when Calendly refuses to book: a single-use link when one can be made."""
        try:
            link = await self._client.scheduling_link(event_type["uri"])
        except UpstreamError:
            return refusal
        return SchedulingLinkError(str(link["booking_url"]))

    async def _cancel_event(self, event_uuid: str, reason: str) -> None:
        try:
            await self._client.cancel(event_uuid, reason)
        except UpstreamError as error:
            if error.status != 403:
                raise
            # Calendly refuses to cancel an event that is already canceled: the outcome we wanted.
            event = await self._client.scheduled_event(event_uuid)
            if event.get("status") != "canceled":
                raise
