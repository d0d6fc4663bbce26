"""The Salesforce emulator's in-memory org: Contacts, Leads and Tasks, OAuth tokens, API usage.

Records are flat dicts of field API names, as Salesforce returns them (without `attributes`,
which the routes add). Ids are real-looking 18-character ids: the object's key prefix (003
Contact, 00Q Lead, 00T Task), a counter, and Salesforce's case-checksum suffix; a 15-character
id finds the same record, as in Salesforce.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "FIELDS",
    "KEY_PREFIXES",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SNAPSHOT_VERSION",
    "SalesforceState",
    "SfError",
    "sf_timestamp",
]

SANDBOX_CLIENT_ID = "3MVG9sandboxVoiceAgentConsumerKey"
SANDBOX_CLIENT_SECRET = "sandbox-consumer-secret-0123456789"
SANDBOX_REFRESH_TOKEN = "5Aep861sandboxRefreshToken0123456789"
SNAPSHOT_VERSION = 1
ORG_ID = "00D5g000000SANDBOX"
USER_ID = "0055g000000SANDBOX"
DEFAULT_API_LIMIT = 15000
DEFAULT_BATCH_SIZE = 2000

KEY_PREFIXES = {"Contact": "003", "Lead": "00Q", "Task": "00T"}
_SYSTEM = (
    "Id",
    "IsDeleted",
    "OwnerId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)
_PERSON = (
    "FirstName",
    "LastName",
    "Name",
    "Salutation",
    "Phone",
    "MobilePhone",
    "HomePhone",
    "OtherPhone",
    "Fax",
    "Email",
    "Title",
    "Description",
    "LeadSource",
)
# Field names per object (a v59 subset), and which of them a request may write.
FIELDS: dict[str, frozenset[str]] = {
    "Contact": frozenset((*_SYSTEM, *_PERSON, "AccountId", "Department")),
    "Lead": frozenset((*_SYSTEM, *_PERSON, "Company", "Status", "IsConverted", "Industry")),
    "Task": frozenset(
        (
            *_SYSTEM,
            "WhoId",
            "WhatId",
            "Subject",
            "Description",
            "Status",
            "Priority",
            "IsClosed",
            "ActivityDate",
            "TaskSubtype",
            "CallType",
            "CallDurationInSeconds",
            "CallDisposition",
            "CallObject",
        )
    ),
}
_READ_ONLY = frozenset((*_SYSTEM, "Name", "IsClosed", "IsConverted"))
# Not updateable once created.
_CREATE_ONLY = {"Task": frozenset({"TaskSubtype"})}
_REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company"), "Task": ()}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted", "IsConverted": False},
    "Task": {"Status": "Not Started", "Priority": "Normal", "TaskSubtype": "Task"},
}
_CLOSED = {"Completed"}
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class SfError(Exception):
    """An error Salesforce answers as `[{"message", "errorCode", "fields"}]`."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> list[dict[str, Any]]:
        if self.status in (403, 404, 405):
            # RestApiError in the spec: {errorCode, message}.
            return [{"errorCode": self.code, "message": self.message}]
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]


def sf_timestamp(when: datetime) -> str:
    """Salesforce's dateTime format: 2026-03-04T15:00:00.000+0000."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def _checksum(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= c <= "Z")
        suffix += _CHECKSUM[bits]
    return suffix


def full_id(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id; None for anything else."""
    if len(record_id) == 15 and record_id.isascii() and record_id.isalnum():
        return record_id + _checksum(record_id)
    if len(record_id) == 18 and record_id.isascii() and record_id.isalnum():
        return record_id
    return None


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    next_number: int
    records: dict[str, list[dict[str, Any]]]
    access_tokens: list[str]
    refresh_tokens: list[str]
    api_used: int
    api_limit: int
    batch_size: int
    cursors: dict[str, list[dict[str, Any]]]
    unindexed: list[str]


