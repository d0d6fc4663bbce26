"""Pure functions between Housecall Pro's JSON and the shared models.

Notes on a customer: Housecall Pro's public API has no customer-notes endpoint (only job notes,
`POST /jobs/{job_id}/notes`, and estimate-option notes). A customer carries one free-text
`notes` field (CustomerCreate/CustomerUpdate), which is what staff see on the customer's page.
So a note is an entry appended to that field, each starting with a marker line
`[note <token> <UTC time>]`; a note's id is `<customer id>:<token>`. With an idempotency key the
token is derived from the key, so a retried note finds the entry it wrote.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from integrations.capabilities.models import Appointment, Contact, ContactDraft, Note
from integrations.common import phones
from integrations.housecall_pro.errors import PROVIDER

__all__ = [
    "CANCEL_MARKER",
    "PHONE_FIELDS",
    "REFERENCE_PREFIX",
    "append_note",
    "appointment",
    "customer_body",
    "fill_blanks_body",
    "hcp_time",
    "holds_email",
    "holds_phone",
    "note_token",
    "parse_notes",
    "parse_time",
    "split_name",
    "to_contact",
    "to_note",
]

PHONE_FIELDS = ("mobile_number", "home_number", "work_number")
_NOTE_OPEN = "[note "
# The job note the connector writes before erasing a job's schedule, so a cancelled job keeps its times.
CANCEL_MARKER = "Cancelled by the phone assistant; was scheduled "
REFERENCE_PREFIX = "Booking reference: "


# -- time ------------------------------------------------------------------------------------------


def hcp_time(moment: datetime) -> str:
    """An instant as sent to Housecall Pro: ISO 8601 in UTC with `Z`.

    UNCONFIRMED: the spec's examples show both `2021-01-10T10:45:00` (no offset) for requests and
    `2019-03-27T15:08:08Z` for answers; an explicit UTC offset is the unambiguous choice.
    """
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: Any) -> datetime | None:
    """A Housecall Pro timestamp; one without an offset is read as UTC (UNCONFIRMED)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- customers -------------------------------------------------------------------------------------


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """("Jane", "van Doe") for "Jane van Doe": first word, then the rest."""
    if not name or not name.strip():
        return None, None
    first, _, last = name.strip().partition(" ")
    return first, (last.strip() or None)


def full_name(customer: dict[str, Any]) -> str | None:
    parts = [str(customer.get(k) or "").strip() for k in ("first_name", "last_name")]
    joined = " ".join(p for p in parts if p)
    return joined or None


def holds_phone(customer: dict[str, Any], e164: str | None) -> str | None:
    """The stored phone (any of the three fields, any format) that is this E.164 number, if any."""
    if not e164:
        return None
    for field in PHONE_FIELDS:
        stored = customer.get(field)
        if isinstance(stored, str) and phones.same_number(stored, e164):
            return stored
    return None


def holds_email(customer: dict[str, Any], email: str | None) -> bool:
    stored = customer.get("email")
    return bool(email) and isinstance(stored, str) and stored.strip().lower() == str(email).strip().lower()


def to_contact(customer: dict[str, Any], *, region: str, phone: str | None = None) -> Contact:
    """A customer as a Contact. With `phone` (the E.164 number searched for), the field holding it is shown."""
    stored = holds_phone(customer, phone) if phone else None
    if stored is None:
        stored = next((str(customer[f]) for f in PHONE_FIELDS if customer.get(f)), None)
    shown = None
    if stored:
        shown = phones.to_e164(stored, phones.region_of(phone) or region) or stored
    email = customer.get("email")
    return Contact(
        id=str(customer["id"]),
        name=full_name(customer),
        phone=shown,
        email=str(email).strip().lower() if email else None,
        created_at=parse_time(customer.get("created_at")),
        provider=PROVIDER,
        raw=customer,
    )


