"""Google Calendar as a `CalendarProvider`: our booking rules over Google's free/busy and events."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.capabilities.errors import NotFoundError, SlotUnavailableError, UpstreamError
from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot, elapsed
from integrations.capabilities.scheduling import BookingRules, Interval, candidate_slots, rule_violation
from integrations.google_calendar.client import GoogleCalendarClient
from integrations.google_calendar.mappers import (
    EMAIL_PROPERTY,
    KEY_PROPERTY,
    PHONE_PROPERTY,
    PROVIDER,
    appointment,
    busy_intervals,
    event_body,
    event_id_for,
    event_time,
    freebusy_errors,
)
from integrations.google_calendar.settings import GoogleCalendarSettings

__all__ = ["GoogleCalendarConnector"]

MAX_APPOINTMENT = timedelta(hours=24)
FREEBUSY_CHUNK = timedelta(days=60)


class GoogleCalendarConnector:
    """Books callers into a Google calendar.

    Google has no opening hours or slot grid, so slots come from our `BookingRules` minus the
    busy time freeBusy reports for every configured calendar. Bookings go to the first calendar.
    Google has no transaction across a free/busy read and an insert: the re-check just before
    inserting narrows, but cannot close, the window in which two callers take the same slot.
    """

    name = PROVIDER
    # events.list page size (Google's default is 250, its maximum 2500).
    page_size: int = 250

    def __init__(
        self,
        settings: GoogleCalendarSettings,
        rules: BookingRules,
        client: GoogleCalendarClient,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self.rules = rules
        self._client = client
        self._clock = clock
        self._calendar = settings.calendar_ids[0]

    @property
    def default_duration(self) -> timedelta:
        """One slot of the booking grid."""
        return timedelta(minutes=self.rules.slot_minutes)

    async def check_connection(self) -> str:
        """Read the booking calendar's metadata: proves the token works and the calendar is visible."""
        calendar = await self._client.get_calendar(self._calendar)
        return f"calendar {self._calendar} ({calendar.get('timeZone', 'no timezone')})"

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Slots on our grid inside opening hours that no configured calendar is busy for."""
        now = self._clock().astimezone(UTC)
        # Only ask Google about the window the rules can offer (notice to horizon); a slot starting
        # just before its end runs past it, and buffers reach beyond both sides.
        earliest = max(start.astimezone(UTC), now + timedelta(minutes=self.rules.min_notice_minutes))
        latest = min(end.astimezone(UTC), now + timedelta(days=self.rules.horizon_days))
        if earliest >= latest:
            return []
        buffer = timedelta(minutes=self.rules.buffer_minutes)
        busy = await self._busy(earliest - buffer, latest + duration + buffer)
        return candidate_slots(self.rules, start, end, duration, busy, now)

    async def book(self, request: BookingRequest) -> Appointment:
        """Book after checking the rules, the caller's own bookings and free/busy; idempotent per key."""
        duration = elapsed(request.start, request.end)
        self._check_rules(request.start, duration)
        existing = await self._same_caller_booking(request)
        if existing is not None:
            return existing
        event_id = event_id_for(request)
        if not await self._is_free(request.start, request.end):
            # A retry of a booking that already got through sees its own event as the busy time.
            earlier = await self._live_event(event_id)
            if earlier is not None:
                return earlier
            raise SlotUnavailableError("that time is already booked")
        body = event_body(request, event_id=event_id, zone=self.rules.timezone)
        try:
            created = await self._client.insert_event(self._calendar, body, self._settings.send_updates)
        except UpstreamError as error:
            if error.status != 409:
                raise
            # 409 duplicate: our id already exists, so an earlier attempt of this booking got through.
            return await self._existing_booking(event_id, body)
        return appointment(created, self.rules.timezone)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked event after checking the rules and free/busy (its own time does not count)."""
        event = await self._booking(appointment_id)
        current = appointment(event, self.rules.timezone)
        if current.status != "booked":
            raise NotFoundError("booked appointment", appointment_id)
        if current.start == start and current.end == end:
            return current
        self._check_rules(start, elapsed(start, end))
        if not await self._is_free(start, end, ignoring=(current.start, current.end)):
            raise SlotUnavailableError("that time is already booked")
        changes = {"start": event_time(start, self.rules.timezone), "end": event_time(end, self.rules.timezone)}
        moved = await self._client.patch_event(self._calendar, appointment_id, changes, self._settings.send_updates)
        return appointment(moved, self.rules.timezone)

    async def cancel(self, appointment_id: str) -> Appointment:
        """Delete the event; an event already cancelled is returned as it is."""
        event = await self._booking(appointment_id)
        if event.get("status") != "cancelled":
            # A 410 means it was deleted between our read and our delete, which is what we wanted.
            with contextlib.suppress(NotFoundError):
                await self._client.delete_event(self._calendar, appointment_id, self._settings.send_updates)
        return appointment({**event, "status": "cancelled"}, self.rules.timezone)

    async def get(self, appointment_id: str) -> Appointment:
        """One booking by id (an event this integration created)."""
        return appointment(await self._booking(appointment_id), self.rules.timezone)

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked events for this phone or email that end after `since`, by start time."""
        # Several privateExtendedProperty filters are ANDed by Google, so phone and email are two searches.
        searches = [
            f"{PHONE_PROPERTY}={phone}" if phone else None,
            f"{EMAIL_PROPERTY}={email.lower()}" if email else None,
        ]
        found: dict[str, Appointment] = {}
        for search in filter(None, searches):
            for event in await self._events(search, since):
                found.setdefault(str(event["id"]), appointment(event, self.rules.timezone))
        booked = [a for a in found.values() if a.status == "booked"]
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

    async def _busy(self, start: datetime, end: datetime) -> list[Interval]:
        busy: list[Interval] = []
        # Google refuses long freeBusy ranges ("The requested time range is too long."; the limit is
        # undocumented, observed near two to three months), so long windows are asked in chunks.
        while start < end:
            chunk_end = min(end, start + FREEBUSY_CHUNK)
            busy += await self._busy_chunk(start, chunk_end)
            start = chunk_end
        return busy

    async def _busy_chunk(self, start: datetime, end: datetime) -> list[Interval]:
        answer = await self._client.free_busy(self._settings.calendar_ids, start, end)
        unreadable = freebusy_errors(answer)
        if unreadable:
            # An unreadable calendar reports no busy time; treating it as free would double-book.
            reasons = sorted({reason for found in unreadable.values() for reason in found})
            raise UpstreamError(
                PROVIDER,
                f"free/busy unavailable for {len(unreadable)} calendar(s) ({', '.join(reasons)})",
                retryable="backendError" in reasons,
            )
        return busy_intervals(answer)

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

    async def _same_caller_booking(self, request: BookingRequest) -> Appointment | None:
        searches = []
        if request.attendee_phone:
            searches.append(f"{PHONE_PROPERTY}={request.attendee_phone}")
        if request.attendee_email:
            searches.append(f"{EMAIL_PROPERTY}={request.attendee_email.lower()}")
        for search in searches:
            page = await self._client.list_events(
                self._calendar, private_property=search, time_min=request.start, time_max=request.end
            )
            for event in page.get("items") or []:
                found = appointment(event, self.rules.timezone)
                if found.status == "booked" and found.start == request.start:
                    return found
        return None

    async def _booking(self, event_id: str) -> dict[str, Any]:
        event = await self._client.get_event(self._calendar, event_id)
        private = (event.get("extendedProperties") or {}).get("private") or {}
        if KEY_PROPERTY not in private:
            # Staff's own events (meetings, holidays) are busy time, never something a caller may move or cancel.
            raise NotFoundError("appointment", event_id)
        return event

    async def _live_event(self, event_id: str) -> Appointment | None:
        try:
            event = await self._client.get_event(self._calendar, event_id)
        except NotFoundError:
            return None
        found = appointment(event, self.rules.timezone)
        return found if found.status == "booked" else None

    async def _existing_booking(self, event_id: str, body: dict[str, Any]) -> Appointment:
        event = await self._client.get_event(self._calendar, event_id)
        if event.get("status") == "cancelled":
            # Same caller and start as a booking they cancelled: Google keeps the id, so restore it.
            restored = {**{k: v for k, v in body.items() if k != "id"}, "status": "confirmed"}
            event = await self._client.patch_event(self._calendar, event_id, restored, self._settings.send_updates)
        return appointment(event, self.rules.timezone)

    async def _events(self, search: str, since: datetime) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self._client.list_events(
                self._calendar, private_property=search, time_min=since, max_results=self.page_size, page_token=token
            )
            events.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return events


def _without(busy: list[Interval], own: Interval) -> list[Interval]:
    """Busy intervals minus an event's own time (freeBusy merges touching events into one interval)."""
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
