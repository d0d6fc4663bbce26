"""The Outlook emulator's in-memory state: mailboxes with their events, OAuth tokens, sent mail.

It follows the Graph v1.0 semantics the integration relies on (https://learn.microsoft.com/graph/api/resources/event):
server-chosen event ids, `transactionId` deduplication of creates, PATCH that merges properties
(extended properties by id), DELETE and the organizer's `cancel` (both remove the event, as a move
to Deleted Items does), extended-property filters, and calendarView's overlap rule. Events are
kept in UTC and rendered in whichever zone a request prefers. Recurrence is not expanded.
"""

from __future__ import annotations

import base64
import copy
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.outlook_calendar.sandbox_wire import (
    EVENT_PROPERTIES,
    SHOW_AS,
    GraphError,
    graph_stamp,
    parse_event_time,
)
from integrations.outlook_calendar.windows_zones import iana_zone

__all__ = [
    "FRONT_DESK",
    "OWNER",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_TENANT",
    "SNAPSHOT_VERSION",
    "Mailbox",
    "OutlookState",
]

SANDBOX_TENANT = "sandbox-dental.example.com"
SANDBOX_CLIENT_ID = "00000000-0000-4000-8000-5a4db0c0ffee"
SANDBOX_CLIENT_SECRET = "sandbox~client~secret"
SANDBOX_REFRESH_TOKEN = "M.C100_SANDBOX.0.U.-sandbox-refresh-token"
OWNER = "owner@sandbox-dental.example.com"
# A second mailbox whose busy time can count too (a shared room or the front desk).
FRONT_DESK = "frontdesk@sandbox-dental.example.com"

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1
# The fields of a stored event the state reads; a snapshot whose events lack one is not ours.
_EVENT_FIELDS = frozenset({"id", "start", "end", "showAs", "createdDateTime", "singleValueExtendedProperties"})
_READ_ONLY = frozenset({"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "iCalUId", "webLink"})


@dataclass
class Mailbox:
    """One mailbox: its owner, working hours zone (a Windows name, as Outlook keeps it) and events."""

    address: str
    name: str
    time_zone: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def calendar(self) -> dict[str, Any]:
        return {
            "id": _id("AAMkAGCal", self.address),
            "name": "Calendar",
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": True,
            "changeKey": base64.b64encode(self.address.encode()).decode()[:24],
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": True,
            "isRemovable": False,
            "owner": {"name": self.name, "address": self.address},
        }


class _SavedMailbox(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    address: str
    name: str
    time_zone: str
    events: dict[str, dict[str, Any]]


class _Snapshot(BaseModel):
    """The state as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    mailboxes: list[_SavedMailbox]
    access_tokens: list[str]
    refresh_tokens: list[str]
    tokens_issued: int
    notifications: list[dict[str, Any]]


def _id(prefix: str, seed: str | None = None) -> str:
    raw = seed.encode() if seed is not None else secrets.token_bytes(48)
    return prefix + base64.urlsafe_b64encode(raw).decode()


def _instant(stored: dict[str, Any]) -> datetime:
    # Stored times are always UTC wall-clock with Graph's seven fractional digits.
    return datetime.fromisoformat(str(stored["dateTime"])[:26]).replace(tzinfo=UTC)


class OutlookState:
    """Everything the emulator remembers; `reset()` returns it to two mailboxes without events."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, Mailbox] = {}
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.tokens_issued = 0
        # What Outlook would have emailed attendees (invitations, updates, cancellations), for /_state.
        self.notifications: list[dict[str, Any]] = []
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.mailboxes = {
            OWNER: Mailbox(OWNER, "Sandbox Dental", "Eastern Standard Time"),
            FRONT_DESK: Mailbox(FRONT_DESK, "Front desk", "Eastern Standard Time"),
        }
        self.access_tokens = set()
        self.refresh_tokens = {SANDBOX_REFRESH_TOKEN}
        self.tokens_issued = 0
        self.notifications = []

    def dump(self) -> dict[str, Any]:
        return {
            "mailboxes": {
                box.address: {
                    "name": box.name,
                    "timeZone": box.time_zone,
                    "events": sorted(box.events.values(), key=lambda e: (e["start"]["dateTime"], e["id"])),
                }
                for box in self.mailboxes.values()
            },
            "notifications": self.notifications,
            "tokens": {"issued": self.tokens_issued, "refresh_token_valid": bool(self.refresh_tokens)},
        }

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    def snapshot(self) -> dict[str, Any]:
        saved = _Snapshot(
            version=SNAPSHOT_VERSION,
            mailboxes=[
                _SavedMailbox(address=b.address, name=b.name, time_zone=b.time_zone, events=b.events)
                for b in self.mailboxes.values()
            ],
            access_tokens=sorted(self.access_tokens),
            refresh_tokens=sorted(self.refresh_tokens),
            tokens_issued=self.tokens_issued,
            notifications=self.notifications,
        )
        # A JSON dump builds new containers all the way down: nothing is shared with the state.
        return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"not an outlook_calendar sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        mailboxes: dict[str, Mailbox] = {}
        for box in saved.mailboxes:
            iana_zone(box.time_zone)  # UnknownZoneError is a ValueError
            for event_id, event in box.events.items():
                missing = _EVENT_FIELDS - event.keys()
                if missing or event["id"] != event_id:
                    raise KeyError(f"saved event {event_id!r} lacks {sorted(missing)} or names another id")
            mailboxes[box.address] = Mailbox(box.address, box.name, box.time_zone, box.events)
        self.mailboxes = mailboxes
        self.access_tokens = set(saved.access_tokens)
        self.refresh_tokens = set(saved.refresh_tokens)
        self.tokens_issued = saved.tokens_issued
        self.notifications = saved.notifications

    # -- OAuth -------------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        """A new access token and a new refresh token (the old refresh token stays valid too)."""
        access = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + secrets.token_urlsafe(32) + ".sandbox"
        refresh = "M.C100_SANDBOX.0.U.-" + secrets.token_urlsafe(24)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        self.tokens_issued += 1
        return access, refresh

    # -- mailboxes and events ------------------------------------------------------------------------

    def mailbox(self, user: str | None) -> Mailbox:
        """/me (None) is the owner; /users/{id} names a mailbox by address, case-insensitively."""
        if user is None:
            return self.mailboxes[OWNER]
        for box in self.mailboxes.values():
            if box.address.lower() == user.lower():
                return box
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user[:100]}' is invalid.")

    def event(self, box: Mailbox, event_id: str) -> dict[str, Any]:
        if not event_id.startswith("AAMk") or len(event_id) < 16:
            raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
        found = box.events.get(event_id)
        if found is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def live_events(self, box: Mailbox) -> list[dict[str, Any]]:
        return list(box.events.values())

    def busy_items(
        self, box: Mailbox, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, dict[str, Any]]]:
        """Every event overlapping [start, end), with its instants, by start."""
        found = [
            (_instant(e["start"]), _instant(e["end"]), e)
            for e in box.events.values()
            if _instant(e["start"]) < end and _instant(e["end"]) > start
        ]
        return sorted(found, key=lambda item: (item[0], item[2]["id"]))

    def create(self, box: Mailbox, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The new event, or (for a transactionId it has seen on a live event) that event; and whether it is new."""
        check_body(body)
        transaction_id = body.get("transactionId")
        if transaction_id:
            for known in box.events.values():
                if known.get("transactionId") == transaction_id:
                    return known, False
        start = parse_event_time(body.get("start"), "start")
        end = parse_event_time(body.get("end"), "end")
        if end < start:
            raise GraphError(400, "ErrorInvalidRequest", "The end time of the event must be after its start.")
        event_id = _id("AAMkAGVmMDEzLTE2ZmQtNGIx")
        stamp = graph_stamp(datetime.now(UTC))
        organizer = {"emailAddress": {"name": box.name, "address": box.address}}
        event: dict[str, Any] = {
            "id": event_id,
            "createdDateTime": stamp,
            "lastModifiedDateTime": stamp,
            "changeKey": secrets.token_urlsafe(18),
            "categories": [],
            "transactionId": transaction_id,
            "originalStartTimeZone": body["start"]["timeZone"],
            "originalEndTimeZone": body["end"]["timeZone"],
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": "",
            "bodyPreview": "",
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": False,
            "isCancelled": False,
            "isOrganizer": True,
            "responseRequested": True,
            "seriesMasterId": None,
            "showAs": "busy",
            "type": "singleInstance",
            "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "cancelledOccurrences": [],
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "text", "content": ""},
            "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"},
            "locations": [],
            "recurrence": None,
            "attendees": [],
            "organizer": organizer,
            "onlineMeeting": None,
            "singleValueExtendedProperties": [],
        }
        _apply(event, body)
        event["start"] = _stored(start)
        event["end"] = _stored(end)
        box.events[event_id] = event
        self._notify(event, "invitation", [a["emailAddress"]["address"] for a in event["attendees"]])
        return event, True

    def update(self, box: Mailbox, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        event = self.event(box, event_id)
        check_body(changes)
        for name in _READ_ONLY & changes.keys():
            raise GraphError(400, "ErrorInvalidPropertyUpdateSentToServer", f"The property '{name}' is read-only.")
        if "transactionId" in changes and changes["transactionId"] != event.get("transactionId"):
            raise GraphError(400, "ErrorInvalidPropertyUpdateSentToServer", "transactionId cannot be changed.")
        updated = copy.deepcopy(event)
        before = {a["emailAddress"]["address"].lower() for a in event["attendees"]}
        _apply(updated, changes)
        for key in ("start", "end"):
            if key in changes:
                updated[key] = _stored(parse_event_time(changes[key], key))
                updated[f"original{key.title()}TimeZone"] = changes[key]["timeZone"]
        if _instant(updated["end"]) < _instant(updated["start"]):
            raise GraphError(400, "ErrorInvalidRequest", "The end time of the event must be after its start.")
        updated["lastModifiedDateTime"] = graph_stamp(datetime.now(UTC))
        updated["changeKey"] = secrets.token_urlsafe(18)
        box.events[event_id] = updated
        after = {a["emailAddress"]["address"].lower() for a in updated["attendees"]}
        self._notify(updated, "cancellation", sorted(before - after))
        if any(k in changes for k in ("start", "end", "subject", "body")):
            self._notify(updated, "update", sorted(before & after))
        return updated

    def remove(self, box: Mailbox, event_id: str, action: str) -> None:
        """DELETE or the organizer's cancel: the event leaves the calendar (for Deleted Items, under a new id)."""
        event = self.event(box, event_id)
        del box.events[event_id]
        self._notify(event, action, [a["emailAddress"]["address"] for a in event["attendees"]])

    def add_event(
        self, box_address: str, start: datetime, end: datetime, subject: str = "Staff meeting", *, show_as: str = "busy"
    ) -> dict[str, Any]:
        """An event made outside the integration (by staff in Outlook), for tests and demos."""
        box = self.mailboxes[box_address]
        body = {
            "subject": subject,
            "start": {"dateTime": start.astimezone(UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": end.astimezone(UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "showAs": show_as,
        }
        return self.create(box, body)[0]

    def _notify(self, event: dict[str, Any], action: str, recipients: list[str]) -> None:
        if recipients:
            self.notifications.append({"event_id": event["id"], "action": action, "to": recipients})


def check_body(body: dict[str, Any]) -> None:
    """Graph's 400 for a property microsoft.graph.event does not have, or a value it cannot read."""
    for name in body:
        if name not in EVENT_PROPERTIES and not name.startswith("@odata."):
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type.",
            )
    if "showAs" in body and body["showAs"] not in SHOW_AS:
        raise GraphError(400, "RequestBodyRead", f"Requested value '{body['showAs']}' was not found.")
    for attendee in body.get("attendees") or []:
        if not isinstance(attendee, dict) or not (attendee.get("emailAddress") or {}).get("address"):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
    for item in body.get("singleValueExtendedProperties") or []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "value" not in item:
            raise GraphError(400, "ErrorInvalidProperty", "The extended property is not valid.")


def _stored(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": "UTC"}


def _apply(event: dict[str, Any], changes: dict[str, Any]) -> None:
    """PATCH semantics: properties replaced; extended properties added or replaced by id."""
    for key, value in changes.items():
        if key in ("start", "end", "transactionId") or key.startswith("@odata."):
            continue
        if key == "singleValueExtendedProperties":
            merged = {p["id"]: p for p in event.get(key) or []}
            merged.update({p["id"]: {"id": p["id"], "value": str(p["value"])} for p in value or []})
            event[key] = list(merged.values())
        elif key == "attendees":
            event[key] = [
                {"type": "required", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}, **a}
                for a in copy.deepcopy(value or [])
            ]
        else:
            event[key] = copy.deepcopy(value)
    if "body" in changes and isinstance(changes["body"], dict):
        event["bodyPreview"] = str(changes["body"].get("content") or "")[:255]
