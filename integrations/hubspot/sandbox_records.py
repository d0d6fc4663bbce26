"""What every object in the emulated portal shares: the record, HubSpot's error answer, property checks.

`sandbox_state` (contacts, OAuth) and `sandbox_engagements` (notes, calls) both build on these.
A record saves itself as a `SavedRecord` (its part of the portal's snapshot) and comes back from one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.common.linear_regex import compile_linear

__all__ = [
    "SPACE_CHARACTERS",
    "HubSpotError",
    "Problem",
    "Record",
    "SavedRecord",
    "correlation_id",
    "iso",
    "property_problems",
    "refuse",
]

# One per-property validation failure: {"name", "error", "message"}.
Problem = dict[str, Any]

# The characters `str.isspace` calls whitespace, for a character class (RE2's `\s` is ASCII only):
# a no-break space in an address makes it invalid, as it did under `re`.
SPACE_CHARACTERS = r"\t-\r\x1c-\x1f\x85\p{Z}"
_EMAIL = compile_linear(rf"[^@{SPACE_CHARACTERS}]+@[^@{SPACE_CHARACTERS}]+\.[^@{SPACE_CHARACTERS}]+")


def iso(moment: datetime) -> str:
    """HubSpot's timestamp format: UTC, milliseconds, "Z"."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """An error answer in HubSpot's CRM format: `{status, message, correlationId, category, …}`."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "correlationId": correlation_id(),
            "category": category,
            **extra,
        }


@dataclass
class Record:
    """One CRM object as HubSpot keeps it."""

    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # HubSpot's search index lags writes by a few seconds; seeds can start out of it.
    searchable: bool = True
    associations: list[dict[str, Any]] = field(default_factory=list)

    def public(self, names: Iterable[str]) -> dict[str, Any]:
        """The `SimplePublicObject` JSON with the named properties that have a value.

        HubSpot answers requested-but-unset properties as null; the spec types property values
        as strings, so the emulator leaves them out (the connector reads both the same way).
        """
        wanted = dict.fromkeys(names)
        return {
            "id": self.id,
            "properties": {name: self.properties[name] for name in wanted if self.properties.get(name)},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": False,
        }

    def saved(self) -> SavedRecord:
        """The record as the portal's snapshot keeps it: timestamps to the microsecond."""
        return SavedRecord(
            id=self.id,
            properties=self.properties,
            created_at=self.created_at.isoformat(),
            updated_at=self.updated_at.isoformat(),
            searchable=self.searchable,
            associations=self.associations,
        )

    @classmethod
    def from_saved(cls, saved: SavedRecord) -> Record:
        """The record `saved()` wrote; ValueError for an id that is not a number or a naive timestamp."""
        if not (saved.id.isascii() and saved.id.isdigit()):
            raise ValueError(f"record id {saved.id!r} is not a HubSpot id")
        return cls(
            saved.id,
            saved.properties,
            _aware(saved.created_at),
            _aware(saved.updated_at),
            searchable=saved.searchable,
            associations=saved.associations,
        )


class SavedRecord(BaseModel):
    """A record in the portal's snapshot."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    searchable: bool
    associations: list[dict[str, Any]]


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no offset")
    return moment


def property_problems(
    properties: Any, writable: frozenset[str], computed: frozenset[str]
) -> tuple[dict[str, str], list[Problem]]:
    """Clean string properties, and HubSpot's per-property validation errors."""
    if not isinstance(properties, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
    clean: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in properties.items():
        if name in computed:
            problems.append({"name": name, "error": "READ_ONLY_VALUE", "message": f'Property "{name}" is read-only'})
        elif name not in writable:
            problems.append(
                {"name": name, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'}
            )
        elif not isinstance(value, str | int | float | bool) and value is not None:
            problems.append({"name": name, "error": "INVALID_OPTION", "message": f'Property "{name}" must be a string'})
        elif name == "email" and value and not _EMAIL.fullmatch(str(value)):
            problems.append({"name": name, "error": "INVALID_EMAIL", "message": f"Email address {value} is invalid"})
        else:
            clean[name] = "" if value is None else str(value)
    return clean, problems


def refuse(problems: list[Problem]) -> HubSpotError:
    """HubSpot's 400 for invalid property values, listing each problem."""
    details = ", ".join(f'{{"isValid":false,"message":"{p["message"]}","error":"{p["error"]}"}}' for p in problems)
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: [{details}]",
        errors=[
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}} for p in problems
        ],
    )