class SalesforceState:
    """One org. Thread-safe: uvicorn serves the emulator while tests read it."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in FIELDS}
            self.next_number = 1
            self.access_tokens: set[str] = set()
            self.refresh_tokens: set[str] = {SANDBOX_REFRESH_TOKEN}
            self.api_used = 0
            self.api_limit = DEFAULT_API_LIMIT
            self.batch_size = DEFAULT_BATCH_SIZE
            self.cursors: dict[str, list[dict[str, Any]]] = {}
            # Records SOSL does not see yet: Salesforce indexes new records for search asynchronously.
            self.unindexed: set[str] = set()

    # -- OAuth ------------------------------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str, refresh_token: str) -> str:
        """A new access token for a known app and refresh token; SfError-like OAuth errors otherwise."""
        with self._lock:
            if client_id != SANDBOX_CLIENT_ID:
                raise SfError(400, "invalid_client_id", "client identifier invalid")
            if client_secret != SANDBOX_CLIENT_SECRET:
                raise SfError(400, "invalid_client", "invalid client credentials")
            if refresh_token not in self.refresh_tokens:
                raise SfError(400, "invalid_grant", "expired access/refresh token")
            token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
            self.access_tokens.add(token)
            return token

    def authorized(self, token: str) -> bool:
        with self._lock:
            return token in self.access_tokens

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()

    def count_request(self) -> tuple[int, int]:
        """Count one API request against the daily allocation; (used, limit) after it."""
        with self._lock:
            self.api_used += 1
            return self.api_used, self.api_limit

    # -- records -----------------------------------------------------------------------------------

    def _new_id(self, sobject: str) -> str:
        id15 = f"{KEY_PREFIXES[sobject]}Sb{self.next_number:010d}"
        self.next_number += 1
        return id15 + _checksum(id15)

    def find(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        key = full_id(record_id)
        with self._lock:
            return self.records[sobject].get(key) if key else None

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        record = self.find(sobject, record_id)
        if record is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return dict(record)

    def searchable(self, sobject: str) -> list[dict[str, Any]]:
        """The records SOSL sees (those in the search index)."""
        with self._lock:
            return [dict(r) for key, r in self.records[sobject].items() if key not in self.unindexed]

    def all(self, sobject: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self.records[sobject].values()]

    def _check_fields(self, sobject: str, body: Mapping[str, Any], *, creating: bool) -> None:
        unknown = [name for name in body if name not in FIELDS[sobject]]
        if unknown:
            raise SfError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}")
        locked = [
            name for name in body if name in _READ_ONLY or (not creating and name in _CREATE_ONLY.get(sobject, ()))
        ]
        if locked:
            raise SfError(
                400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {', '.join(locked)}.", locked
            )
        for name, value in body.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                raise SfError(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {name}")

    def _check_who(self, body: Mapping[str, Any]) -> None:
        who = body.get("WhoId")
        if who is None:
            return
        person = str(who)
        kind = {"003": "Contact", "00Q": "Lead"}.get(person[:3])
        if kind is None or self.find(kind, person) is None:
            raise SfError(
                400, "INVALID_CROSS_REFERENCE_KEY", f"Name ID: id value of incorrect type: {person}", ["WhoId"]
            )

    def _complete(self, sobject: str, record: dict[str, Any]) -> None:
        if sobject in ("Contact", "Lead"):
            first, last = record.get("FirstName"), record.get("LastName")
            record["Name"] = " ".join(str(part) for part in (first, last) if part)
        if sobject == "Task":
            record["IsClosed"] = record.get("Status") in _CLOSED
            if isinstance(record.get("WhoId"), str):
                record["WhoId"] = full_id(record["WhoId"]) or record["WhoId"]

    def create(self, sobject: str, body: Mapping[str, Any]) -> str:
        self._check_fields(sobject, body, creating=True)
        missing = [name for name in _REQUIRED[sobject] if body.get(name) in (None, "")]
        if missing:
            raise SfError(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        now = sf_timestamp(self.clock())
        with self._lock:
            self._check_who(body)
            record_id = self._new_id(sobject)
            record: dict[str, Any] = {name: None for name in FIELDS[sobject]}
            record.update(_DEFAULTS.get(sobject, {}))
            record.update(body)
            record.update(
                Id=record_id,
                IsDeleted=False,
                OwnerId=USER_ID,
                CreatedById=USER_ID,
                LastModifiedById=USER_ID,
                CreatedDate=now,
                LastModifiedDate=now,
                SystemModstamp=now,
            )
            self._complete(sobject, record)
            self.records[sobject][record_id] = record
            return record_id

    def update(self, sobject: str, record_id: str, body: Mapping[str, Any]) -> None:
        self._check_fields(sobject, body, creating=False)
        with self._lock:
            record = self.find(sobject, record_id)
            if record is None:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            required = [name for name in _REQUIRED[sobject] if name in body and body[name] in (None, "")]
            if required:
                raise SfError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{required[0]}]", required)
            self._check_who(body)
            record.update(body)
            now = sf_timestamp(self.clock())
            record.update(LastModifiedDate=now, SystemModstamp=now)
            self._complete(sobject, record)

    def delete(self, sobject: str, record_id: str) -> None:
        with self._lock:
            key = full_id(record_id)
            if key is None or self.records[sobject].pop(key, None) is None:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A Contact typed in by a person: the phone stored exactly as given."""
        words = name.split()
        body: dict[str, Any] = {"LastName": words[-1] if words else "[not provided]"}
        if len(words) > 1:
            body["FirstName"] = " ".join(words[:-1])
        if phone is not None:
            body["Phone"] = phone
        if email is not None:
            body["Email"] = email
        return self.create("Contact", body)

    # -- query cursors -----------------------------------------------------------------------------

    def open_cursor(self, rows: list[dict[str, Any]]) -> str:
        with self._lock:
            locator = f"01g5g{secrets.token_hex(6).upper()}"
            self.cursors[locator] = rows
            return locator

    def take_cursor(self, locator: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self.cursors.pop(locator, None)

    # -- what GET /_state shows, and persistence -------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "contacts": self.all("Contact"),
                "leads": self.all("Lead"),
                "tasks": self.all("Task"),
                "api_usage": {"used": self.api_used, "limit": self.api_limit},
            }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            saved = _Snapshot(
                version=SNAPSHOT_VERSION,
                next_number=self.next_number,
                records={name: [dict(r) for r in records.values()] for name, records in self.records.items()},
                access_tokens=sorted(self.access_tokens),
                refresh_tokens=sorted(self.refresh_tokens),
                api_used=self.api_used,
                api_limit=self.api_limit,
                batch_size=self.batch_size,
                cursors=self.cursors,
                unindexed=sorted(self.unindexed),
            )
            return copy.deepcopy(saved.model_dump(mode="json"))

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"not a salesforce sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        if set(saved.records) != set(FIELDS):
            raise KeyError(f"snapshot objects {sorted(saved.records)} are not {sorted(FIELDS)}")
        records: dict[str, dict[str, dict[str, Any]]] = {}
        for sobject, rows in saved.records.items():
            by_id: dict[str, dict[str, Any]] = {}
            for row in rows:
                record_id = row.get("Id")
                if not isinstance(record_id, str) or full_id(record_id) != record_id:
                    raise ValueError(f"a saved {sobject} has no valid Id")
                if not record_id.startswith(KEY_PREFIXES[sobject]):
                    raise ValueError(f"saved {sobject} id {record_id} has another object's key prefix")
                if record_id in by_id:
                    raise ValueError(f"saved {sobject} id {record_id} repeats")
                if int(record_id[5:15]) >= saved.next_number:
                    raise ValueError("saved record ids are not all below the next id")
                by_id[record_id] = row
            records[sobject] = by_id
        with self._lock:
            self.records = records
            self.next_number = saved.next_number
            self.access_tokens = set(saved.access_tokens)
            self.refresh_tokens = set(saved.refresh_tokens)
            self.api_used, self.api_limit, self.batch_size = saved.api_used, saved.api_limit, saved.batch_size
            self.cursors = saved.cursors
            self.unindexed = set(saved.unindexed)
