"""GoHighLevel as a `CrmProvider` and a `CalendarProvider`: one location's contacts, notes and calendar."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from integrations.capabilities.errors import (
    ConfigurationError,
    NotFoundError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import (
    Appointment,
    BookingRequest,
    Contact,
    ContactDraft,
    Note,
    TimeSlot,
    elapsed,
)
from integrations.common import phones
from integrations.common.keylocks import KeyLocks
from integrations.gohighlevel import mappers
from integrations.gohighlevel.client import CALENDARS_VERSION, CONTACTS_VERSION, GhlClient
from integrations.gohighlevel.errors import PROVIDER, GhlError
from integrations.gohighlevel.settings import GoHighLevelSettings

__all__ = ["CLOCK_SKEW", "GoHighLevelConnector"]

T = TypeVar("T")
# Search pages: GoHighLevel allows 500 a page; no caller has 1,000 records.
_PAGE_SIZE = 100
_MAX_PAGES = 10
# A note's dateAdded comes from GoHighLevel's clock and `earlier_attempt_at` from ours.
CLOCK_SKEW = timedelta(minutes=5)
MAX_APPOINTMENT = timedelta(hours=24)
# free-slots answers at most 31 days per request (SPEC: the startDate/endDate descriptions).
_SLOTS_WINDOW = timedelta(days=31)
_TAKEN = "that time is already booked or outside the business's hours"


class GoHighLevelConnector:
    """Contacts, notes and appointments in one GoHighLevel sub-account (LeadConnector API v2).

    Every request is scoped to `location_id`. Lookups by phone use the advanced contact search
    with the number in each way people type it (the search compares stored text), then keep only
    contacts whose stored phone has the caller's digits. New contacts go through `POST
    /contacts/upsert`, which GoHighLevel deduplicates by email and phone, so a retried create
    lands on the contact the first attempt made. Bookings need a contact: the attendee's is
    found or created first. GoHighLevel has no idempotency header, so a booking looks for the
    contact's appointment at that start before it writes (and before each retry), under
    per-key locks.
    """

    name = PROVIDER

    def __init__(
        self, settings: GoHighLevelSettings, zone: str, client: GhlClient, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        self.zone = zone
        self._client = client
        self._clock = clock
        self._locks = KeyLocks()

    # -- CrmProvider -----------------------------------------------------------------------------------

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        """Contacts holding the phone (in any typed format) or the email; phone matches first."""
        if not phone and not email:
            return []
        region = self._region(phone)
        return [mappers.to_contact(r, region=region) for r in await self._search(phone, email)]

    async def get_contact(self, contact_id: str) -> Contact:
        """One contact by id; raises `NotFoundError`."""
        return mappers.to_contact(await self._contact(contact_id), region=self._settings.default_region)

    async def create_contact(self, draft: ContactDraft) -> Contact:
        """The contact with this phone or email, its blanks filled in, or else a new one."""
        region = self._region(draft.phone)
        keys = [
            f"phone:{draft.phone}" if draft.phone else None,
            f"email:{draft.email.lower()}" if draft.email else None,
        ]
        async with self._locks.hold_all(keys):
            if draft.phone or draft.email:
                found = await self._search(draft.phone, draft.email)
                if found:
                    return mappers.to_contact(await self._fill_blanks(found[0], draft, found), region=region)
            body: dict[str, Any] = {"locationId": self._settings.location_id, **mappers.contact_fields(draft)}
            # https://marketplace.gohighlevel.com/docs/ghl/contacts/upsert-contact
            if draft.phone or draft.email:
                # Deduplicated by GoHighLevel on email and phone: safe to retry.
                answer = await self._client.call("POST", "/contacts/upsert", version=CONTACTS_VERSION, body=body)
            else:
                # Nothing to deduplicate on: one attempt, never repeated.
                answer = await self._client.send("POST", "/contacts/upsert", version=CONTACTS_VERSION, body=body)
        return mappers.to_contact(_contact_of(answer), region=region)

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        """Change the given fields; fields left as None are kept. Raises `NotFoundError`."""
        fields = mappers.contact_fields(draft)
        if not fields:
            return await self.get_contact(contact_id)
        updated = await self._put_contact(contact_id, fields)
        return mappers.to_contact(updated, region=self._region(draft.phone))

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """Attach a note; raises `NotFoundError` for an unknown contact.

        GoHighLevel has no idempotency key, so `idempotency_key` is only a lock here. When an
        earlier attempt may have landed (`earlier_attempt_at`, or a retry of this call after an
        answer was lost) the contact's notes are read first: one with this body written since
        that attempt began (less `CLOCK_SKEW`) is returned instead of writing a second.
        """
        started = self._clock()
        async with self._locks.hold(f"note:{contact_id}:{idempotency_key}" if idempotency_key else None):
            if earlier_attempt_at is not None:
                earlier = await self._note_since(contact_id, body, earlier_attempt_at - CLOCK_SKEW)
                if earlier is not None:
                    return mappers.to_note(earlier, contact_id, fallback_time=started)
            path = f"/contacts/{contact_id}/notes"

            async def write() -> dict[str, Any]:
                # https://marketplace.gohighlevel.com/docs/ghl/contacts/create-note
                answer = await self._client.send(
                    "POST", path, version=CONTACTS_VERSION, body={"body": body}, subject=("contact", contact_id)
                )
                return dict(answer.get("note") or {})

            async def landed() -> dict[str, Any] | None:
                return await self._note_since(contact_id, body, started - CLOCK_SKEW, once=True)

            note = await self._write_once(write, landed)
        return mappers.to_note(note, contact_id, fallback_time=started)

    async def check_connection(self) -> str:
        """One contact search (contacts scope) and, with a calendar set, the calendar (calendars scope)."""
        await self._search_page([], page=1, limit=1)
        line = f"gohighlevel location {self._settings.location_id}"
        if self._settings.calendar_id:
            # https://marketplace.gohighlevel.com/docs/ghl/calendars/get-calendar
            answer = await self._client.call(
                "GET", f"/calendars/{self._settings.calendar_id}", version=CALENDARS_VERSION
            )
            calendar = answer.get("calendar") or {}
            line += f", calendar {calendar.get('name', self._settings.calendar_id)} ({self.zone})"
        return line

    # -- CalendarProvider ---------------------------------------------------------------------------------

    @property
    def default_duration(self) -> timedelta:
        """The calendar's slot length."""
        return timedelta(minutes=self._settings.slot_minutes)

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """GoHighLevel's free slots that start in [start, end) (and not in the past), `duration` long."""
        earliest = max(start.astimezone(UTC), self._clock().astimezone(UTC))
        latest = end.astimezone(UTC)
        if earliest >= latest or duration <= timedelta(0):
            return []
        offered = await self._offered(earliest, latest + duration)
        step = self.default_duration
        pieces = max(1, math.ceil(duration / step))
        zone = ZoneInfo(self.zone)
        found = []
        for begin in sorted(offered):
            if not earliest <= begin < latest:
                continue
            if all(begin + step * i in offered for i in range(pieces)):
                local = begin.astimezone(zone)
                found.append(TimeSlot(start=local, end=(begin + duration).astimezone(zone)))
        return found

    async def book(self, request: BookingRequest) -> Appointment:
        """Book after re-checking the slot; idempotent per key and per caller and start."""
        calendar_id = self._calendar_id()
        duration = elapsed(request.start, request.end)
        if duration <= timedelta(0) or duration > MAX_APPOINTMENT:
            raise SlotUnavailableError("an appointment must end after it starts and last at most 24 hours")
        if request.start.astimezone(UTC) < self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        stamp = request.start.astimezone(UTC).isoformat()
        callers = [f"caller:{stamp}:{c}" for c in (request.attendee_phone, request.attendee_email) if c]
        key = f"booking:{request.idempotency_key}" if request.idempotency_key else None
        async with self._locks.hold_all([key, *callers]):
            contact = await self._attendee(request)
            existing = await self._booked(request, contact.id, once=False)
            if existing is not None:
                return mappers.appointment(existing, contact, self.zone)
            if not await self._is_offered(request.start, request.end):
                raise SlotUnavailableError(_TAKEN)
            body: dict[str, Any] = {
                "calendarId": calendar_id,
                "locationId": self._settings.location_id,
                "contactId": contact.id,
                "startTime": mappers.iso(request.start, self.zone),
                "endTime": mappers.iso(request.end, self.zone),
                "title": f"{request.attendee_name} (booked by phone)",
                "appointmentStatus": "confirmed",
            }
            if request.notes:
                body["description"] = request.notes
            if request.attendee_address:
                body["address"] = request.attendee_address

            async def write() -> dict[str, Any]:
                # https://marketplace.gohighlevel.com/docs/ghl/calendars/create-appointment
                return await self._client.send(
                    "POST", "/calendars/events/appointments", version=CALENDARS_VERSION, body=body
                )

            async def landed() -> dict[str, Any] | None:
                return await self._booked(request, contact.id, once=True)

            try:
                created = await self._write_once(write, landed)
            except GhlError as error:
                raise _unavailable(error) from None
        return mappers.appointment(created, contact, self.zone, notes=request.notes)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked appointment to a free time (its own time counts as free)."""
        event = await self._event(appointment_id)
        if not mappers.is_live(event):
            raise NotFoundError("booked appointment", appointment_id)
        contact = await self._contact_quietly(str(event.get("contactId") or ""))
        current = mappers.appointment(event, contact, self.zone)
        if current.start == start and current.end == end:
            return current
        if elapsed(start, end) <= timedelta(0) or elapsed(start, end) > MAX_APPOINTMENT:
            raise SlotUnavailableError("an appointment must end after it starts and last at most 24 hours")
        if start.astimezone(UTC) < self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        if not await self._is_offered(start, end, own=(current.start, current.end)):
            raise SlotUnavailableError(_TAKEN)
        body = {"startTime": mappers.iso(start, self.zone), "endTime": mappers.iso(end, self.zone)}
        try:
            # https://marketplace.gohighlevel.com/docs/ghl/calendars/edit-appointment
            moved = await self._client.call(
                "PUT",
                f"/calendars/events/appointments/{appointment_id}",
                version=CALENDARS_VERSION,
                body=body,
                subject=("appointment", appointment_id),
            )
        except GhlError as error:
            raise _unavailable(error) from None
        return mappers.appointment(moved, contact, self.zone, notes=current.notes)

    async def cancel(self, appointment_id: str) -> Appointment:
        """Set the appointment's status to cancelled; one already cancelled is returned as it is."""
        event = await self._event(appointment_id)
        contact = await self._contact_quietly(str(event.get("contactId") or ""))
        if not mappers.is_live(event):
            return mappers.appointment(event, contact, self.zone)
        # https://marketplace.gohighlevel.com/docs/ghl/calendars/edit-appointment
        cancelled = await self._client.call(
            "PUT",
            f"/calendars/events/appointments/{appointment_id}",
            version=CALENDARS_VERSION,
            body={"appointmentStatus": "cancelled"},
            subject=("appointment", appointment_id),
        )
        notes = event.get("description") or event.get("notes")
        return mappers.appointment(cancelled, contact, self.zone, notes=str(notes) if notes else None)

    async def get(self, appointment_id: str) -> Appointment:
        """One appointment of this calendar by id; raises `NotFoundError`."""
        event = await self._event(appointment_id)
        contact = await self._contact_quietly(str(event.get("contactId") or ""))
        return mappers.appointment(event, contact, self.zone)

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked appointments on this calendar for the caller's contact(s) that end after `since`."""
        if not phone and not email:
            return []
        calendar_id = self._calendar_id()
        found: dict[str, Appointment] = {}
        for record in await self._search(phone, email):
            contact = mappers.to_contact(record, region=self._region(phone))
            # https://marketplace.gohighlevel.com/docs/ghl/contacts/get-appointments-for-contact
            listed = await self._client.call(
                "GET",
                f"/contacts/{contact.id}/appointments",
                version=CONTACTS_VERSION,
                subject=("contact", contact.id),
            )
            for item in listed.get("events") or []:
                if not isinstance(item, dict) or item.get("calendarId") != calendar_id or not mappers.is_live(item):
                    continue
                # The list gives wall-clock times without an offset: read each one whole.
                event = await self._event(str(item["id"]))
                shown = mappers.appointment(event, contact, self.zone)
                if shown.status == "booked" and shown.end.astimezone(UTC) > since.astimezone(UTC):
                    found[shown.id] = shown
        return sorted(found.values(), key=lambda a: (a.start.astimezone(UTC), a.id))

    # -- contacts: helpers ---------------------------------------------------------------------------------

    def _region(self, phone: str | None) -> str:
        return phones.region_of(phone) or self._settings.default_region

    async def _search(self, phone: str | None, email: str | None) -> list[dict[str, Any]]:
        """Full records of the contacts holding the phone or the email, phone matches first."""
        filters = mappers.search_filters(phone, email)
        candidates: dict[str, dict[str, Any]] = {}
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._search_page(filters, page=page, limit=_PAGE_SIZE)
            listed = [c for c in answer.get("contacts") or [] if isinstance(c, dict) and c.get("id")]
            for item in listed:
                candidates.setdefault(str(item["id"]), item)
            total = answer.get("total")
            if len(listed) < _PAGE_SIZE or (isinstance(total, int) and len(candidates) >= total):
                break
        matching = [
            c
            for c in candidates.values()
            if c.get("locationId") in (None, self._settings.location_id)
            and (mappers.holds_phone(c, phone) or mappers.holds_email(c, email))
        ]
        matching.sort(key=lambda c: 0 if mappers.holds_phone(c, phone) else 1)
        # The search lists lower-cased names only: read each match whole.
        return [await self._contact(str(c["id"])) for c in matching]

    async def _search_page(self, filters: list[dict[str, Any]], *, page: int, limit: int) -> dict[str, Any]:
        body = {"locationId": self._settings.location_id, "page": page, "pageLimit": limit, "filters": filters}
        # https://marketplace.gohighlevel.com/docs/ghl/contacts/search-contacts-advanced
        return await self._client.call("POST", "/contacts/search", version=CONTACTS_VERSION, body=body)

    async def _contact(self, contact_id: str) -> dict[str, Any]:
        # https://marketplace.gohighlevel.com/docs/ghl/contacts/get-contact
        answer = await self._client.call(
            "GET", f"/contacts/{contact_id}", version=CONTACTS_VERSION, subject=("contact", contact_id)
        )
        contact = _contact_of(answer)
        if contact.get("locationId") not in (None, self._settings.location_id):
            # A token of the agency could read another sub-account's contact: not this connection's.
            raise NotFoundError("contact", contact_id)
        return contact

    async def _contact_quietly(self, contact_id: str) -> Contact | None:
        if not contact_id:
            return None
        try:
            return await self.get_contact(contact_id)
        except NotFoundError:
            return None

    async def _put_contact(self, contact_id: str, fields: dict[str, str]) -> dict[str, Any]:
        # https://marketplace.gohighlevel.com/docs/ghl/contacts/update-contact
        answer = await self._client.call(
            "PUT", f"/contacts/{contact_id}", version=CONTACTS_VERSION, body=fields, subject=("contact", contact_id)
        )
        return _contact_of(answer)

    async def _fill_blanks(
        self, existing: dict[str, Any], draft: ContactDraft, found: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """PUT only what `existing` lacks; a phone or email another found contact holds stays off."""
        others = [c for c in found if c.get("id") != existing.get("id")]
        fill = mappers.blank_fields(
            existing,
            draft,
            phone_taken=any(mappers.holds_phone(c, draft.phone) for c in others),
            email_taken=any(mappers.holds_email(c, draft.email) for c in others),
        )
        if not fill:
            return existing
        return await self._put_contact(str(existing["id"]), fill)

    async def _note_since(
        self, contact_id: str, body: str, not_before: datetime, *, once: bool = False
    ) -> dict[str, Any] | None:
        """The newest of the contact's notes with this body written at or after `not_before`."""
        path = f"/contacts/{contact_id}/notes"
        request = self._client.send if once else self._client.call
        # https://marketplace.gohighlevel.com/docs/ghl/contacts/get-all-notes
        answer = await request("GET", path, version=CONTACTS_VERSION, subject=("contact", contact_id))
        notes = [n for n in answer.get("notes") or [] if isinstance(n, dict)]
        for note in sorted(notes, key=lambda n: str(n.get("dateAdded") or ""), reverse=True):
            written = mappers.note_written_at(note)
            if note.get("body") == body and written is not None and written >= not_before:
                return note
        return None

    async def _write_once(
        self, write: Callable[[], Awaitable[dict[str, Any]]], landed: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any]:
        """`write` under Resilience, looking (`landed`) before every retry and once more after the last.

        GoHighLevel has no idempotency key: an attempt whose answer was lost (a 5xx, a timeout)
        may have written, so a retry first looks for what it would write.
        """
        attempts = 0

        async def attempt() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                earlier = await landed()
                if earlier is not None:
                    return earlier
            return await write()

        try:
            return await self._client.resilience.call(attempt)
        except UpstreamError as error:
            if not error.retryable:
                raise
            # Out of retries: one last look, so a write that did land is never reported as failed.
            try:
                earlier = await landed()
            except UpstreamError:
                earlier = None
            if earlier is None:
                raise
            return earlier

    # -- calendar: helpers -----------------------------------------------------------------------------------

    def _calendar_id(self) -> str:
        if not self._settings.calendar_id:
            raise ConfigurationError("calendar_id", "set the GoHighLevel calendar callers are booked into")
        return self._settings.calendar_id

    async def _attendee(self, request: BookingRequest) -> Contact:
        """The attendee's contact: found by phone or email, or created (GoHighLevel books contacts)."""
        draft = ContactDraft(name=request.attendee_name, phone=request.attendee_phone, email=request.attendee_email)
        if draft.phone or draft.email:
            return await self.create_contact(draft)
        found = await self._client.send(
            "POST",
            "/contacts/upsert",
            version=CONTACTS_VERSION,
            body={"locationId": self._settings.location_id, **mappers.contact_fields(draft)},
        )
        return mappers.to_contact(_contact_of(found), region=self._settings.default_region)

    async def _offered(self, start: datetime, end: datetime) -> set[datetime]:
        """Free slot starts GoHighLevel offers between start and end (31-day requests), as UTC instants."""
        calendar_id = self._calendar_id()
        offered: set[datetime] = set()
        cursor = start
        while cursor < end:
            upto = min(end, cursor + _SLOTS_WINDOW)
            params: dict[str, str | int] = {
                "startDate": mappers.millis(cursor),
                "endDate": mappers.millis(upto),
                "timezone": self.zone,
            }
            # https://marketplace.gohighlevel.com/docs/ghl/calendars/get-slots
            answer = await self._client.call(
                "GET", f"/calendars/{calendar_id}/free-slots", version=CALENDARS_VERSION, params=params
            )
            for day, value in answer.items():
                if day == "traceId" or not isinstance(value, dict):
                    continue
                for text in value.get("slots") or []:
                    try:
                        offered.add(mappers.parse_time(text, self.zone).astimezone(UTC))
                    except ValueError:
                        continue
            cursor = upto
        return offered

    async def _is_offered(
        self, start: datetime, end: datetime, *, own: tuple[datetime, datetime] | None = None
    ) -> bool:
        """Whether every slot of [start, end) is free (or inside the appointment being moved)."""
        step = self.default_duration
        begin = start.astimezone(UTC)
        pieces = max(1, math.ceil(elapsed(start, end) / step))
        offered = await self._offered(begin, begin + step * pieces)
        for i in range(pieces):
            piece = begin + step * i
            inside_own = own is not None and own[0].astimezone(UTC) <= piece < own[1].astimezone(UTC)
            if piece not in offered and not inside_own:
                return False
        return True

    async def _event(self, appointment_id: str) -> dict[str, Any]:
        # https://marketplace.gohighlevel.com/docs/ghl/calendars/get-appointment
        answer = await self._client.call(
            "GET",
            f"/calendars/events/appointments/{appointment_id}",
            version=CALENDARS_VERSION,
            subject=("appointment", appointment_id),
        )
        event = answer.get("event")
        if not isinstance(event, dict) or event.get("calendarId") != self._calendar_id():
            raise NotFoundError("appointment", appointment_id)
        return event

    async def _booked(self, request: BookingRequest, contact_id: str, *, once: bool) -> dict[str, Any] | None:
        """The contact's live appointment on this calendar starting at the request's start, if any."""
        params: dict[str, str | int] = {
            "locationId": self._settings.location_id,
            "calendarId": self._calendar_id(),
            "startTime": str(mappers.millis(request.start)),
            "endTime": str(mappers.millis(request.end)),
        }
        request_fn = self._client.send if once else self._client.call
        # https://marketplace.gohighlevel.com/docs/ghl/calendars/get-calendar-events
        answer = await request_fn("GET", "/calendars/events", version=CALENDARS_VERSION, params=params)
        for event in answer.get("events") or []:
            if (
                isinstance(event, dict)
                and event.get("contactId") == contact_id
                and mappers.is_live(event)
                and mappers.parse_time(event["startTime"], self.zone) == request.start
            ):
                return event
        return None


def _contact_of(answer: dict[str, Any]) -> dict[str, Any]:
    contact = answer.get("contact")
    if not isinstance(contact, dict) or not contact.get("id"):
        raise UpstreamError(PROVIDER, "GoHighLevel answered without a contact")
    return contact


def _unavailable(error: GhlError) -> Exception:
    """GoHighLevel's refusal of a taken or closed time as SlotUnavailableError; anything else as it is."""
    text = error.vendor_message.lower()
    if error.status in (400, 409, 422) and ("slot" in text or "available" in text):
        return SlotUnavailableError(_TAKEN)
    return error
