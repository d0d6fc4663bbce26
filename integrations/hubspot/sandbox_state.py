"""The emulator's in-memory HubSpot portal: contacts, its engagements (notes, calls), OAuth tokens.

Everything the routes answer comes from here, shaped as HubSpot shapes it: `SimplePublicObject`s
whose properties are all strings, computed properties HubSpot maintains itself (`hs_object_id`,
`createdate`, `hs_searchable_calculated_phone_number`, …), and errors in HubSpot's body format.
Engagements are kept by `sandbox_engagements`, one store per type, sharing this portal's ids.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict

from integrations.hubspot import sandbox_search
from integrations.hubspot.sandbox_engagements import CALLS, NOTES, Engagements
from integrations.hubspot.sandbox_records import (
    HubSpotError,
    Record,
    SavedRecord,
    correlation_id,
    iso,
    property_problems,
    refuse,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_APP_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "SNAPSHOT_VERSION",
    "HubSpotError",
    "HubSpotState",
    "Record",
    "TokenError",
    "correlation_id",
    "iso",
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
# HubSpot record ids are numeric strings, unique across object types; the portal's first one.
FIRST_ID = 1001
# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1

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


class TokenError(Exception):
    """An error answer from HubSpot's OAuth token endpoint: `{status: "BAD_…", message, correlationId}`."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.body = {"status": status, "message": message, "correlationId": correlation_id()}


def _national(stored: str | None) -> str | None:
    """HubSpot's computed "number without country code", read in the portal's country."""
    if not stored:
        return None
    try:
        parsed = phonenumbers.parse(stored, PORTAL_REGION)
    except phonenumbers.NumberParseException:
        # Decimal digits of any script, as phonenumbers reads them.
        digits = "".join(character for character in stored if character.isdecimal())
        return digits or None
    return str(phonenumbers.national_significant_number(parsed))


class _Snapshot(BaseModel):
    """The portal as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    next_id: int
    contacts: list[SavedRecord]
    notes: list[SavedRecord]
    calls: list[SavedRecord]
    # Each access token's expiry in Unix seconds: the live state counts in `time.monotonic()`,
    # which starts again with the process.
    access_tokens: dict[str, float]
    refresh_tokens: list[str]


class HubSpotState:
    """One emulated HubSpot portal. Safe to seed from a test thread while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.contacts: dict[str, Record] = {}
            self._following_id = FIRST_ID
            self.notes = Engagements(NOTES, self._lock, self._next_id, self._has_contact)
            self.calls = Engagements(CALLS, self._lock, self._next_id, self._has_contact)
            self.access_tokens: dict[str, float] = {}
            self.refresh_tokens: set[str] = {SANDBOX_REFRESH_TOKEN}

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "contacts": [record.public(sorted(record.properties)) for record in self.contacts.values()],
                "notes": self.notes.dump(),
                "calls": self.calls.dump(),
            }

    def engagements(self, name: str) -> Engagements:
        """The store of one engagement type by its plural name ("notes", "calls"); raises `KeyError`."""
        return {"notes": self.notes, "calls": self.calls}[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            wall_minus_monotonic = time.time() - time.monotonic()
            saved = _Snapshot(
                version=SNAPSHOT_VERSION,
                next_id=self._following_id,
                contacts=[record.saved() for record in self.contacts.values()],
                notes=self.notes.saved(),
                calls=self.calls.saved(),
                access_tokens={token: expires + wall_minus_monotonic for token, expires in self.access_tokens.items()},
                refresh_tokens=sorted(self.refresh_tokens),
            )
            # A JSON dump builds new containers all the way down: nothing is shared with the state.
            return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"not a hubspot sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        contacts = {record.id: Record.from_saved(record) for record in saved.contacts}
        ids = [int(record.id) for record in (*saved.contacts, *saved.notes, *saved.calls)]
        if len(set(ids)) != len(ids) or saved.next_id <= max(ids, default=FIRST_ID - 1):
            raise ValueError("saved record ids repeat, or are not all below the next id")
        notes = Engagements(NOTES, self._lock, self._next_id, self._has_contact)
        notes.restore(saved.notes)
        calls = Engagements(CALLS, self._lock, self._next_id, self._has_contact)
        calls.restore(saved.calls)
        monotonic_minus_wall = time.monotonic() - time.time()
        with self._lock:
            self.contacts = contacts
            self._following_id = saved.next_id
            self.notes, self.calls = notes, calls
            self.access_tokens = {
                token: expires + monotonic_minus_wall for token, expires in saved.access_tokens.items()
            }
            self.refresh_tokens = set(saved.refresh_tokens)

    def _next_id(self) -> str:
        with self._lock:
            self._following_id += 1
            return str(self._following_id - 1)

    def _has_contact(self, contact_id: str) -> bool:
        return contact_id in self.contacts

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

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """`ContactSeeding`: a contact as a HubSpot user typed it."""
        first, _, last = name.partition(" ")
        typed = {"firstname": first, "lastname": last, "phone": phone or "", "email": email or ""}
        return self.add_contact({key: value for key, value in typed.items() if value}).id

    def _store_contact(self, properties: dict[str, str], *, searchable: bool = True) -> Record:
        now = datetime.now(UTC)
        record = Record(self._next_id(), {}, now, now, searchable=searchable)
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
        properties, problems = property_problems(body.get("properties"), CONTACT_WRITABLE, CONTACT_COMPUTED)
        if problems:
            raise refuse(problems)
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
        properties, problems = property_problems(body.get("properties"), CONTACT_WRITABLE, CONTACT_COMPUTED)
        if problems:
            raise refuse(problems)
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
