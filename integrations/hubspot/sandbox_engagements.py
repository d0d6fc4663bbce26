"""The emulator's engagements: notes and calls, each associated with contacts when it is created.

HubSpot keeps every engagement type the same way (a `SimplePublicObject` with `hs_timestamp`,
associations made on create with a HubSpot-defined type id); what differs is the properties each
type has, which of them take fixed options or numbers, and its association type ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import RLock
from typing import Any

from integrations.hubspot.sandbox_records import (
    HubSpotError,
    Problem,
    Record,
    SavedRecord,
    iso,
    property_problems,
    refuse,
)

__all__ = ["CALLS", "ENGAGEMENT_DEFAULT", "ENGAGEMENT_TYPES", "NOTES", "EngagementType", "Engagements"]

# Maintained by HubSpot on every engagement; what it returns when no `properties` are asked for.
ENGAGEMENT_COMPUTED = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"})
ENGAGEMENT_DEFAULT = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


@dataclass(frozen=True)
class EngagementType:
    """One engagement object type: its names, writable properties and contact association types."""

    name: str  # plural, as in paths: "notes"
    label: str  # as HubSpot's error messages name it: "NOTE"
    object_type_id: str
    writable: frozenset[str]
    # HubSpot-defined association types: this type → contact, and contact → this type.
    to_contact: int
    from_contact: int
    # Enumeration properties and their options, and number properties.
    options: Mapping[str, frozenset[str]] = field(default_factory=dict)
    numbers: frozenset[str] = frozenset()

    @property
    def contact_link(self) -> str:
        """The v3 association type name in `?associations=contacts` answers: "note_to_contact"."""
        return f"{self.label.lower()}_to_contact"


NOTES = EngagementType(
    name="notes",
    label="NOTE",
    object_type_id="0-46",
    writable=frozenset({"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"}),
    to_contact=202,
    from_contact=201,
)
# https://developers.hubspot.com/docs/guides/api/crm/engagements/calls (its properties table).
# The contact → call type (193) and the status options are from memory, not from a spec.
CALLS = EngagementType(
    name="calls",
    label="CALL",
    object_type_id="0-48",
    writable=frozenset(
        {"hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_duration", "hs_call_direction"}
        | {"hs_call_status", "hs_call_from_number", "hs_call_to_number", "hs_call_recording_url"}
        | {"hs_call_disposition", "hs_call_callee_object_id", "hs_call_callee_object_type_id"}
        | {"hubspot_owner_id", "hs_attachment_ids", "hs_activity_type"}
    ),
    to_contact=194,
    from_contact=193,
    options={
        "hs_call_direction": frozenset({"INBOUND", "OUTBOUND"}),
        "hs_call_status": frozenset(
            {"BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED"}
            | {"IN_PROGRESS", "MISSED", "NO_ANSWER", "QUEUED", "RINGING"}
        ),
    },
    numbers=frozenset({"hs_call_duration"}),
)
ENGAGEMENT_TYPES = (NOTES, CALLS)


class Engagements:
    """The portal's records of one engagement type. Shares the portal's lock and record ids."""

    def __init__(
        self, kind: EngagementType, lock: RLock, new_id: Callable[[], str], contact_exists: Callable[[str], bool]
    ) -> None:
        self.kind = kind
        self._lock = lock
        self._new_id = new_id
        self._contact_exists = contact_exists
        self._records: dict[str, Record] = {}

    def create(self, body: Any) -> Record:
        """POST /crm/v3/objects/{type}: properties checked as HubSpot does, associations to contacts only."""
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        properties, problems = property_problems(body.get("properties"), self.kind.writable, ENGAGEMENT_COMPUTED)
        problems += self._value_problems(properties)
        if not properties.get("hs_timestamp") and not problems:
            problems.append({"name": "hs_timestamp", "error": "REQUIRED", "message": "hs_timestamp is required"})
        if problems:
            raise refuse(problems)
        associations = body.get("associations") or []
        with self._lock:
            for association in associations:
                self._check_association(association)
            now = datetime.now(UTC)
            record = Record(self._new_id(), {}, now, now, associations=list(associations))
            record.properties = {k: v for k, v in properties.items() if v}
            record.properties["hs_timestamp"] = _timestamp(record.properties["hs_timestamp"])
            record.properties.update(hs_object_id=record.id, hs_createdate=iso(now), hs_lastmodifieddate=iso(now))
            self._records[record.id] = record
        return record

    def _value_problems(self, properties: Mapping[str, str]) -> list[Problem]:
        # Messages and codes as HubSpot words them for enumeration and number properties.
        problems: list[Problem] = []
        for name, value in properties.items():
            allowed = self.kind.options.get(name)
            if allowed is not None and value and value not in allowed:
                message = f"{value} was not one of the allowed options: [{', '.join(sorted(allowed))}]"
                problems.append({"name": name, "error": "INVALID_OPTION", "message": message})
            elif name in self.kind.numbers and value and not _is_number(value):
                problems.append({"name": name, "error": "INVALID_LONG", "message": f"{value} was not a valid long."})
        return problems

    def _check_association(self, association: Any) -> None:
        target = association.get("to", {}).get("id") if isinstance(association, dict) else None
        types = association.get("types") if isinstance(association, dict) else None
        if not target or not isinstance(types, list) or not types:
            raise HubSpotError(400, "VALIDATION_ERROR", "Each association needs to.id and types")
        for spec in types:
            category = spec.get("associationCategory") if isinstance(spec, dict) else None
            type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
            if type_id != self.kind.to_contact or category != "HUBSPOT_DEFINED":
                raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid association type {spec!r} for {self.kind.name}")
        if not self._contact_exists(str(target)):
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"One or more associations are invalid: contact {target} does not exist"
            )

    def get(self, record_id: str) -> Record:
        with self._lock:
            record = self._records.get(record_id)
        if record is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        return record

    def by_id(self, record_ids: Iterable[str]) -> dict[str, Record]:
        """The records among `record_ids` that exist, by id."""
        with self._lock:
            return {record_id: self._records[record_id] for record_id in record_ids if record_id in self._records}

    def of_contact(self, contact_id: str) -> list[Record]:
        """The records associated with the contact, by id: their links to contacts seen from the contact."""
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: int(r.id))
        return [record for record in records if contact_id in _linked_contacts(record)]

    def contacts_of(self, record_id: str) -> list[str]:
        """Ids of the contacts a record is associated with, by id (none for an unknown record)."""
        with self._lock:
            record = self._records.get(record_id)
        return sorted(_linked_contacts(record), key=int) if record is not None else []

    def dump(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**record.public(sorted(record.properties)), "associations": record.associations}
                for record in self._records.values()
            ]

    def saved(self) -> list[SavedRecord]:
        """Every record, in creation order, for the portal's snapshot."""
        with self._lock:
            return [record.saved() for record in self._records.values()]

    def restore(self, saved: list[SavedRecord]) -> None:
        """Replace the records with saved ones; KeyError or TypeError for an association that is not ours."""
        records = {record.id: Record.from_saved(record) for record in saved}
        for record in records.values():
            _linked_contacts(record)
        with self._lock:
            self._records = records


def _linked_contacts(record: Record) -> set[str]:
    return {str(association["to"]["id"]) for association in record.associations}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _timestamp(value: str) -> str:
    """hs_timestamp as HubSpot stores it: ISO 8601 from an ISO string or epoch milliseconds."""
    if value.isdigit():
        return iso(datetime.fromtimestamp(int(value) / 1000, tz=UTC))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise refuse(
            [{"name": "hs_timestamp", "error": "INVALID_DATE", "message": f"{value} is not a valid timestamp"}]
        ) from None
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
