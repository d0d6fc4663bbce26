"""The GoHighLevel emulator's world: one location, its contacts and notes, one calendar and its appointments.

Everything is held as GoHighLevel shapes it (ids of 20 characters, ISO stamps with milliseconds)
and dumped at `GET /_state`. Vendor behaviour, and how sure we are of it:

- Phones are kept exactly as written. GoHighLevel's own duplicate check (upsert, create) compares
  numbers, read in the location's country (US); the advanced search's `eq` filter compares the
  stored string as it is. UNCONFIRMED: how GoHighLevel's search index compares phones. The
  emulator stays on the literal side, so the connector must not rely on the vendor normalizing.
- The calendar is open Monday to Friday, 09:00-17:00 America/New_York, in 30-minute slots.
  Slots are refused when taken or outside those hours. Not emulated: minimum notice and "in the
  past" refusals (the test and demo worlds run on fixed 2026 dates), round robin, recurring events.
- OAuth: access tokens last 86,399 s; a refresh token is single-use and every refresh answers a
  new one (3P: HighLevel's OAuth FAQ as quoted by developers; UNCONFIRMED in an official spec).
  The sandbox's own install token (`SANDBOX_REFRESH_TOKEN`) stays valid so that every sandbox
  connection can start from it; tokens it issues rotate. A Private Integration token never expires.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.common import phones

__all__ = [
    "CALENDAR_ID",
    "LOCATION_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "SLOT_MINUTES",
    "ZONE",
    "GhlError",
    "GoHighLevelState",
]

LOCATION_ID = "ve9EPM428h8vShlRW1KT"
COMPANY_ID = "l1C08ntBrFjLS0elLIYU"
USER_ID = "TUcmRxWrjqzJS8EjkxNK"
CALENDAR_ID = "CVokAlI8fgw4WYWoCtQz"
CALENDAR_NAME = "Appointments"
SANDBOX_CLIENT_ID = "66f1c2d3e4a5b6c7d8e9f0a1-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret-0c9d8e7f"
SANDBOX_REFRESH_TOKEN = "sandbox-refresh-install-5b1e"
SANDBOX_PRIVATE_TOKEN = "pit-00000000-sandbox-private-integration"
ZONE = "America/New_York"
SLOT_MINUTES = 30
OPEN_HOUR, CLOSE_HOUR = 9, 17
TOKEN_SECONDS = 86399
SNAPSHOT_VERSION = 1
# Live appointments take their slot; these do not.
DEAD_STATUSES = frozenset({"cancelled", "invalid"})
_SCOPES = "contacts.readonly contacts.write calendars.readonly calendars/events.readonly calendars/events.write"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class GhlError(Exception):
    """An error answer: status, and GoHighLevel's `message` (a list for 422 validation errors)."""

    def __init__(self, status: int, message: str | list[str], *, error: str | None = None, **extra: Any) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message
        self.error = error
        self.extra = extra

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        if self.error:
            body["error"] = self.error
        body.update(self.extra)
        return body


def _now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """GoHighLevel's record stamps: UTC with milliseconds ("2021-07-02T05:18:26.704Z")."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_iso(moment: datetime) -> str:
    """Appointment times as GoHighLevel answers them: the location's wall clock with its offset."""
    return moment.astimezone(ZoneInfo(ZONE)).isoformat(timespec="seconds")