def customer_body(draft: ContactDraft) -> dict[str, Any]:
    """CustomerCreate for a draft: the phone goes in `mobile_number` (callers call from mobiles)."""
    first, last = split_name(draft.name)
    body: dict[str, Any] = {}
    if first:
        body["first_name"] = first
    if last:
        body["last_name"] = last
    if draft.phone:
        body["mobile_number"] = draft.phone
    if draft.email:
        body["email"] = draft.email.lower()
    body["lead_source"] = "Phone assistant"
    return body


def fill_blanks_body(customer: dict[str, Any], draft: ContactDraft) -> dict[str, Any]:
    """CustomerUpdate filling only what the customer lacks (never overwriting)."""
    body: dict[str, Any] = {}
    if draft.name and not full_name(customer):
        first, last = split_name(draft.name)
        body["first_name"] = first
        if last:
            body["last_name"] = last
    if draft.email and not customer.get("email"):
        body["email"] = draft.email.lower()
    if draft.phone and not any(customer.get(f) for f in PHONE_FIELDS):
        body["mobile_number"] = draft.phone
    return body


def update_body(customer: dict[str, Any], draft: ContactDraft) -> dict[str, Any]:
    """CustomerUpdate changing the given fields; a new phone replaces the mobile number."""
    body: dict[str, Any] = {}
    if draft.name is not None:
        first, last = split_name(draft.name)
        body["first_name"] = first
        body["last_name"] = last
    if draft.email is not None:
        body["email"] = draft.email.lower()
    if draft.phone is not None and holds_phone(customer, draft.phone) is None:
        body["mobile_number"] = draft.phone
    return body


# -- notes (entries in the customer's `notes` field) ----------------------------------------------


def note_token(idempotency_key: str | None) -> str:
    """The note's token: from the key when there is one (a retry finds its entry), else random."""
    if idempotency_key:
        return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:16]
    return secrets.token_hex(8)


def parse_notes(text: str | None) -> list[tuple[str, datetime | None, str]]:
    """The (token, written at, body) entries of a customer's `notes` field, in order.

    Text before the first marker (typed by staff) is not a note of ours and is skipped.
    """
    entries: list[tuple[str, datetime | None, list[str]]] = []
    for line in (text or "").split("\n"):
        if line.startswith(_NOTE_OPEN) and "]" in line:
            head, _, rest = line[len(_NOTE_OPEN) :].partition("]")
            token, _, stamp = head.partition(" ")
            entries.append((token, parse_time(stamp.strip()), [rest.removeprefix(" ")]))
        elif entries:
            entries[-1][2].append(line)
    return [(token, at, "\n".join(lines).rstrip("\n")) for token, at, lines in entries]


def append_note(text: str | None, token: str, when: datetime, body: str) -> str:
    entry = f"{_NOTE_OPEN}{token} {hcp_time(when)}] {body}"
    existing = (text or "").rstrip("\n")
    return f"{existing}\n\n{entry}" if existing else entry


def to_note(customer: dict[str, Any], token: str, when: datetime, body: str) -> Note:
    customer_id = str(customer["id"])
    return Note(
        id=f"{customer_id}:{token}",
        contact_id=customer_id,
        body=body,
        created_at=when,
        provider=PROVIDER,
        raw={"customer_id": customer_id, "token": token, "notes": customer.get("notes")},
    )


# -- jobs and estimates ------------------------------------------------------------------------------


