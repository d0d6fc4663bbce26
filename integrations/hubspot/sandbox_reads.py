"""The emulator's reads of many records at once: associations v4 listings and engagement batch reads.

Answers are shaped as HubSpot's specs shape them (`CollectionResponseMultiAssociatedObjectWithLabel
ForwardPaging`, `BatchResponseSimplePublicObject` and its `…WithErrors` twin); the routes in
`sandbox` add authentication and HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.hubspot.sandbox_engagements import ENGAGEMENT_DEFAULT, ENGAGEMENT_TYPES, Engagements
from integrations.hubspot.sandbox_records import HubSpotError, Record, iso
from integrations.hubspot.sandbox_state import HubSpotState

__all__ = ["ASSOCIATIONS_MAX", "BATCH_READ_MAX", "association_page", "read_batch"]

# Associations v4 pages: HubSpot's default and maximum are both 500.
ASSOCIATIONS_MAX = 500
# Inputs per batch read.
BATCH_READ_MAX = 100
# Object types as HubSpot accepts them in paths: plural name, singular name, object type id.
_OBJECT_TYPES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    **{alias: kind.name for kind in ENGAGEMENT_TYPES for alias in (kind.name, kind.label.lower(), kind.object_type_id)},
}
_KINDS = {kind.name: kind for kind in ENGAGEMENT_TYPES}


def _object_type(name: str) -> str:
    canonical = _OBJECT_TYPES.get(name.lower())
    if canonical is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return canonical


def association_page(
    state: HubSpotState, from_type: str, from_id: str, to_type: str, *, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """GET /crm/v4/objects/{from_type}/{from_id}/associations/{to_type}: one page, and the next cursor.

    The cursor is the id of the next page's first record. The emulator records associations on
    engagements only (engagement → contact, made on create), so it lists them from either end
    with the type id of that direction; an unknown record has no associations (an empty page,
    not a 404: unverified against HubSpot).
    """
    source, target = _object_type(from_type), _object_type(to_type)
    if after is not None and not after.isdigit():
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid paging cursor: {after}")
    linked: list[tuple[str, int]] = []
    if source == "contacts" and target in _KINDS:
        kind = _KINDS[target]
        linked = [(record.id, kind.from_contact) for record in state.engagements(target).of_contact(from_id)]
    elif source in _KINDS and target == "contacts":
        kind = _KINDS[source]
        linked = [(contact_id, kind.to_contact) for contact_id in state.engagements(source).contacts_of(from_id)]
    start = int(after or 0)
    remaining = [(record_id, type_id) for record_id, type_id in linked if int(record_id) >= start]
    page = [
        # The spec types toObjectId as a string and label as a non-null string: an unlabelled type omits it.
        {"toObjectId": record_id, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id}]}
        for record_id, type_id in remaining[:limit]
    ]
    return page, remaining[limit][0] if len(remaining) > limit else None


def _names(body: Mapping[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise HubSpotError(400, "VALIDATION_ERROR", f"{field} must be a list of property names")
    return list(value)


def _input_ids(body: Mapping[str, Any]) -> list[str]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] for item in inputs
    ):
        raise HubSpotError(400, "VALIDATION_ERROR", 'inputs must be a list of {"id": "<record id>"} objects')
    if len(inputs) > BATCH_READ_MAX:
        raise HubSpotError(
            400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {BATCH_READ_MAX}"
        )
    # A repeated id is read once.
    return list(dict.fromkeys(item["id"] for item in inputs))


def _batch_result(record: Record, names: list[str], history: list[str]) -> dict[str, Any]:
    obj = record.public([*names, *ENGAGEMENT_DEFAULT])
    if history:
        # The emulator never changes an engagement after creating it: the current value is the whole history.
        stamp = iso(record.updated_at)
        obj["propertiesWithHistory"] = {
            name: [{"value": record.properties[name], "timestamp": stamp, "sourceType": "API"}]
            for name in history
            if record.properties.get(name)
        }
    return obj


def read_batch(store: Engagements, body: Any, *, archived: bool) -> tuple[int, dict[str, Any]]:
    """POST /crm/v3/objects/{type}/batch/read: 200 when every id is found, else 207 naming the missing ones.

    Results keep the order of `inputs`; properties are the requested ones plus those HubSpot
    always returns. The emulator archives nothing, so `archived=true` finds no record.
    """
    started = datetime.now(UTC)
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    record_ids = _input_ids(body)
    id_property = body.get("idProperty")
    if id_property not in (None, "hs_object_id"):
        message = f"{id_property} is not a unique value property of {store.kind.name}"
        raise HubSpotError(400, "VALIDATION_ERROR", message)
    names, history = _names(body, "properties"), _names(body, "propertiesWithHistory")
    found = {} if archived else store.by_id(record_ids)
    answer: dict[str, Any] = {
        "status": "COMPLETE",
        "results": [_batch_result(found[record_id], names, history) for record_id in record_ids if record_id in found],
        "startedAt": iso(started),
        "completedAt": iso(datetime.now(UTC)),
    }
    missing = [record_id for record_id in record_ids if record_id not in found]
    if not missing:
        return 200, answer
    error = {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": (
            f"Could not get some {store.kind.label} objects, they may be deleted or not exist. "
            "Check that ids are valid."
        ),
        "context": {"ids": missing},
        # Required by the spec's StandardError, and by the SDK's model of it.
        "errors": [],
        "links": {},
    }
    return 207, {**answer, "numErrors": 1, "errors": [error]}
