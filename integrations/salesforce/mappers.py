"""Salesforce records to the shared CRM models, and the request bodies the connector sends.

A Contact or Lead is a flat JSON object of field API names (`FirstName`, `LastName`, `Phone`,
`MobilePhone`, `Email`, `CreatedDate`, …) with `attributes: {type, url}`. `LastName` is required,
so a caller who gave no name is written with Salesforce's own placeholder, `[not provided]`
(what Web-to-Lead writes), which reads back as no name and is filled in once the caller says it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.capabilities.models import CallActivity, Contact, ContactDraft, LoggedCall, Note
from integrations.common import phones
from integrations.salesforce.errors import PROVIDER

__all__ = [
    "CALL_OBJECT_PREFIX",
    "CONTACT_FIELDS",
    "NOT_PROVIDED",
    "PERSON_TYPES",
    "TASK_FIELDS",
    "blank_fields",
    "call_object",
    "call_request",
    "create_request",
    "note_request",
    "split_name",
    "to_contact",
    "to_logged_call",
    "to_note",
    "update_request",
]

# Key prefixes of the record ids the connector reads (the first three characters of every id).
PERSON_TYPES = {"003": "Contact", "00Q": "Lead"}
CONTACT_FIELDS = ["Id", "FirstName", "LastName", "Phone", "MobilePhone", "Email", "CreatedDate"]
TASK_FIELDS = [
    "Id",
    "WhoId",
    "Subject",
    "Description",
    "Status",
    "TaskSubtype",
    "ActivityDate",
    "CallType",
    "CallDurationInSeconds",
    "CallDisposition",
    "CallObject",
    "CreatedDate",
]
NOT_PROVIDED = "[not provided]"
# `CallObject` carries the call's identity (its start, to the millisecond), as CTI adapters put
# their call id there. UNCONFIRMED: the v59 spec describes CallObject as "Name of a call center";
# Open CTI's saveLog examples use it for the telephony call id.
CALL_OBJECT_PREFIX = "voice-agent:"
_SUBJECT_CHARS = 255


def _text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    return str(value) if value not in (None, "") else None


def sf_datetime(value: Any) -> datetime | None:
    """Salesforce's dateTime: `2026-03-04T15:00:00.000+0000`."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_name(name: str) -> tuple[str | None, str]:
    """(FirstName, LastName): "Mary Ann Smith" → ("Mary Ann", "Smith"); one word is a LastName (required)."""
    words = name.split()
    if not words:
        return None, NOT_PROVIDED
    if len(words) == 1:
        return None, words[0]
    return " ".join(words[:-1]), words[-1]


def _name(record: Mapping[str, Any]) -> str | None:
    first = _text(record, "FirstName")
    last = _text(record, "LastName")
    if last == NOT_PROVIDED:
        last = None
    return " ".join(part for part in (first, last) if part) or None


def to_contact(record: Mapping[str, Any], *, region: str | None = None) -> Contact:
    """A Contact or Lead as a `Contact`. `region` reads stored phones written without a country code."""
    stored = _text(record, "Phone") or _text(record, "MobilePhone")
    phone = (phones.to_e164(stored, region) or stored) if stored else None
    email = _text(record, "Email")
    return Contact(
        id=str(record["Id"]),
        name=_name(record),
        phone=phone,
        email=email.lower() if email else None,
        created_at=sf_datetime(record.get("CreatedDate")),
        provider=PROVIDER,
        raw=dict(record),
    )


def create_request(draft: ContactDraft, *, sobject: str, lead_company: str) -> dict[str, Any]:
    """POST /sobjects/{Contact|Lead} body."""
    first, last = split_name(draft.name or "")
    body: dict[str, Any] = {"LastName": last}
    if first:
        body["FirstName"] = first
    if draft.phone:
        body["Phone"] = draft.phone
    if draft.email:
        body["Email"] = draft.email
    if sobject == "Lead":
        body["Company"] = lead_company
        body["LeadSource"] = "Phone Inquiry"
    return body


def update_request(draft: ContactDraft) -> dict[str, Any]:
    """PATCH body: only the fields given. A new name replaces both parts."""
    body: dict[str, Any] = {}
    if draft.name and draft.name.split():
        body["FirstName"], body["LastName"] = split_name(draft.name)
    if draft.phone:
        body["Phone"] = draft.phone
    if draft.email:
        body["Email"] = draft.email
    return body


def blank_fields(
    existing: Mapping[str, Any], draft: ContactDraft, *, phone_taken: bool, email_taken: bool
) -> dict[str, Any]:
    """What the draft adds to an existing record without overwriting anything it holds."""
    fill: dict[str, Any] = {}
    if draft.name and draft.name.split() and _name(existing) is None:
        fill["FirstName"], fill["LastName"] = split_name(draft.name)
    if draft.phone and not phone_taken and not (_text(existing, "Phone") or _text(existing, "MobilePhone")):
        fill["Phone"] = draft.phone
    if draft.email and not email_taken and not _text(existing, "Email"):
        fill["Email"] = draft.email
    return fill


def _subject(body: str) -> str:
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "") or "Note"
    return first_line[:_SUBJECT_CHARS]


def note_request(contact_id: str, body: str, when: datetime) -> dict[str, Any]:
    """POST /sobjects/Task body: a completed task on the person, its text in Description."""
    return {
        "WhoId": contact_id,
        "Subject": _subject(body),
        "Description": body,
        "Status": "Completed",
        "TaskSubtype": "Task",
        "ActivityDate": when.astimezone(UTC).date().isoformat(),
    }


def to_note(record: Mapping[str, Any], contact_id: str, *, fallback_time: datetime) -> Note:
    return Note(
        id=str(record["Id"]),
        contact_id=contact_id,
        body=_text(record, "Description") or "",
        created_at=sf_datetime(record.get("CreatedDate")) or fallback_time,
        provider=PROVIDER,
        raw=dict(record),
    )


def call_object(call: CallActivity) -> str:
    """The call's identity as stored in `CallObject`: its start in UTC, to the millisecond."""
    started = call.started_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{CALL_OBJECT_PREFIX}{started}"


def call_request(contact_id: str, call: CallActivity) -> dict[str, Any]:
    """POST /sobjects/Task body: a logged call (TaskSubtype Call) on the person, dated the call's local day."""
    body: dict[str, Any] = {
        "WhoId": contact_id,
        "Subject": call.title[:_SUBJECT_CHARS],
        "Description": call.body,
        "Status": "Completed",
        "TaskSubtype": "Call",
        # The business's day, in the zone the call's start was given in.
        "ActivityDate": call.started_at.date().isoformat(),
        "CallDisposition": "Completed",
        "CallObject": call_object(call),
    }
    if call.direction is not None:
        body["CallType"] = call.direction.capitalize()
    if call.duration_seconds is not None:
        body["CallDurationInSeconds"] = round(call.duration_seconds)
    return body


def to_logged_call(record: Mapping[str, Any], contact_id: str, *, created: bool) -> LoggedCall:
    return LoggedCall(id=str(record["Id"]), contact_id=contact_id, provider=PROVIDER, created=created, raw=dict(record))