def parse_instant(text: object, field: str) -> datetime:
    """An ISO 8601 time with an offset; anything else is GoHighLevel's 422."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise GhlError(422, [f"{field} must be a valid ISO 8601 date string"], error="Unprocessable Entity") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(ZONE))
    return moment


def _split(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def _same_phone(stored: str | None, given: str | None) -> bool:
    """GoHighLevel's duplicate check: the same number once both are read in the location's country."""
    if not stored or not given:
        return False
    left, right = phones.to_e164(stored, "US"), phones.to_e164(given, "US")
    return stored == given or (left is not None and left == right)


class GoHighLevelState:
    """In-memory state of one sandbox location."""

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self.clock = clock
        self.reset()

    # -- SandboxState -----------------------------------------------------------------------------

    def reset(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        # access token -> its expiry (ISO, microseconds); refresh tokens issued and not yet used.
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: list[str] = []
        self.install_revoked = False
        self.counter = 0

    def dump(self) -> dict[str, Any]:
        return {
            "location": {"id": LOCATION_ID, "timezone": ZONE},
            "calendars": [{"id": CALENDAR_ID, "name": CALENDAR_NAME, "slotDuration": SLOT_MINUTES}],
            "contacts": [copy.deepcopy(c) for c in self.contacts.values()],
            "notes": [copy.deepcopy(n) for n in self.notes.values()],
            "appointments": [self.event_view(e) for e in self.events.values()],
        }

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()
        self.install_revoked = True

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "version": SNAPSHOT_VERSION,
                "contacts": self.contacts,
                "notes": self.notes,
                "events": self.events,
                "access_tokens": self.access_tokens,
                "refresh_tokens": self.refresh_tokens,
                "install_revoked": self.install_revoked,
                "counter": self.counter,
            }
        )

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a gohighlevel sandbox snapshot of format {SNAPSHOT_VERSION}")
        tables = {name: snapshot[name] for name in ("contacts", "notes", "events", "access_tokens")}
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise TypeError(f"{name} must be an object")
        if not isinstance(snapshot["refresh_tokens"], list) or not isinstance(snapshot["counter"], int):
            raise TypeError("refresh_tokens must be a list and counter an integer")
        if not isinstance(snapshot["install_revoked"], bool):
            raise TypeError("install_revoked must be a boolean")
        restored = copy.deepcopy(snapshot)
        self.contacts = restored["contacts"]
        self.notes = restored["notes"]
        self.events = restored["events"]
        self.access_tokens = restored["access_tokens"]
        self.refresh_tokens = [str(t) for t in restored["refresh_tokens"]]
        self.install_revoked = restored["install_revoked"]
        self.counter = restored["counter"]

    # -- ids ----------------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A 20-character id, as GoHighLevel's (deterministic per state: counter plus padding)."""
        self.counter += 1
        number, text = self.counter, ""
        while number:
            number, digit = divmod(number, len(_ID_ALPHABET))
            text = _ID_ALPHABET[digit] + text
        return ("sbx" + text.rjust(17, "0"))[:20]

    # -- OAuth ---------------------------------------------------------------------------------------

    def authorized(self, token: str) -> bool:
        if token == SANDBOX_PRIVATE_TOKEN:
            return True
        expires = self.access_tokens.get(token)
        return expires is not None and datetime.fromisoformat(expires) > self.clock()

    def refresh(self, form: dict[str, Any]) -> dict[str, Any]:
        """POST /oauth/token with grant_type=refresh_token: a new access token and a new refresh token."""
        if form.get("client_id") != SANDBOX_CLIENT_ID or form.get("client_secret") != SANDBOX_CLIENT_SECRET:
            raise GhlError(401, "Invalid client credentials", error="invalid_client")
        if form.get("grant_type") != "refresh_token":
            raise GhlError(
                422, ["grant_type must be one of the following values: refresh_token"], error="Unprocessable Entity"
            )
        if form.get("user_type", "Location") != "Location":
            raise GhlError(400, "This app can only issue Location tokens")
        token = str(form.get("refresh_token") or "")
        if token == SANDBOX_REFRESH_TOKEN and not self.install_revoked:
            pass
        elif token in self.refresh_tokens:
            self.refresh_tokens.remove(token)  # single-use
        else:
            raise GhlError(401, "Invalid grant: refresh token is invalid", error="invalid_grant")
        access = f"sbx-at-{secrets.token_hex(16)}"
        refresh = f"sbx-rt-{secrets.token_hex(16)}"
        self.access_tokens[access] = (self.clock() + timedelta(seconds=TOKEN_SECONDS)).isoformat()
        self.refresh_tokens.append(refresh)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "refresh_token": refresh,
            "scope": _SCOPES,
            "userType": "Location",
            "companyId": COMPANY_ID,
            "locationId": LOCATION_ID,
            "userId": USER_ID,
        }

    # -- contacts ---------------------------------------------------------------------------------------

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A contact as someone typed it in the GoHighLevel app: fields kept verbatim."""
        fields: dict[str, Any] = {"name": name}
        if phone is not None:
            fields["phone"] = phone
        if email is not None:
            fields["email"] = email
        return str(self._write_contact(None, fields, source="crm ui")["id"])

    def contact(self, contact_id: str) -> dict[str, Any]:
        found = self.contacts.get(contact_id)
        if found is None:
            # UNCONFIRMED: the spec lists no 404 for contacts; GoHighLevel answers 400 "Contact not found".
            raise GhlError(400, "Contact not found")
        return found

    def duplicate_of(self, email: str | None, phone: str | None) -> tuple[dict[str, Any], str] | None:
        """The contact the location's duplicate rule matches: email first, then phone (the spec's order)."""
        for contact in self.contacts.values():
            if email and str(contact.get("emailLowerCase") or "") == email.lower():
                return contact, "email"
        for contact in self.contacts.values():
            if _same_phone(contact.get("phone"), phone):
                return contact, "phone"
        return None

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts/: refuses a duplicate (the location does not allow duplicated contacts)."""
        duplicate = self.duplicate_of(body.get("email"), body.get("phone"))
        if duplicate is not None:
            existing, field = duplicate
            raise GhlError(
                400,
                "This location does not allow duplicated contacts.",
                meta={"contactName": existing.get("name", ""), "contactId": existing["id"], "matchingField": field},
            )
        return self._write_contact(None, body, source=str(body.get("source") or "public api"))

    def upsert_contact(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST /contacts/upsert: update the duplicate (the given fields win) or create; (contact, new)."""
        duplicate = self.duplicate_of(body.get("email"), body.get("phone"))
        if duplicate is None:
            return self._write_contact(None, body, source=str(body.get("source") or "public api")), True
        return self._write_contact(duplicate[0]["id"], body, source=None), False

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.contact(contact_id)
        return self._write_contact(contact_id, body, source=None)

    def _write_contact(self, contact_id: str | None, body: dict[str, Any], *, source: str | None) -> dict[str, Any]:
        now = stamp(self.clock())
        if contact_id is None:
            contact_id = self.new_id()
            record: dict[str, Any] = {
                "id": contact_id,
                "locationId": LOCATION_ID,
                "type": "lead",
                "tags": [],
                "customFields": [],
                "dnd": False,
                "source": source or "public api",
                "dateAdded": now,
            }
            self.contacts[contact_id] = record
        else:
            record = self.contacts[contact_id]
        fields = dict(body)
        if fields.get("name") and not ("firstName" in fields or "lastName" in fields):
            fields["firstName"], fields["lastName"] = _split(str(fields["name"]))
        for key in (
            "firstName",
            "lastName",
            "email",
            "phone",
            "companyName",
            "address1",
            "city",
            "state",
            "postalCode",
            "country",
            "timezone",
            "website",
        ):
            if key in fields and fields[key] is not None:
                value = str(fields[key])
                if value:
                    record[key] = value
                else:
                    record.pop(key, None)
        if "tags" in fields and isinstance(fields["tags"], list):
            record["tags"] = [str(t) for t in fields["tags"]]
        first, last = str(record.get("firstName") or ""), str(record.get("lastName") or "")
        full = f"{first} {last}".strip()
        for key, value in (
            ("firstNameLowerCase", first.lower()),
            ("lastNameLowerCase", last.lower()),
            ("fullNameLowerCase", full.lower()),
            ("name", full),
            ("emailLowerCase", str(record.get("email") or "").lower()),
        ):
            if value:
                record[key] = value
            else:
                record.pop(key, None)
        record["dateUpdated"] = now
        return record

    # -- notes --------------------------------------------------------------------------------------------

    def add_note(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.contact(contact_id)
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise GhlError(422, ["body should not be empty", "body must be a string"], error="Unprocessable Entity")
        note: dict[str, Any] = {
            "id": self.new_id(),
            "body": text,
            "dateAdded": stamp(self.clock()),
            "contactId": contact_id,
        }
        for key in ("userId", "title", "color"):
            if isinstance(body.get(key), str):
                note[key] = body[key]
        note["pinned"] = bool(body.get("pinned", False))
        self.notes[note["id"]] = note
        return note

    def notes_of(self, contact_id: str) -> list[dict[str, Any]]:
        self.contact(contact_id)
        found = [n for n in self.notes.values() if n["contactId"] == contact_id]
        return sorted(found, key=lambda n: (n["dateAdded"], n["id"]), reverse=True)

    # -- calendar ---------------------------------------------------------------------------------------

    def calendar(self, calendar_id: str) -> dict[str, Any]:
        if calendar_id != CALENDAR_ID:
            raise GhlError(400, "Calendar not found")  # UNCONFIRMED wording and status
        return {
            "id": CALENDAR_ID,
            "locationId": LOCATION_ID,
            "name": CALENDAR_NAME,
            "calendarType": "event",
            "slotDuration": SLOT_MINUTES,
            "slotDurationUnit": "mins",
            "slotInterval": SLOT_MINUTES,
            "slotIntervalUnit": "mins",
            "isActive": True,
            "teamMembers": [{"userId": USER_ID, "priority": 0.5, "isPrimary": True}],
            "openHours": [
                {
                    "daysOfTheWeek": [day],
                    "hours": [{"openHour": OPEN_HOUR, "openMinute": 0, "closeHour": CLOSE_HOUR, "closeMinute": 0}],
                }
                for day in range(1, 6)
            ],
        }

    def free_slots(
        self, calendar_id: str, start_ms: float, end_ms: float, zone: str
    ) -> dict[str, dict[str, list[str]]]:
        """Free slots on each day from startDate's to endDate's (in `zone`), keyed by that day."""
        self.calendar(calendar_id)
        if end_ms < start_ms:
            raise GhlError(400, "endDate must be greater than startDate")
        if end_ms - start_ms > 31 * 86_400_000:
            raise GhlError(400, "Date range cannot be more than 31 days")
        shown = ZoneInfo(zone)
        first = datetime.fromtimestamp(start_ms / 1000, UTC).astimezone(shown).date()
        last = datetime.fromtimestamp(end_ms / 1000, UTC).astimezone(shown).date()
        days: dict[str, dict[str, list[str]]] = {}
        day = first
        while day <= last:
            free = [
                start.astimezone(shown).isoformat(timespec="seconds")
                for start in self._day_slots(day.year, day.month, day.day)
                if self._is_free(start, start + timedelta(minutes=SLOT_MINUTES), ignore=None)
            ]
            if free:
                days[day.isoformat()] = {"slots": free}
            day += timedelta(days=1)
        return days

    @staticmethod
    def _day_slots(year: int, month: int, day: int) -> list[datetime]:
        """Slot starts of a business day in the calendar's own zone (none at weekends)."""
        opening = datetime(year, month, day, OPEN_HOUR, tzinfo=ZoneInfo(ZONE))
        if opening.weekday() >= 5:
            return []
        count = (CLOSE_HOUR - OPEN_HOUR) * 60 // SLOT_MINUTES
        return [opening + timedelta(minutes=SLOT_MINUTES * i) for i in range(count)]

    def _within_hours(self, start: datetime, end: datetime) -> bool:
        local = start.astimezone(ZoneInfo(ZONE))
        starts = self._day_slots(local.year, local.month, local.day)
        if not starts or local not in starts:
            return False
        closing = starts[0].replace(hour=CLOSE_HOUR)
        return start < end <= closing

    def _is_free(self, start: datetime, end: datetime, *, ignore: str | None) -> bool:
        for event in self.events.values():
            if event["id"] == ignore or event["appointmentStatus"] in DEAD_STATUSES:
                continue
            if datetime.fromisoformat(event["start"]) < end and start < datetime.fromisoformat(event["end"]):
                return False
        return True

    def _check_slot(self, start: datetime, end: datetime, *, ignore: str | None) -> None:
        if not self._within_hours(start, end) or not self._is_free(start, end, ignore=ignore):
            # UNCONFIRMED wording.
            raise GhlError(400, "The slot you have selected is no longer available.")

    def create_appointment(self, body: dict[str, Any]) -> dict[str, Any]:
        missing = [f for f in ("calendarId", "locationId", "contactId", "startTime") if not body.get(f)]
        if missing:
            raise GhlError(422, [f"{f} should not be empty" for f in missing], error="Unprocessable Entity")
        self.calendar(str(body["calendarId"]))
        self.contact(str(body["contactId"]))
        start = parse_instant(body["startTime"], "startTime")
        end = (
            parse_instant(body["endTime"], "endTime")
            if body.get("endTime")
            else start + timedelta(minutes=SLOT_MINUTES)
        )
        if end <= start:
            raise GhlError(400, "endTime must be after startTime")
        status = str(body.get("appointmentStatus") or "confirmed")
        if not body.get("ignoreFreeSlotValidation") and status not in DEAD_STATUSES:
            self._check_slot(start, end, ignore=None)
        now = stamp(self.clock())
        event = {
            "id": self.new_id(),
            "calendarId": CALENDAR_ID,
            "locationId": LOCATION_ID,
            "contactId": str(body["contactId"]),
            "groupId": "",
            "title": str(body.get("title") or "Appointment"),
            "appointmentStatus": status,
            "assignedUserId": str(body.get("assignedUserId") or USER_ID),
            "address": str(body.get("address") or ""),
            "description": str(body.get("description") or ""),
            "meetingLocationType": str(
                body.get("meetingLocationType") or ("custom" if body.get("address") else "default")
            ),
            "start": start.astimezone(UTC).isoformat(),
            "end": end.astimezone(UTC).isoformat(),
            "dateAdded": now,
            "dateUpdated": now,
        }
        self.events[event["id"]] = event
        return event

    def event(self, event_id: str) -> dict[str, Any]:
        found = self.events.get(event_id)
        if found is None:
            raise GhlError(400, "Appointment not found")  # UNCONFIRMED: no 404 in the spec
        return found

    def edit_appointment(self, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        event = self.event(event_id)
        start = (
            parse_instant(body["startTime"], "startTime")
            if body.get("startTime")
            else datetime.fromisoformat(event["start"])
        )
        if body.get("endTime"):
            end = parse_instant(body["endTime"], "endTime")
        elif body.get("startTime"):
            end = start + (datetime.fromisoformat(event["end"]) - datetime.fromisoformat(event["start"]))
        else:
            end = datetime.fromisoformat(event["end"])
        status = str(body.get("appointmentStatus") or event["appointmentStatus"])
        moved = (start, end) != (datetime.fromisoformat(event["start"]), datetime.fromisoformat(event["end"]))
        if moved and status not in DEAD_STATUSES and not body.get("ignoreFreeSlotValidation"):
            self._check_slot(start, end, ignore=event_id)
        if end <= start:
            raise GhlError(400, "endTime must be after startTime")
        event.update(
            start=start.astimezone(UTC).isoformat(), end=end.astimezone(UTC).isoformat(), appointmentStatus=status
        )
        for key in ("title", "address", "description", "assignedUserId"):
            if isinstance(body.get(key), str):
                event[key] = body[key]
        event["dateUpdated"] = stamp(self.clock())
        return event

    def events_between(self, calendar_id: str, start_ms: float, end_ms: float) -> list[dict[str, Any]]:
        """GET /calendars/events: the calendar's events overlapping [startTime, endTime] (any status)."""
        self.calendar(calendar_id)
        low = datetime.fromtimestamp(start_ms / 1000, UTC)
        high = datetime.fromtimestamp(end_ms / 1000, UTC)
        found = [
            e
            for e in self.events.values()
            if e["calendarId"] == calendar_id
            and datetime.fromisoformat(e["start"]) <= high
            and datetime.fromisoformat(e["end"]) >= low
        ]
        return sorted(found, key=lambda e: (e["start"], e["id"]))

    def appointments_of(self, contact_id: str) -> list[dict[str, Any]]:
        self.contact(contact_id)
        return sorted(
            (e for e in self.events.values() if e["contactId"] == contact_id), key=lambda e: (e["start"], e["id"])
        )

    # -- views ------------------------------------------------------------------------------------------

    @staticmethod
    def appointment_view(event: dict[str, Any]) -> dict[str, Any]:
        """AppointmentSchemaResponse (create and edit answers)."""
        return {
            "id": event["id"],
            "calendarId": event["calendarId"],
            "locationId": event["locationId"],
            "contactId": event["contactId"],
            "startTime": local_iso(datetime.fromisoformat(event["start"])),
            "endTime": local_iso(datetime.fromisoformat(event["end"])),
            "title": event["title"],
            "meetingLocationType": event["meetingLocationType"],
            "appointmentStatus": event["appointmentStatus"],
            "assignedUserId": event["assignedUserId"],
            "address": event["address"],
            "isRecurring": False,
        }

    @staticmethod
    def event_view(event: dict[str, Any]) -> dict[str, Any]:
        """CalendarEventDTO (GET one appointment, GET /calendars/events)."""
        return {
            "id": event["id"],
            "title": event["title"],
            "calendarId": event["calendarId"],
            "locationId": event["locationId"],
            "contactId": event["contactId"],
            "groupId": event["groupId"],
            "appointmentStatus": event["appointmentStatus"],
            "assignedUserId": event["assignedUserId"],
            "users": [event["assignedUserId"]],
            "address": event["address"],
            "description": event["description"],
            "isRecurring": False,
            "startTime": local_iso(datetime.fromisoformat(event["start"])),
            "endTime": local_iso(datetime.fromisoformat(event["end"])),
            "dateAdded": event["dateAdded"],
            "dateUpdated": event["dateUpdated"],
            "createdBy": {"source": "third_party"},
        }

    @staticmethod
    def contact_event_view(event: dict[str, Any]) -> dict[str, Any]:
        """GetEventSchema (GET /contacts/{id}/appointments): the spec shows wall-clock times without an
        offset ("2021-07-16 11:00:00"); UNCONFIRMED which zone, the location's is used here."""
        zone = ZoneInfo(ZONE)
        return {
            "id": event["id"],
            "calendarId": event["calendarId"],
            "status": "cancelled" if event["appointmentStatus"] in DEAD_STATUSES else "booked",
            "title": event["title"],
            "assignedUserId": event["assignedUserId"],
            "notes": event["description"],
            "startTime": datetime.fromisoformat(event["start"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "endTime": datetime.fromisoformat(event["end"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "address": event["address"],
            "locationId": event["locationId"],
            "contactId": event["contactId"],
            "groupId": event["groupId"],
            "appointmentStatus": event["appointmentStatus"],
            "users": [event["assignedUserId"]],
            "dateAdded": event["dateAdded"],
            "dateUpdated": event["dateUpdated"],
        }
