"""HubSpot JSON to the shared CRM models, and the request bodies the connector sends.

HubSpot objects are `SimplePublicObject`s: `{id, properties{name: string|null}, createdAt,
updatedAt, archived}`. A contact's name is split over `firstname` and `lastname`; its phone may sit
in `phone` or `mobilephone`, in whatever format a person typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.capabilities.models import CallActivity, Contact, ContactDraft, LoggedCall, Note
from integrations.common import phones
from integrations.hubspot.errors import PROVIDER

__all__ = [
    "CALL_PROPERTIES",
    "CALL_TO_CONTACT",
    "CONTACT_PROPERTIES",
    "NOTE_PROPERTIES",
    "NOTE_TO_CONTACT",
    "batch_read_request",
    "blank_fields",
    "call_request",
    "create_request",
    "is_call",
    "note_request",
    "note_written_at",
    "search_request",
    "split_name",
    "to_contact",
    "to_logged_call",
    "to_note",
    "update_request",
]

# What the connector reads from a contact; HubSpot returns only the properties asked for.
CONTACT_PROPERTIES = ["email", "phone", "mobilephone", "firstname", "lastname"]
# What the connector reads from a note.
NOTE_PROPERTIES = ["hs_note_body", "hs_timestamp"]
# HubSpot-defined association type "note to contact" (associations v4).
NOTE_TO_CONTACT = 202
# What the connector reads from a call: enough to recognise it, and to show it in `raw`.
CALL_PROPERTIES = [
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_duration",
    "hs_call_direction",
    "hs_call_status",
]
# HubSpot-defined association type "call to contact" (associations v4).
CALL_TO_CONTACT = 194


def _properties(obj: Mapping[str, Any]) -> dict[str, str]:
    # HubSpot answers requested-but-unset properties as null; treat null and "" alike.
    raw = obj.get("properties") or {}
    return {str(k): str(v) for k, v in raw.items() if v not in (None, "")}


def _datetime(value: Any) -> datetime | None:
    """HubSpot timestamps: ISO 8601 (object fields, most properties) or epoch milliseconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_name(name: str) -> tuple[str, str]:
    """("Mary Ann", "Smith") for "Mary Ann Smith"; a single word is a first name."""
    words = name.split()
    if len(words) <= 1:
        return (words[0] if words else "", "")
    return " ".join(words[:-1]), words[-1]


def to_contact(obj: Mapping[str, Any], *, region: str | None = None) -> Contact:
    """A HubSpot contact as a `Contact`. `region` reads stored phones written without a country code."""
    props = _properties(obj)
    name = " ".join(part for part in (props.get("firstname"), props.get("lastname")) if part) or None
    stored_phone = props.get("phone") or props.get("mobilephone")
    phone = (phones.to_e164(stored_phone, region) or stored_phone) if stored_phone else None
    email = props.get("email")
    return Contact(
        id=str(obj["id"]),
        name=name,
        phone=phone,
        email=email.lower() if email else None,
        created_at=_datetime(obj.get("createdAt")),
        provider=PROVIDER,
        raw=dict(obj),
    )


def note_written_at(obj: Mapping[str, Any]) -> datetime | None:
    """When a note was written: its `hs_timestamp` (the writer's clock), else HubSpot's `createdAt`."""
    return _datetime(_properties(obj).get("hs_timestamp")) or _datetime(obj.get("createdAt"))


def to_note(obj: Mapping[str, Any], contact_id: str, *, fallback_time: datetime) -> Note:
    """A HubSpot note as a `Note` on `contact_id`, dated by its `hs_timestamp`."""
    props = _properties(obj)
    when = note_written_at(obj) or fallback_time
    return Note(
        id=str(obj["id"]),
        contact_id=contact_id,
        body=props.get("hs_note_body", ""),
        created_at=when,
        provider=PROVIDER,
        raw=dict(obj),
    )