def _cancelled_times(record: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """The times a cancelled job had, from the note the connector wrote when it cancelled it."""
    for note in reversed(_notes_of(record)):
        content = str((note or {}).get("content") or "")
        if content.startswith(CANCEL_MARKER):
            start_text, _, end_text = content[len(CANCEL_MARKER) :].partition(" to ")
            start, end = parse_time(start_text.strip()), parse_time(end_text.strip().rstrip("."))
            if start and end:
                return start, end
    return None


def schedule_times(record: dict[str, Any]) -> tuple[datetime, datetime] | None:
    schedule = record.get("schedule") or {}
    start = parse_time(schedule.get("scheduled_start"))
    end = parse_time(schedule.get("scheduled_end"))
    return (start, end) if start and end else None


_DECLINED = ("declined", "pro declined")


def is_live(record: dict[str, Any]) -> bool:
    """Scheduled and not cancelled (by us, by the customer or by the pro); an estimate whose options
    were all declined is cancelled too."""
    status = str(record.get("work_status") or "")
    if schedule_times(record) is None or "cancel" in status or record.get("canceled_at") or record.get("deleted_at"):
        return False
    options = [o for o in record.get("options") or [] if isinstance(o, dict)]
    return not options or any(o.get("approval_status") not in _DECLINED for o in options)


def _notes_of(record: dict[str, Any]) -> list[Any]:
    """A job's notes, or an estimate's (kept on its options)."""
    notes = list(record.get("notes") or [])
    for option in record.get("options") or []:
        if isinstance(option, dict):
            notes.extend(option.get("notes") or [])
    return notes


def _visible_notes(record: dict[str, Any]) -> str | None:
    lines: list[str] = []
    for note in _notes_of(record):
        content = str((note or {}).get("content") or "")
        if content.startswith(CANCEL_MARKER):
            continue
        lines.extend(line for line in content.split("\n") if not line.startswith(REFERENCE_PREFIX))
    text = "\n".join(lines).strip()
    return text or None


def appointment(record: dict[str, Any], *, zone: Any, region: str) -> Appointment:
    """A job (or estimate) as an Appointment, times shown in the company's zone."""
    times = schedule_times(record)
    live = is_live(record)
    if times is None:
        times = _cancelled_times(record)
    if times is None:
        created = parse_time(record.get("created_at")) or datetime.now(UTC)
        times = (created, created)
    customer = record.get("customer") or {}
    phone = next((str(customer[f]) for f in PHONE_FIELDS if customer.get(f)), None)
    email = customer.get("email")
    return Appointment(
        id=str(record["id"]),
        start=times[0].astimezone(zone),
        end=times[1].astimezone(zone),
        status="booked" if live else "cancelled",
        attendee_name=full_name(customer),
        attendee_phone=(phones.to_e164(phone, region) or phone) if phone else None,
        attendee_email=str(email).lower() if email else None,
        notes=_visible_notes(record),
        provider=PROVIDER,
        raw=record,
    )


def booking_note(notes: str | None, key: str | None) -> str:
    parts = [notes.strip()] if notes and notes.strip() else []
    if key:
        parts.append(f"{REFERENCE_PREFIX}{key}")
    return "\n".join(parts)


def parse_address(text: str) -> dict[str, str]:
    """A spoken address as AddressCreate: "12 Main St, Springfield, IL 62704[, US]".

    Housecall Pro requires street, city, state, zip and country. What cannot be split is kept whole
    in `street` (staff fix it on the job) and the rest left empty.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    country = "US"
    if len(parts) >= 4 and len(parts[-1]) <= 3 and parts[-1].isalpha():
        country = parts.pop().upper()
    if len(parts) >= 3:
        state_zip = parts[-1].split()
        zip_code = state_zip[-1] if len(state_zip) >= 2 and any(c.isdigit() for c in state_zip[-1]) else ""
        state = " ".join(state_zip[:-1]) if zip_code else parts[-1]
        return {
            "street": ", ".join(parts[:-2]),
            "city": parts[-2],
            "state": state,
            "zip": zip_code,
            "country": country,
        }
    return {"street": text.strip(), "city": "", "state": "", "zip": "", "country": country}


def _simple(text: Any) -> str:
    return " ".join(str(text or "").lower().replace(".", " ").replace(",", " ").split())


def same_address(stored: dict[str, Any], wanted: dict[str, str]) -> bool:
    """Whether a customer's stored address is the spoken one (street and zip, case and dots aside)."""
    if _simple(stored.get("street")) != _simple(wanted["street"]):
        return False
    return not wanted["zip"] or _simple(stored.get("zip")) == _simple(wanted["zip"])
