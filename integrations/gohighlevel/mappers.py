"""Pure functions between GoHighLevel's JSON and the shared models (and back, for request bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from integrations.capabilities.models import Appointment, AppointmentStatus, Contact, ContactDraft, Note
from integrations.common import phones
from integrations.gohighlevel.errors import PROVIDER

__all__ = [
    "DEAD_STATUSES",
    "appointment",
    "blank_fields",
    "contact_fields",
    "holds_email",
    "holds_phone",
    "is_live",
    "iso",
    "millis",
    "parse_time",
    "phone_variants",
    "search_filters",
    "split_name",
    "to_contact",
    "to_note",
]

# Appointments in these states hold no slot and count as cancelled.
DEAD_STATUSES = frozenset({"cancelled", "invalid"})


def split_name(name: str) -> tuple[str, str]:
    """("Ada", "King Lovelace") from "Ada King Lovelace": GoHighLevel keeps firstName and lastName."""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def phone_variants(e164: str) -> list[str]:
    """The ways people type this number into a CRM, for an `eq` filter on each.

    GoHighLevel's advanced search compares the stored text (UNCONFIRMED whether its index
    normalizes phones: it is not relied on). For North American numbers the common typings are
    spelled out; for others, the number's E.164, international, national and bare-digit forms.
    """
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [e164]
    national = phonenumbers.national_significant_number(parsed)
    code = str(parsed.country_code)
    forms = [
        e164,
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.RFC3966).removeprefix("tel:"),
        national,
        code + national,
    ]
    if code == "1" and len(national) == 10:
        a, b, c = national[:3], national[3:6], national[6:]
        forms += [
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"{a} {b} {c}",
            f"({a}){b}-{c}",
            f"+1 {a} {b} {c}",
            f"+1 ({a}) {b}-{c}",
            f"+1.{a}.{b}.{c}",
            f"1 ({a}) {b}-{c}",
            f"1-{a}-{b}-{c}",
            f"1 {a} {b} {c}",
            f"1.{a}.{b}.{c}",
        ]
    return list(dict.fromkeys(f for f in forms if f))


def search_filters(phone: str | None, email: str | None) -> list[dict[str, Any]]:
    """One OR group: the phone in each typed form, or the email."""
    alternatives = (
        [{"field": "phone", "operator": "eq", "value": form} for form in phone_variants(phone)] if phone else []
    )
    if email:
        alternatives.append({"field": "email", "operator": "eq", "value": email.lower()})
    return [{"group": "OR", "filters": alternatives}]


def holds_phone(record: Mapping[str, Any], phone: str | None) -> bool:
    if not phone:
        return False
    stored = [record.get("phone"), *(record.get("additionalPhones") or [])]
    return any(isinstance(p, str) and phones.same_number(p, phone) for p in stored)


def holds_email(record: Mapping[str, Any], email: str | None) -> bool:
    stored = record.get("email")
    return bool(email) and isinstance(stored, str) and stored.lower() == str(email).lower()


def contact_fields(draft: ContactDraft) -> dict[str, str]:
    """The contact fields a draft sets (create, upsert or update bodies)."""
    fields: dict[str, str] = {}
    if draft.name:
        fields["firstName"], fields["lastName"] = split_name(draft.name)
    if draft.phone:
        fields["phone"] = draft.phone
    if draft.email:
        fields["email"] = draft.email.lower()
    return fields


def blank_fields(
    existing: Mapping[str, Any], draft: ContactDraft, *, phone_taken: bool, email_taken: bool
) -> dict[str, str]:
    """What the draft adds to an existing contact without overwriting anything it holds."""
    fill: dict[str, str] = {}
    if draft.name and not (existing.get("firstName") or existing.get("lastName")):
        fill["firstName"], fill["lastName"] = split_name(draft.name)
    if draft.phone and not existing.get("phone") and not phone_taken:
        fill["phone"] = draft.phone
    if draft.email and not existing.get("email") and not email_taken:
        fill["email"] = draft.email.lower()
    return fill


def _stamp(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def to_contact(record: Mapping[str, Any], *, region: str | None) -> Contact:
    """A GoHighLevel contact. Its phone as E.164 when it reads as a valid number (in `region` if local)."""
    first, last = str(record.get("firstName") or ""), str(record.get("lastName") or "")
    name = f"{first} {last}".strip() or str(record.get("name") or record.get("contactName") or "") or None
    stored = record.get("phone")
    phone = (phones.to_e164(stored, region) or stored) if isinstance(stored, str) and stored else None
    email = record.get("email")
    return Contact(
        id=str(record["id"]),
        name=name,
        phone=phone,
        email=email.lower() if isinstance(email, str) and email else None,
        created_at=_stamp(record.get("dateAdded")),
        provider=PROVIDER,
        raw=dict(record),
    )


def to_note(note: Mapping[str, Any], contact_id: str, *, fallback_time: datetime) -> Note:
    return Note(
        id=str(note["id"]),
        contact_id=str(note.get("contactId") or contact_id),
        body=str(note.get("body") or ""),
        created_at=_stamp(note.get("dateAdded")) or fallback_time,
        provider=PROVIDER,
        raw=dict(note),
    )


def note_written_at(note: Mapping[str, Any]) -> datetime | None:
    return _stamp(note.get("dateAdded"))


def millis(moment: datetime) -> int:
    """Epoch milliseconds, as free-slots and events take their ranges."""
    return int(moment.astimezone(UTC).timestamp() * 1000)


def iso(moment: datetime, zone: str) -> str:
    """An appointment time as GoHighLevel takes it: ISO 8601 with the offset, on the business's clock."""
    return moment.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def parse_time(value: object, zone: str) -> datetime:
    """An appointment time GoHighLevel answered; one without an offset is read on the business's clock."""
    text = str(value).strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text if "T" in text else text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(ZoneInfo(zone))


def is_live(event: Mapping[str, Any]) -> bool:
    return str(event.get("appointmentStatus") or "").lower() not in DEAD_STATUSES


def appointment(
    event: Mapping[str, Any], contact: Contact | None, zone: str, *, notes: str | None = None
) -> Appointment:
    """A GoHighLevel appointment (CalendarEventDTO or AppointmentSchemaResponse) with its contact's details."""
    status: AppointmentStatus = "booked" if is_live(event) else "cancelled"
    described = event.get("description") or event.get("notes")
    return Appointment(
        id=str(event["id"]),
        start=parse_time(event["startTime"], zone),
        end=parse_time(event["endTime"], zone),
        status=status,
        attendee_name=contact.name if contact else None,
        attendee_phone=contact.phone if contact else None,
        attendee_email=contact.email if contact else None,
        notes=str(described) if described else notes,
        provider=PROVIDER,
        raw=dict(event),
    )