def _eq(prop: str, value: str) -> dict[str, Any]:
    return {"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}


def search_request(*, phone: str | None, email: str | None, after: str, limit: int) -> dict[str, Any]:
    """A contacts search for a phone or an email: one filter group per way HubSpot may hold them.

    Groups are OR'd. `phone`/`mobilephone` EQ only match numbers stored exactly as E.164; the
    computed `hs_searchable_calculated_*` properties hold the digits without country code, which
    finds "(212) 555-0142" too. That is 5 groups at most, HubSpot's limit per search.
    """
    groups: list[dict[str, Any]] = []
    if phone:
        groups += [_eq("phone", phone), _eq("mobilephone", phone)]
        national = phones.national_digits(phone)
        if national:
            groups += [
                _eq("hs_searchable_calculated_phone_number", national),
                _eq("hs_searchable_calculated_mobile_number", national),
            ]
    if email:
        groups.append(_eq("email", email))
    # The spec marks after, properties and sorts as required; no sort keeps HubSpot's own order.
    return {"filterGroups": groups, "properties": CONTACT_PROPERTIES, "sorts": [], "limit": limit, "after": after}


def create_request(draft: ContactDraft) -> dict[str, Any]:
    """POST /crm/v3/objects/contacts body. `associations` is required by the spec, even empty."""
    properties: dict[str, str] = {}
    if draft.name:
        first, last = split_name(draft.name)
        properties["firstname"] = first
        if last:
            properties["lastname"] = last
    if draft.phone:
        properties["phone"] = draft.phone
    if draft.email:
        properties["email"] = draft.email
    return {"properties": properties, "associations": []}


def update_request(draft: ContactDraft) -> dict[str, str]:
    """The properties a PATCH changes: only the fields given. A new name replaces both parts."""
    properties: dict[str, str] = {}
    if draft.name:
        # An empty lastname clears the old one: "Cher" should not stay "Cher Smith".
        properties["firstname"], properties["lastname"] = split_name(draft.name)
    if draft.phone:
        properties["phone"] = draft.phone
    if draft.email:
        properties["email"] = draft.email
    return properties


def blank_fields(
    existing: Mapping[str, Any], draft: ContactDraft, *, phone_taken: bool, email_taken: bool
) -> dict[str, str]:
    """What the draft adds to an existing contact without overwriting anything it holds.

    A phone or email that belongs to another contact (`*_taken`) is left off rather than copied.
    """
    props = _properties(existing)
    fill: dict[str, str] = {}
    if draft.name and not (props.get("firstname") or props.get("lastname")):
        first, last = split_name(draft.name)
        fill["firstname"] = first
        if last:
            fill["lastname"] = last
    if draft.phone and not phone_taken and not (props.get("phone") or props.get("mobilephone")):
        fill["phone"] = draft.phone
    if draft.email and not email_taken and not props.get("email"):
        fill["email"] = draft.email
    return fill


def _timestamp(when: datetime) -> str:
    """An `hs_timestamp` value: UTC, to the millisecond, "Z"."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _with_contact(contact_id: str, association_type_id: int) -> list[dict[str, Any]]:
    return [
        {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type_id}],
        }
    ]


def note_request(contact_id: str, body: str, when: datetime) -> dict[str, Any]:
    """POST /crm/v3/objects/notes body: the note, timestamped, associated with the contact."""
    return {
        "properties": {"hs_timestamp": _timestamp(when), "hs_note_body": body},
        "associations": _with_contact(contact_id, NOTE_TO_CONTACT),
    }


def batch_read_request(properties: list[str], record_ids: list[str]) -> dict[str, Any]:
    """POST /crm/v3/objects/{notes,calls}/batch/read body for at most 100 ids.

    The spec marks `propertiesWithHistory` as required; an empty list asks for no history.
    """
    return {
        "properties": properties,
        "propertiesWithHistory": [],
        "inputs": [{"id": record_id} for record_id in record_ids],
    }


def call_request(contact_id: str, call: CallActivity) -> dict[str, Any]:
    """POST /crm/v3/objects/calls body: a completed call on the contact's timeline at its start time.

    `hs_call_duration` is in milliseconds. Directions are the HubSpot user's: the caller's phone
    is the "from" number of an inbound call and the "to" number of an outbound one; without a
    direction there is no telling which, so the number is left off.
    """
    properties = {
        "hs_timestamp": _timestamp(call.started_at),
        "hs_call_title": call.title,
        "hs_call_body": call.body,
        "hs_call_status": "COMPLETED",
    }
    if call.duration_seconds is not None:
        properties["hs_call_duration"] = str(round(call.duration_seconds * 1000))
    if call.direction is not None:
        properties["hs_call_direction"] = call.direction.upper()
    if call.caller_phone and call.direction == "inbound":
        properties["hs_call_from_number"] = call.caller_phone
    elif call.caller_phone and call.direction == "outbound":
        properties["hs_call_to_number"] = call.caller_phone
    if call.recording_url:
        properties["hs_call_recording_url"] = call.recording_url
    return {"properties": properties, "associations": _with_contact(contact_id, CALL_TO_CONTACT)}


def is_call(obj: Mapping[str, Any], call: CallActivity) -> bool:
    """Whether a HubSpot call is this call: the same title, starting at the same millisecond."""
    props = _properties(obj)
    started = _datetime(props.get("hs_timestamp"))
    return (
        props.get("hs_call_title", "") == call.title
        and started is not None
        and _timestamp(started) == _timestamp(call.started_at)
    )


def to_logged_call(obj: Mapping[str, Any], contact_id: str, *, created: bool) -> LoggedCall:
    """A HubSpot call as a `LoggedCall` on `contact_id`; `created` False when it was found, not written."""
    return LoggedCall(id=str(obj["id"]), contact_id=contact_id, provider=PROVIDER, created=created, raw=dict(obj))
