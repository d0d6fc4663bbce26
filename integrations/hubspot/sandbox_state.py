"""The emulator's in-memory HubSpot portal: contacts, notes and their associations, OAuth tokens.

Everything the routes answer comes from here, shaped as HubSpot shapes it: `SimplePublicObject`s
whose properties are all strings, computed properties HubSpot maintains itself (`hs_object_id`,
`createdate`, `hs_searchable_calculated_phone_number`, …), and errors in HubSpot's body format.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from integrations.hubspot import sandbox_search

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_APP_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "HubSpotError",
    "HubSpotState",
    "Record",
    "TokenError",
]

SANDBOX_CLIENT_ID = "5c1f0e8a-3b2d-4f6e-9a7c-5a4db0c0ffee"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret-3f9d2c71"
SANDBOX_REFRESH_TOKEN = "na1-sandbox-refresh-token-4e8b"
# A private-app token the emulator always accepts (private-app tokens do not expire).
SANDBOX_PRIVATE_APP_TOKEN = "pat-sandbox-na1-00000000-private-app"

# HubSpot access tokens live 30 minutes.
ACCESS_TOKEN_SECONDS = 1800
# The portal's default country: HubSpot reads numbers written without a country code in it.
PORTAL_REGION = "US"
PORTAL_ID = 20260304

CONTACT_WRITABLE = frozenset(
    {"email", "phone", "mobilephone", "firstname", "lastname", "company", "jobtitle", "website", "address", "city"}
    | {"state", "zip", "country", "lifecyclestage", "hs_lead_status", "hubspot_owner_id"}
)
CONTACT_COMPUTED = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate"}
    | {"hs_searchable_calculated_phone_number", "hs_searchable_calculated_mobile_number"}
)
# What HubSpot returns for a contact when no `properties` are asked for.
CONTACT_DEFAULT = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
# Search results always carry these besides the requested ones.
CONTACT_ALWAYS = ("createdate", "hs_object_id", "lastmodifieddate")
NOTE_WRITABLE = frozenset({"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"})
NOTE_COMPUTED = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"})
NOTE_DEFAULT = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
# HubSpot-defined association types the emulator knows: note → contact.
NOTE_TO_CONTACT = 202

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


class TokenError(Exception):
    """An error answer from HubSpot's OAuth token endpoint: `{status: "BAD_…", message, correlationId}`."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.body = {"status": status, "message": message, "correlationId": correlation_id()}


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


def _national(stored: str | None) -> str | None:
    """HubSpot's computed "number without country code", read in the portal's country."""
    if not stored:
        return None
    try:
        parsed = phonenumbers.parse(stored, PORTAL_REGION)
    except phonenumbers.NumberParseException:
        digits = re.sub(r"\D", "", stored)
        return digits or None
    return str(phonenumbers.national_significant_number(parsed))


def _property_problems(
    properties: Any, writable: frozenset[str], computed: frozenset[str]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Clean string properties, and HubSpot's per-property validation errors."""
    if not isinstance(properties, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
    clean: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    for name, value in properties.items():
        if name in computed:
            problems.append({"name": name, "error": "READ_ONLY_VALUE", "message": f'Property "{name}" is read-only'})
        elif name not in writable:
            problems.append(
                {"name": name, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'}
            )
        elif not isinstance(value, str | int | float | bool) and value is not None:
            problems.append({"name": name, "error": "INVALID_OPTION", "message": f'Property "{name}" must be a string'})
        elif name == "email" and value and not _EMAIL.match(str(value)):
            problems.append({"name": name, "error": "INVALID_EMAIL", "message": f"Email address {value} is invalid"})
        else:
            clean[name] = "" if value is None else str(value)
    return clean, problems


def _refuse(problems: list[dict[str, Any]]) -> HubSpotError:
    details = ", ".join(f'{{"isValid":false,"message":"{p["message"]}","error":"{p["error"]}"}}' for p in problems)
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: [{details}]",
        errors=[
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}} for p in problems
        ],
    )


