"""Housecall Pro as a CRM (customers and their notes) and a calendar (jobs or estimates on its booking windows)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

from integrations.capabilities.errors import NotFoundError, SlotUnavailableError
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
from integrations.common.zones import zone_info
from integrations.housecall_pro import mappers
from integrations.housecall_pro.client import HousecallClient, Params
from integrations.housecall_pro.errors import PROVIDER
from integrations.housecall_pro.settings import HousecallProSettings

__all__ = ["CLOCK_SKEW", "HousecallProConnector"]

# Housecall Pro's largest page size is not documented (default 10); 100 is asked for (UNCONFIRMED
# maximum: a smaller cap only means more pages, which `total_pages` drives). Pages are bounded.
_PAGE_SIZE = 100
_MAX_PAGES = 10
# A note's marker time comes from the clock of the process that wrote it, `earlier_attempt_at` from
# the tool server's: a note written this long before that attempt began still counts as its own.
CLOCK_SKEW = timedelta(minutes=5)
MAX_APPOINTMENT = timedelta(hours=24)
# Booking windows are asked for at most this many days at once.
_MAX_DAYS = 31
_TAKEN = "that time is already booked or outside the business's hours"
# The street of the address put on a job when the caller gave none and the customer has none.
PLACEHOLDER_STREET = "Address to be confirmed (booked by phone)"
# A booking window: (start, end, available), in UTC.
Window = tuple[datetime, datetime, bool]


class HousecallProConnector:
    """One Housecall Pro company, as a CRM and as a calendar.

    Auth: a Company API key, sent as `Authorization: Token <key>`. Housecall Pro also has OAuth
    (authorize at pro.housecallpro.com, tokens at api.housecallpro.com/oauth/token, Bearer), but
    it is offered to approved partner apps only; a business connecting its own account makes an
    API key in its settings (MAX plan), so this integration uses the key. A key Housecall Pro
    refuses (401/403) marks the connection expired and raises `ProviderNotConnectedError`.

    CRM: customers are looked up with the list endpoint's `q` search, which matches text as it is
    stored (see `find_contacts`); candidates are kept only when a stored phone (mobile, home or
    work) is the caller's number digit for digit, or the email is theirs. Housecall Pro has no
    idempotency keys: creates search first (per phone and email under `KeyLocks`), and every
    attempt of a create looks again before it writes, so a retried create finds what an earlier
    attempt made. Notes live in the customer's `notes` field (see `mappers`), read-modify-write per
    customer under a lock; a note with an idempotency key is found again by its key.

    Calendar: free time is Housecall Pro's booking windows (the company's Online Booking settings
    and its pros' open time). A booking is a job (`POST /jobs`) or an estimate (`POST /estimates`)
    per `book_as`, for the caller's customer (found or created) at the caller's address (an
    existing address of the customer when it is the same, else a new one). A retried booking
    finds the customer's record at the same start (under per-key and per-caller locks) instead of
    writing a second. Housecall Pro has no job-cancel endpoint: cancelling erases the job's
    schedule (`DELETE /jobs/{id}/schedule`) after a job note records the times it had; an
    estimate is cancelled by declining its options.
    """

    name = PROVIDER
    # Notes are entries in the customer's one `notes` field, written back whole: the server serializes them.
    notes_in_one_field = True

    def __init__(
        self, settings: HousecallProSettings, zone: str, client: HousecallClient, clock: Callable[[], datetime]
    ) -> None:
        self._settings = settings
        self.zone = zone
        self._zone = zone_info(zone)
        self._client = client
        self._clock = clock
        self._region = settings.phone_region.upper()
        self._creating = KeyLocks()
        self._noting = KeyLocks()
        self._booking = KeyLocks()

    @property
    def default_duration(self) -> timedelta:
        return timedelta(minutes=self._settings.appointment_minutes)

    async def check_connection(self) -> str:
        """Read the company: proves the key (and the plan's API access)."""
        # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Company)
        company = await self._client.call("GET", "/company", capability="crm")
        return f"housecall pro company {company.get('name', '?')} ({self.zone})"

    # -- CrmProvider ---------------------------------------------------------------------------------

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        """Customers holding the phone (in any stored format, any phone field) or the email; phone matches first."""
        found = await self._find_customers(phone, email)
        return [mappers.to_contact(c, region=self._region, phone=phone) for c in found]

    async def get_contact(self, contact_id: str) -> Contact:
        return mappers.to_contact(await self._customer(contact_id, "crm"), region=self._region)

    async def create_contact(self, draft: ContactDraft) -> Contact:
        """The customer with this phone or email, its blanks filled in, or else a new one."""
        customer = await self._find_or_create_customer(draft, "crm")
        return mappers.to_contact(customer, region=self._region, phone=draft.phone)

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        """Change the given fields; fields left as None are kept. Raises `NotFoundError`."""
        customer = await self._customer(contact_id, "crm")
        body = mappers.update_body(customer, draft)
        if body:
            customer = await self._put_customer(contact_id, body, "crm")
        return mappers.to_contact(customer, region=self._region, phone=draft.phone)

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """Append a note to the customer's notes; a note already written under the key is returned instead.

        Every attempt reads the customer, looks for the note, then writes the whole field back, all
        under a per-customer lock (the write replaces the field). Without a key, an earlier attempt
        (`earlier_attempt_at`) is recognised by an entry with the same body written since it began
        (less `CLOCK_SKEW`).
        """
        token = mappers.note_token(idempotency_key)

        async def attempt() -> Note:
            customer = await self._client.send(
                "GET", f"/customers/{contact_id}", capability="crm", subject=("contact", contact_id)
            )
            for found, at, text in mappers.parse_notes(customer.get("notes")):
                if found == token or (
                    earlier_attempt_at is not None
                    and text == body
                    and at is not None
                    and at >= earlier_attempt_at - CLOCK_SKEW
                ):
                    return mappers.to_note(customer, found, at or self._clock(), text)
            when = self._clock()
            notes = mappers.append_note(customer.get("notes"), token, when, body)
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Update Customer)
            updated = await self._client.send(
                "PUT",
                f"/customers/{contact_id}",
                capability="crm",
                body={"notes": notes},
                subject=("contact", contact_id),
            )
            return mappers.to_note(updated, token, when.astimezone(UTC).replace(microsecond=0), body)

        async with self._noting.hold(f"customer:{contact_id}"):
            return await self._client.resilience.call(attempt)

    # -- CalendarProvider -------------------------------------------------------------------------------

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Housecall Pro's available booking windows of `duration` starting in [start, end), not in the past."""
        earliest = max(start.astimezone(UTC), self._clock().astimezone(UTC))
        if earliest >= end.astimezone(UTC) or duration <= timedelta(0):
            return []
        windows = await self._windows(earliest, end.astimezone(UTC), duration)
        return [
            TimeSlot(start=w_start.astimezone(self._zone), end=w_end.astimezone(self._zone))
            for w_start, w_end, available in windows
            if available and earliest <= w_start < end.astimezone(UTC)
        ]

    async def book(self, request: BookingRequest) -> Appointment:
        """Book a job (or estimate) after re-checking the booking windows.

        Idempotent per key and per caller and start: the caller's customer is looked up first, and a
        live record of theirs at this start is returned instead of a second one.
        """
        duration = elapsed(request.start, request.end)
        if duration <= timedelta(0) or duration > MAX_APPOINTMENT:
            raise SlotUnavailableError("an appointment must end after it starts and last at most 24 hours")
        if request.start.astimezone(UTC) < self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        stamp = mappers.hcp_time(request.start)
        callers = [f"caller:{stamp}:{c}" for c in (request.attendee_phone, request.attendee_email) if c]
        key = f"key:{request.idempotency_key}" if request.idempotency_key else None
        async with self._booking.hold_all([key, *callers]):
            draft = ContactDraft(name=request.attendee_name, phone=request.attendee_phone, email=request.attendee_email)
            known = await self._find_customers(draft.phone, draft.email, capability="calendar")
            if known:
                existing = await self._booked_at(str(known[0]["id"]), request.start)
                if existing is not None:
                    return self._appointment(existing)
            if not await self._is_offered(request.start, request.end):
                raise SlotUnavailableError(_TAKEN)
            customer = await self._find_or_create_customer(draft, "calendar")
            address_id = await self._address_for(customer, request.attendee_address)
            body = self._create_body(request, str(customer["id"]), address_id)

            async def attempt() -> dict[str, Any]:
                # Look again before every write: an earlier attempt's create may have landed.
                landed = await self._booked_at(str(customer["id"]), request.start)
                if landed is not None:
                    return landed
                # https://docs.housecallpro.com/docs/housecall-public-api/ (Create Job / Create Estimate)
                return await self._client.send("POST", self._collection, capability="calendar", body=body)

            created = await self._client.resilience.call(attempt)
        return self._appointment(created)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked job (or estimate) to a time the booking windows offer (its own time counts as free)."""
        current = await self._record(appointment_id)
        if not mappers.is_live(current):
            raise NotFoundError("booked appointment", appointment_id)
        shown = self._appointment(current)
        if shown.start == start and shown.end == end:
            return shown
        duration = elapsed(start, end)
        if duration <= timedelta(0) or duration > MAX_APPOINTMENT:
            raise SlotUnavailableError("an appointment must end after it starts and last at most 24 hours")
        if start.astimezone(UTC) < self._clock().astimezone(UTC):
            raise SlotUnavailableError("that time has already passed")
        if not await self._is_offered(start, end, moving=appointment_id):
            raise SlotUnavailableError(_TAKEN)
        body = {
            "start_time": mappers.hcp_time(start),
            "end_time": mappers.hcp_time(end),
            "arrival_window_in_minutes": 0,
            "notify": True,
            "notify_pro": True,
        }
        if self._settings.book_as == "job":
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Update Job Schedule)
            path = f"/jobs/{appointment_id}/schedule"
        else:
            option = _first_option(current, appointment_id)
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Update Estimate Option Schedule)
            path = f"/estimates/{appointment_id}/options/{option}/schedule"
        await self._client.call("PUT", path, capability="calendar", body=body, subject=("appointment", appointment_id))
        return self._appointment(await self._record(appointment_id))

    async def cancel(self, appointment_id: str) -> Appointment:
        """Cancel; an appointment already cancelled is returned as it is."""
        current = await self._record(appointment_id)
        if not mappers.is_live(current):
            return self._appointment(current)
        subject = ("appointment", appointment_id)
        if self._settings.book_as == "job":
            times = mappers.schedule_times(current)
            assert times is not None  # is_live
            content = f"{mappers.CANCEL_MARKER}{mappers.hcp_time(times[0])} to {mappers.hcp_time(times[1])}."
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Add Job Note, then Delete Job Schedule)
            await self._client.call(
                "POST",
                f"/jobs/{appointment_id}/notes",
                capability="calendar",
                body={"content": content},
                subject=subject,
            )
            await self._client.call(
                "DELETE", f"/jobs/{appointment_id}/schedule", capability="calendar", subject=subject
            )
        else:
            options = [str(o["id"]) for o in current.get("options") or [] if isinstance(o, dict) and o.get("id")]
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Decline Estimate Options)
            await self._client.call(
                "POST", "/estimates/options/decline", capability="calendar", body={"option_ids": options}
            )
        return self._appointment(await self._record(appointment_id))

    async def get(self, appointment_id: str) -> Appointment:
        return self._appointment(await self._record(appointment_id))

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Live jobs (or estimates) of the caller's customers that end after `since`, by start time."""
        if not phone and not email:
            return []
        found: dict[str, Appointment] = {}
        for customer in await self._find_customers(phone, email, capability="calendar"):
            params: dict[str, str | int] = {
                "customer_id": str(customer["id"]),
                "scheduled_end_min": mappers.hcp_time(since),
            }
            for record in await self._list_records(params):
                shown = self._appointment(record)
                if shown.status == "booked" and shown.end.astimezone(UTC) > since.astimezone(UTC):
                    found.setdefault(shown.id, shown)
        return sorted(found.values(), key=lambda a: (a.start.astimezone(UTC), a.id))

    # -- customers ---------------------------------------------------------------------------------------

    async def _find_customers(
        self, phone: str | None, email: str | None, *, capability: str = "crm"
    ) -> list[dict[str, Any]]:
        """Customers that truly hold the phone or the email, phone matches first.

        Housecall Pro's `q` searches names, emails, mobile numbers and addresses as stored text
        (UNCONFIRMED whether it compares phone digits; the emulator assumes it does not). So a
        phone is searched in each way people write its subscriber part ("555-0123", "555 0123",
        "555.0123", "5550123" for North American numbers), and every candidate is compared digit
        for digit, with or without the country code, across mobile, home and work numbers.
        """
        results: dict[str, dict[str, Any]] = {}
        for query in [*_phone_queries(phone), *([email.strip().lower()] if email else [])]:
            for customer in await self._search(query, capability):
                results.setdefault(str(customer["id"]), customer)
        by_phone = [c for c in results.values() if mappers.holds_phone(c, phone)]
        by_email = [c for c in results.values() if c not in by_phone and mappers.holds_email(c, email)]
        return by_phone + by_email

    async def _search(self, query: str, capability: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            params: Params = {"q": query, "page": page, "page_size": _PAGE_SIZE, "sort_direction": "asc"}
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Customers)
            answer = await self._client.call("GET", "/customers", capability=capability, params=params)
            found.extend(c for c in answer.get("customers") or [] if isinstance(c, dict) and c.get("id"))
            if page >= int(answer.get("total_pages") or 0):
                break
        return found

    async def _customer(self, customer_id: str, capability: str) -> dict[str, Any]:
        # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Customer)
        return await self._client.call(
            "GET", f"/customers/{customer_id}", capability=capability, subject=("contact", customer_id)
        )

    async def _put_customer(self, customer_id: str, body: dict[str, Any], capability: str) -> dict[str, Any]:
        # https://docs.housecallpro.com/docs/housecall-public-api/ (Update Customer)
        return await self._client.call(
            "PUT", f"/customers/{customer_id}", capability=capability, body=body, subject=("contact", customer_id)
        )

    async def _find_or_create_customer(self, draft: ContactDraft, capability: str) -> dict[str, Any]:
        email = draft.email.strip().lower() if draft.email else None
        keys = [f"phone:{draft.phone}" if draft.phone else None, f"email:{email}" if email else None]
        async with self._creating.hold_all(keys):

            async def attempt() -> tuple[dict[str, Any], bool]:
                if draft.phone or email:
                    found = await self._find_customers(draft.phone, email, capability=capability)
                    if found:
                        return found[0], False
                # https://docs.housecallpro.com/docs/housecall-public-api/ (Create Customer)
                body = mappers.customer_body(draft)
                return await self._client.send("POST", "/customers", capability=capability, body=body), True

            customer, created = await self._client.resilience.call(attempt)
            if not created:
                blanks = mappers.fill_blanks_body(customer, draft)
                if blanks:
                    customer = await self._put_customer(str(customer["id"]), blanks, capability)
        return customer

    async def _address_for(self, customer: dict[str, Any], spoken: str | None) -> str:
        """The id of the customer's address for the job: the spoken one (reused or added), else one they have."""
        stored = [a for a in customer.get("addresses") or [] if isinstance(a, dict) and a.get("id")]
        if spoken and spoken.strip():
            wanted = mappers.parse_address(spoken)
            same = next((a for a in stored if mappers.same_address(a, wanted)), None)
            if same is not None:
                return str(same["id"])
            return await self._add_address(str(customer["id"]), wanted)
        if stored:
            service = [a for a in stored if a.get("type") == "service"]
            return str((service or stored)[0]["id"])
        # A job needs an address; the caller gave none: the company's town, with a street staff will fix.
        company = await self._client.call("GET", "/company", capability="calendar")
        town = company.get("address") or {}
        placeholder = {
            "street": PLACEHOLDER_STREET,
            "city": str(town.get("city") or ""),
            "state": str(town.get("state") or ""),
            "zip": str(town.get("zip") or ""),
            "country": str(town.get("country") or "US"),
        }
        return await self._add_address(str(customer["id"]), placeholder)

    async def _add_address(self, customer_id: str, address: dict[str, str]) -> str:
        async def attempt() -> str:
            # Look before each write: an earlier attempt may have added it.
            customer = await self._client.send(
                "GET", f"/customers/{customer_id}", capability="calendar", subject=("contact", customer_id)
            )
            for stored in customer.get("addresses") or []:
                if isinstance(stored, dict) and stored.get("id") and mappers.same_address(stored, address):
                    return str(stored["id"])
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Create an Address on a Customer)
            created = await self._client.send(
                "POST",
                f"/customers/{customer_id}/addresses",
                capability="calendar",
                body=address,
                subject=("contact", customer_id),
            )
            return str(created["id"])

        return await self._client.resilience.call(attempt)

    # -- jobs and estimates ----------------------------------------------------------------------------

    @property
    def _collection(self) -> str:
        return "/jobs" if self._settings.book_as == "job" else "/estimates"

    def _appointment(self, record: dict[str, Any]) -> Appointment:
        return mappers.appointment(record, zone=self._zone, region=self._region)

    async def _record(self, appointment_id: str) -> dict[str, Any]:
        # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Job / Get Estimate)
        return await self._client.call(
            "GET",
            f"{self._collection}/{appointment_id}",
            capability="calendar",
            subject=("appointment", appointment_id),
        )

    async def _list_records(self, params: Mapping[str, str | int]) -> list[dict[str, Any]]:
        key = "jobs" if self._settings.book_as == "job" else "estimates"
        found: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            query: Params = {**params, "page": page, "page_size": _PAGE_SIZE, "sort_direction": "asc"}
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Jobs / Get Estimates)
            answer = await self._client.call("GET", self._collection, capability="calendar", params=query)
            found.extend(r for r in answer.get(key) or [] if isinstance(r, dict) and r.get("id"))
            if page >= int(answer.get("total_pages") or 0):
                break
        return found

    async def _booked_at(self, customer_id: str, start: datetime) -> dict[str, Any] | None:
        """The customer's live job (or estimate) starting at `start`, if any."""
        stamp = mappers.hcp_time(start)
        params: dict[str, str | int] = {
            "customer_id": customer_id,
            "scheduled_start_min": stamp,
            "scheduled_start_max": stamp,
        }
        for record in await self._list_records(params):
            times = mappers.schedule_times(record)
            if (
                mappers.is_live(record)
                and times is not None
                and times[0] == start.astimezone(UTC).replace(microsecond=0)
            ):
                return record
        return None

    def _create_body(self, request: BookingRequest, customer_id: str, address_id: str) -> dict[str, Any]:
        note = mappers.booking_note(request.notes, request.idempotency_key)
        start, end = mappers.hcp_time(request.start), mappers.hcp_time(request.end)
        if self._settings.book_as == "job":
            body: dict[str, Any] = {
                "customer_id": customer_id,
                "address_id": address_id,
                "schedule": {"scheduled_start": start, "scheduled_end": end, "arrival_window": 0},
                "lead_source": "Phone assistant",
            }
            if note:
                body["notes"] = note
            return body
        body = {
            "customer_id": customer_id,
            "address_id": address_id,
            "options": [{"name": "Estimate visit"}],
            "schedule": {"start_time": start, "end_time": end, "arrival_window_in_minutes": 0, "notify_customer": True},
            "lead_source": "Phone assistant",
        }
        if note:
            body["note"] = note
        return body

    # -- availability ---------------------------------------------------------------------------------

    async def _windows(
        self, start: datetime, end: datetime, duration: timedelta
    ) -> list[tuple[datetime, datetime, bool]]:
        """(start, end, available) of the booking windows of `duration` over the company-zone days of [start, end)."""
        minutes = max(1, int(duration / timedelta(minutes=1)))
        first = start.astimezone(self._zone).date()
        last = (end - timedelta(microseconds=1)).astimezone(self._zone).date()
        windows: list[Window] = []
        day = first
        while day <= last:
            days = min(_MAX_DAYS, (last - day).days + 1)
            params: Params = {
                "start_date": f"{day.isoformat()}T00:00:00",
                "show_for_days": days,
                "service_duration": minutes,
            }
            # https://docs.housecallpro.com/docs/housecall-public-api/ (Get Company Schedule Booking Windows)
            answer = await self._client.call(
                "GET", "/company/schedule_availability/booking_windows", capability="calendar", params=params
            )
            for window in answer.get("booking_windows") or []:
                w_start = mappers.parse_time((window or {}).get("start_time"))
                w_end = mappers.parse_time((window or {}).get("end_time"))
                if w_start and w_end and w_end - w_start == duration:
                    windows.append((w_start.astimezone(UTC), w_end.astimezone(UTC), bool(window.get("available"))))
            day += timedelta(days=days)
        return sorted(set(windows))

    async def _is_offered(self, start: datetime, end: datetime, *, moving: str | None = None) -> bool:
        """Whether [start, end) is an available booking window; when moving a record, its own time counts as free."""
        wanted_start, wanted_end = start.astimezone(UTC), end.astimezone(UTC)
        windows = await self._windows(wanted_start, wanted_end, elapsed(start, end))
        window = next((w for w in windows if w[0] == wanted_start and w[1] == wanted_end), None)
        if window is None:
            return False
        if window[2]:
            return True
        if moving is None:
            return False
        # Unavailable: fine only when the one live record in the way is the one being moved.
        params = {
            "scheduled_start_max": mappers.hcp_time(wanted_end),
            "scheduled_end_min": mappers.hcp_time(wanted_start),
        }
        for record in await self._list_records(params):
            times = mappers.schedule_times(record)
            if times is None or not mappers.is_live(record) or str(record["id"]) == moving:
                continue
            if times[0] < wanted_end and wanted_start < times[1]:
                return False
        return True


def _first_option(estimate: dict[str, Any], estimate_id: str) -> str:
    for option in estimate.get("options") or []:
        if isinstance(option, dict) and option.get("id"):
            return str(option["id"])
    raise NotFoundError("estimate option", estimate_id)


def _phone_queries(e164: str | None) -> list[str]:
    """The `q` texts that find a stored phone however it was typed (see `_find_customers`)."""
    if not e164:
        return []
    national = phones.national_digits(e164) or phones.digits(e164)
    if e164.startswith("+1") and len(national) == 10:
        local = national[3:]
        return [f"{local[:3]}-{local[3:]}", f"{local[:3]} {local[3:]}", f"{local[:3]}.{local[3:]}", local]
    # Elsewhere: the national significant number, and the number as the phone library formats it.
    queries = [national, e164]
    try:
        parsed = phonenumbers.parse(e164, None)
        for style in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
            queries.append(phonenumbers.format_number(parsed, style))
    except phonenumbers.NumberParseException:
        pass
    return list(dict.fromkeys(queries))
