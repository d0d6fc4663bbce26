"""Outlook (Microsoft Graph) as a `CalendarProvider`: our booking rules over Graph's free/busy and events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.capabilities.errors import NotFoundError, SlotUnavailableError, UpstreamError
from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot, elapsed
from integrations.capabilities.scheduling import BookingRules, Interval, candidate_slots, rule_violation
from integrations.common.keylocks import KeyLocks
from integrations.outlook_calendar.client import OutlookCalendarClient
from integrations.outlook_calendar.mappers import (
    CANCELLED,
    EMAIL_PROPERTY,
    KEY_PROPERTY,
    PHONE_PROPERTY,
    PROVIDER,
    STATUS_PROPERTY,
    appointment,
    busy_intervals,
    cancel_changes,
    event_body,
    graph_time,
    is_ours,
    properties,
    restore_changes,
    schedule_errors,
    transaction_id_for,
)
from integrations.outlook_calendar.settings import OutlookCalendarSettings

__all__ = ["OutlookCalendarConnector"]

MAX_APPOINTMENT = timedelta(hours=24)
# getSchedule answers at most 62 days at a time (Graph: "ErrorInvalidTimeInterval" beyond); stay under it.
SCHEDULE_CHUNK = timedelta(days=60)


class OutlookCalendarConnector:
    """Books callers into the default calendar of an Outlook mailbox through Microsoft Graph.

    Outlook has no slot grid or booking notice, so slots come from our `BookingRules` minus the
    busy time getSchedule reports for the owner and every mailbox in `settings.schedules`.
    A booking is created with a `transactionId` derived from the idempotency key, so Graph itself
    answers a retried create with the event it already made; the connector also looks for the
    booking in the slot first (same key, phone or email), so a retry whose first answer was lost
    finds its event instead of meeting its own busy time. Cancelling keeps the event (marked
    cancelled and free) so its id stays valid and a second cancel is harmless.
    """

    name = PROVIDER
    # $top for calendarView and filtered event lists (Graph's default page is 10).
    page_size: int = 50

    def __init__(
        self,
        settings: OutlookCalendarSettings,
        rules: BookingRules,
        client: OutlookCalendarClient,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self.rules = rules
        self._client = client
        self._clock = clock
        self._locks = KeyLocks()
        self._owner_address: str | None = None

    @property
    def default_duration(self) -> timedelta:
        """One slot of the booking grid."""
        return timedelta(minutes=self.rules.slot_minutes)

    async def check_connection(self) -> str:
        """Read the default calendar: proves the token works and names the mailbox it belongs to."""
        calendar = await self._client.get_calendar()
        owner = (calendar.get("owner") or {}).get("address") or "unknown owner"
        self._owner_address = str(owner) if "@" in str(owner) else None
        return f"calendar {calendar.get('name', 'Calendar')} of {owner}"

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Slots on our grid inside opening hours that no schedule is busy for."""
        now = self._clock().astimezone(UTC)
        earliest = max(start.astimezone(UTC), now + timedelta(minutes=self.rules.min_notice_minutes))
        latest = min(end.astimezone(UTC), now + timedelta(days=self.rules.horizon_days))
        if earliest >= latest:
            return []
        buffer = timedelta(minutes=self.rules.buffer_minutes)
        busy = await self._busy(earliest - buffer, latest + duration + buffer)
        return candidate_slots(self.rules, start, end, duration, busy, now)

    async def book(self, request: BookingRequest) -> Appointment:
        """Book after checking the rules, the slot's own bookings and free/busy; idempotent per key."""
        duration = elapsed(request.start, request.end)
        self._check_rules(request.start, duration)
        transaction_id = transaction_id_for(request)
        caller_keys = [
            transaction_id,
            f"phone:{request.attendee_phone}" if request.attendee_phone else None,
            f"email:{request.attendee_email.lower()}" if request.attendee_email else None,
        ]
        async with self._locks.hold_all(caller_keys):
            existing = await self._same_booking(request, transaction_id)
            if existing is not None:
                return existing
            if not await self._is_free(request.start, request.end):
                raise SlotUnavailableError("that time is already booked")
            body = event_body(request, transaction_id=transaction_id, zone=self.rules.timezone)
            created = await self._client.create_event(body)
            if properties(created).get(STATUS_PROPERTY) == CANCELLED or not properties(created):
                # Graph answered an event it already had for this transactionId: a booking that was
                # later cancelled (book it again) or one whose properties it did not echo (read it).
                created = await self._revive(created, body)
            return appointment(created, self.rules.timezone)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked event after checking the rules and free/busy (its own time does not count)."""
        current = appointment(await self._booking(appointment_id), self.rules.timezone)
        if current.status != "booked":
            raise NotFoundError("booked appointment", appointment_id)
        if current.start == start and current.end == end:
            return current
        self._check_rules(start, elapsed(start, end))
        if not await self._is_free(start, end, ignoring=(current.start, current.end)):
            raise SlotUnavailableError("that time is already booked")
        changes = {"start": graph_time(start, self.rules.timezone), "end": graph_time(end, self.rules.timezone)}
        await self._client.update_event(appointment_id, changes)
        return appointment(await self._client.get_event(appointment_id), self.rules.timezone)

    async def cancel(self, appointment_id: str) -> Appointment:
        """Mark the booking cancelled and its time free; a booking already cancelled is returned as it is."""
        event = await self._booking(appointment_id)
        if properties(event).get(STATUS_PROPERTY) != CANCELLED:
            await self._client.update_event(appointment_id, cancel_changes(event))
            event = await self._client.get_event(appointment_id)
        return appointment(event, self.rules.timezone)

    async def get(self, appointment_id: str) -> Appointment:
        """One booking by id (an event this integration created)."""
        return appointment(await self._booking(appointment_id), self.rules.timezone)

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked events for this phone or email that end after `since`, by start time."""
        searches = [(PHONE_PROPERTY, phone) if phone else None, (EMAIL_PROPERTY, email.lower()) if email else None]
        found: dict[str, Appointment] = {}
        for search in filter(None, searches):
            for event in await self._client.events_with_property(*search, top=self.page_size):
                if is_ours(event):
                    found.setdefault(str(event["id"]), appointment(event, self.rules.timezone))
        since_utc = since.astimezone(UTC)
        booked = [a for a in found.values() if a.status == "booked" and a.end.astimezone(UTC) > since_utc]
        return sorted(booked, key=lambda a: (a.start.astimezone(UTC), a.id))

    # -- helpers ------------------------------------------------------------------------------------

    def _check_rules(self, start: datetime, duration: timedelta) -> None:
        if duration <= timedelta(0):
            raise SlotUnavailableError("an appointment must end after it starts")
        if duration > MAX_APPOINTMENT:
            raise SlotUnavailableError("appointments last at most 24 hours")
        violation = rule_violation(self.rules, start, duration, self._clock())
        if violation:
            raise SlotUnavailableError(violation)

    async def _schedules(self) -> list[str]:
        if self._owner_address is None:
            await self.check_connection()
        if self._owner_address is None:
            raise UpstreamError(PROVIDER, "the calendar's owner has no address to ask free/busy for")
        return [self._owner_address, *(s for s in self._settings.schedules if s.lower() != self._owner_address.lower())]

    async def _busy(self, start: datetime, end: datetime) -> list[Interval]:
        schedules = await self._schedules()
        busy: list[Interval] = []
        while start < end:
            chunk_end = min(end, start + SCHEDULE_CHUNK)
            answer = await self._client.get_schedule(schedules, start, chunk_end)
            unreadable = schedule_errors(answer)
            if unreadable:
                # An unreadable schedule reports no items; treating it as free would double-book.
                codes = ", ".join(sorted(set(unreadable.values())))
                raise UpstreamError(PROVIDER, f"free/busy unavailable for {len(unreadable)} schedule(s) ({codes})")
            busy += busy_intervals(answer)
            start = chunk_end
        return busy

    async def _is_free(self, start: datetime, end: datetime, *, ignoring: Interval | None = None) -> bool:
        buffer = timedelta(minutes=self.rules.buffer_minutes)
        busy = await self._busy(start.astimezone(UTC) - buffer, end.astimezone(UTC) + buffer)
        if ignoring is not None:
            busy = _without(busy, ignoring)
        # The same arithmetic that offered the slot decides whether it is still free (buffers included).
        slots = candidate_slots(
            self.rules, start, start + timedelta(seconds=1), elapsed(start, end), busy, self._clock()
        )
        return any(slot.start == start for slot in slots)

    async def _same_booking(self, request: BookingRequest, transaction_id: str) -> Appointment | None:
        """A live booking at this start made by this request (its key) or by this caller (phone or email)."""
        phone = request.attendee_phone
        email = (request.attendee_email or "").lower() or None
        for event in await self._client.calendar_view(request.start, request.end, top=self.page_size):
            values = properties(event)
            if KEY_PROPERTY not in values or values.get(STATUS_PROPERTY) == CANCELLED:
                continue
            found = appointment(event, self.rules.timezone)
            if found.start != request.start:
                continue
            same_key = values[KEY_PROPERTY] == transaction_id
            same_phone = phone is not None and values.get(PHONE_PROPERTY) == phone
            same_email = email is not None and values.get(EMAIL_PROPERTY, "").lower() == email
            if same_key or same_phone or same_email:
                return found
        return None

    async def _booking(self, event_id: str) -> dict[str, Any]:
        event = await self._client.get_event(event_id)
        if not is_ours(event):
            # Staff's own events (meetings, holidays) are busy time, never something a caller may move or cancel.
            raise NotFoundError("appointment", event_id)
        return event

    async def _revive(self, event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        event_id = str(event["id"])
        current = await self._client.get_event(event_id)
        if properties(current).get(STATUS_PROPERTY) == CANCELLED:
            await self._client.update_event(event_id, restore_changes(body))
            current = await self._client.get_event(event_id)
        return current


def _without(busy: list[Interval], own: Interval) -> list[Interval]:
    """Busy intervals minus an event's own time (schedule items may merge touching events)."""
    own_start, own_end = own
    remaining: list[Interval] = []
    for start, end in busy:
        if end <= own_start or start >= own_end:
            remaining.append((start, end))
            continue
        if start < own_start:
            remaining.append((start, own_start))
        if end > own_end:
            remaining.append((own_end, end))
    return remaining