class HubSpotState:
    """One emulated HubSpot portal. Safe to seed from a test thread while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.contacts: dict[str, Record] = {}
            self.notes: dict[str, Record] = {}
            # HubSpot record ids are numeric strings.
            self._ids = itertools.count(1001)
            self.access_tokens: dict[str, float] = {}
            self.refresh_tokens: set[str] = {SANDBOX_REFRESH_TOKEN}

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "contacts": [record.public(sorted(record.properties)) for record in self.contacts.values()],
                "notes": [
                    {**record.public(sorted(record.properties)), "associations": record.associations}
                    for record in self.notes.values()
                ],
            }

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens = {token: 0.0 for token in self.access_tokens}

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()

    # -- OAuth ------------------------------------------------------------------------------------

    def refresh(self, form: Mapping[str, str]) -> dict[str, Any]:
        """POST /oauth/v1/token with grant_type=refresh_token; raises `TokenError`."""
        if form.get("grant_type") != "refresh_token":
            raise TokenError("BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token")
        if form.get("client_id") != SANDBOX_CLIENT_ID:
            raise TokenError("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != SANDBOX_CLIENT_SECRET:
            # Not verified against HubSpot; shaped like its other token errors.
            raise TokenError("BAD_CLIENT_SECRET", "missing or invalid client secret")
        with self._lock:
            refresh_token = form.get("refresh_token", "")
            if refresh_token not in self.refresh_tokens:
                raise TokenError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            access_token = f"sandbox-access-{uuid.uuid4().hex}"
            self.access_tokens[access_token] = time.monotonic() + ACCESS_TOKEN_SECONDS
        # HubSpot's refresh tokens do not rotate: the same one comes back.
        return {
            "token_type": "bearer",
            "refresh_token": refresh_token,
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
        }

    def authenticate(self, authorization: str | None) -> None:
        """Check a Bearer header; raises HubSpot's 401 answers."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token == SANDBOX_PRIVATE_APP_TOKEN:
            return
        with self._lock:
            expires = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None:
            raise HubSpotError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        if expires <= time.monotonic():
            raise HubSpotError(
                401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired 0 minute(s) ago."
            )

    # -- contacts ---------------------------------------------------------------------------------

    def add_contact(self, properties: Mapping[str, str], *, searchable: bool = True) -> Record:
        """Seed a contact as if someone else had created it (no validation, no uniqueness check)."""
        with self._lock:
            return self._store_contact(dict(properties), searchable=searchable)

    def _store_contact(self, properties: dict[str, str], *, searchable: bool = True) -> Record:
        now = datetime.now(UTC)
        record = Record(str(next(self._ids)), {}, now, now, searchable=searchable)
        self._write_contact(record, properties, now)
        self.contacts[record.id] = record
        return record

    def _write_contact(self, record: Record, changes: Mapping[str, str], now: datetime) -> None:
        for name, value in changes.items():
            if value == "":
                record.properties.pop(name, None)
            else:
                record.properties[name] = value.lower() if name == "email" else value
        record.updated_at = now
        props = record.properties
        props["hs_object_id"] = record.id
        props["createdate"] = iso(record.created_at)
        props["lastmodifieddate"] = iso(now)
        for source, computed in (
            ("phone", "hs_searchable_calculated_phone_number"),
            ("mobilephone", "hs_searchable_calculated_mobile_number"),
        ):
            national = _national(props.get(source))
            if national:
                props[computed] = national
            else:
                props.pop(computed, None)

    def _holder_of(self, email: str | None, *, other_than: str | None = None) -> Record | None:
        if not email:
            return None
        return next(
            (r for r in self.contacts.values() if r.properties.get("email") == email.lower() and r.id != other_than),
            None,
        )

    def create_contact(self, body: Any) -> Record:
        """POST /crm/v3/objects/contacts: 409 CONFLICT for an email another contact holds."""
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        properties, problems = _property_problems(body.get("properties"), CONTACT_WRITABLE, CONTACT_COMPUTED)
        if problems:
            raise _refuse(problems)
        with self._lock:
            holder = self._holder_of(properties.get("email"))
            if holder is not None:
                raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {holder.id}")
            return self._store_contact({k: v for k, v in properties.items() if v != ""})

    def contact(self, contact_id: str, *, id_property: str | None = None) -> Record:
        with self._lock:
            record = self._holder_of(contact_id) if id_property == "email" else self.contacts.get(contact_id)
        if record is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        return record

    def update_contact(self, contact_id: str, body: Any, *, id_property: str | None = None) -> Record:
        """PATCH /crm/v3/objects/contacts/{id}: "" clears a property; an email in use is a conflict."""
        record = self.contact(contact_id, id_property=id_property)
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        properties, problems = _property_problems(body.get("properties"), CONTACT_WRITABLE, CONTACT_COMPUTED)
        if problems:
            raise _refuse(problems)
        with self._lock:
            holder = self._holder_of(properties.get("email"), other_than=record.id)
            if holder is not None:
                raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {holder.id}")
            self._write_contact(record, properties, datetime.now(UTC))
        return record

    def list_contacts(self, *, after: str | None, limit: int) -> tuple[list[Record], str | None]:
        """Contacts by id from the cursor `after` (the next id), and the following cursor."""
        with self._lock:
            ordered = sorted(self.contacts.values(), key=lambda r: int(r.id))
        start = int(after) if after and after.isdigit() else 0
        page = [r for r in ordered if int(r.id) >= start][: limit + 1]
        next_after = page[limit].id if len(page) > limit else None
        return page[:limit], next_after

    def search_contacts(self, body: Any) -> tuple[list[Record], int, str | None]:
        """POST /crm/v3/objects/contacts/search: the page of matches, the total, the next offset."""
        try:
            sandbox_search.validate(body)
        except sandbox_search.SearchRequestError as error:
            raise HubSpotError(400, "VALIDATION_ERROR", str(error)) from None
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 < limit <= 200:
            raise HubSpotError(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        after = str(body.get("after") or "0")
        if not after.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"after must be a number of results, not {after!r}")
        with self._lock:
            candidates = [r for r in sorted(self.contacts.values(), key=lambda r: int(r.id)) if r.searchable]
        found = [r for r in candidates if sandbox_search.matches(r.properties, body)]
        found = sandbox_search.order(found, sandbox_search.sorts_of(body), lambda r: r.properties)
        start = int(after)
        page = found[start : start + limit]
        next_after = str(start + limit) if start + limit < len(found) else None
        return page, len(found), next_after

    # -- notes ------------------------------------------------------------------------------------

    def create_note(self, body: Any) -> Record:
        """POST /crm/v3/objects/notes with associations to contacts (type 202)."""
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        properties, problems = _property_problems(body.get("properties"), NOTE_WRITABLE, NOTE_COMPUTED)
        if not properties.get("hs_timestamp") and not problems:
            problems.append({"name": "hs_timestamp", "error": "REQUIRED", "message": "hs_timestamp is required"})
        if problems:
            raise _refuse(problems)
        associations = body.get("associations") or []
        with self._lock:
            for association in associations:
                self._check_association(association)
            now = datetime.now(UTC)
            record = Record(str(next(self._ids)), {}, now, now, associations=list(associations))
            record.properties = {k: v for k, v in properties.items() if v}
            record.properties["hs_timestamp"] = _timestamp(record.properties["hs_timestamp"])
            record.properties.update(hs_object_id=record.id, hs_createdate=iso(now), hs_lastmodifieddate=iso(now))
            self.notes[record.id] = record
        return record

    def _check_association(self, association: Any) -> None:
        target = association.get("to", {}).get("id") if isinstance(association, dict) else None
        types = association.get("types") if isinstance(association, dict) else None
        if not target or not isinstance(types, list) or not types:
            raise HubSpotError(400, "VALIDATION_ERROR", "Each association needs to.id and types")
        for spec in types:
            if spec.get("associationTypeId") != NOTE_TO_CONTACT or spec.get("associationCategory") != "HUBSPOT_DEFINED":
                raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid association type {spec!r} for notes")
        if str(target) not in self.contacts:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"One or more associations are invalid: contact {target} does not exist"
            )

    def note(self, note_id: str) -> Record:
        with self._lock:
            record = self.notes.get(note_id)
        if record is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        return record

    def notes_by_id(self, note_ids: Iterable[str]) -> dict[str, Record]:
        """The notes among `note_ids` that exist, by id."""
        with self._lock:
            return {note_id: self.notes[note_id] for note_id in note_ids if note_id in self.notes}

    def notes_of(self, contact_id: str) -> list[Record]:
        """The notes associated with the contact, by id: the note → contact links seen from the contact."""
        with self._lock:
            notes = sorted(self.notes.values(), key=lambda r: int(r.id))
        return [note for note in notes if contact_id in _linked_contacts(note)]

    def contacts_of(self, note_id: str) -> list[str]:
        """Ids of the contacts a note is associated with, by id (none for an unknown note)."""
        with self._lock:
            note = self.notes.get(note_id)
        return sorted(_linked_contacts(note), key=int) if note is not None else []


def _linked_contacts(note: Record) -> set[str]:
    return {str(association["to"]["id"]) for association in note.associations}


def _timestamp(value: str) -> str:
    """hs_timestamp as HubSpot stores it: ISO 8601 from an ISO string or epoch milliseconds."""
    if value.isdigit():
        return iso(datetime.fromtimestamp(int(value) / 1000, tz=UTC))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _refuse(
            [{"name": "hs_timestamp", "error": "INVALID_DATE", "message": f"{value} is not a valid timestamp"}]
        ) from None
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
