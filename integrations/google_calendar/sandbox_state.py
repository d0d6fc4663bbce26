"""The Google Calendar emulator's in-memory state: calendars, events, OAuth tokens, sent invitations.

It follows the Calendar API v3 semantics the integration relies on
(https://developers.google.com/workspace/calendar/api/v3/reference): client-chosen event ids
(409 on reuse), deletes that leave a `cancelled` event behind (410 on a second delete), patch
semantics, private extended property filters, `timeMin`/`timeMax` bounds and page tokens.
Recurring events are not expanded: every event is a single event.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.common.zones import canonical_zone_name, zone_info
from integrations.google_calendar.sandbox_wire import (
    ApiError,
    EventQuery,
    check_attendees,
    check_send_updates,
    check_times,
    event_instant,
    html_link,
    is_listed,
    merge_patch,
    now_stamp,
    page_offset,
    page_token,
)

__all__ = [
    "OWNER_EMAIL",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SECOND_CALENDAR_ID",
    "SNAPSHOT_VERSION",
    "ApiError",
    "EventQuery",
    "GoogleCalendarState",
    "SandboxCalendar",
]

SANDBOX_CLIENT_ID = "000000000000-sandbox.apps.googleusercontent.com"
SANDBOX_CLIENT_SECRET = "GOCSPX-sandbox-client-secret"
SANDBOX_REFRESH_TOKEN = "1//sandbox-refresh-token"
OWNER_EMAIL = "owner@sandbox-dental.example.com"
# A second calendar the account can read, e.g. a shared staff calendar whose busy time counts too.
SECOND_CALENDAR_ID = "front-desk@group.calendar.google.com"

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1

_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
# Client-chosen event ids are 5 to 1024 of these (base32hex, lower case).
_EVENT_ID_CHARACTERS = frozenset(_BASE32HEX)
# The fields of an event the state reads; a snapshot whose events lack one is not ours.
_EVENT_FIELDS = frozenset({"id", "status", "start", "end", "created", "updated"})


@dataclass
class SandboxCalendar:
    """One calendar and its events (cancelled ones included, as Google keeps them)."""

    id: str
    summary: str
    time_zone: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        return {
            "kind": "calendar#calendar",
            "etag": f'"{int(hashlib.sha256(self.id.encode()).hexdigest()[:12], 16)}"',
            "id": self.id,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }


class _SavedCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    summary: str
    time_zone: str
    events: dict[str, dict[str, Any]]


class _Snapshot(BaseModel):
    """The state as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    calendars: list[_SavedCalendar]
    access_tokens: list[str]
    refresh_tokens: list[str]
    tokens_issued: int
    notifications: list[dict[str, Any]]


class GoogleCalendarState:
    """Everything the emulator remembers; `reset()` returns it to two empty calendars."""

    def __init__(self) -> None:
        self.calendars: dict[str, SandboxCalendar] = {}
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.tokens_issued = 0
        # What Google would have emailed to attendees (sendUpdates), so a person can see it in /_state.
        self.notifications: list[dict[str, Any]] = []
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.calendars = {
            OWNER_EMAIL: SandboxCalendar(OWNER_EMAIL, "Sandbox Dental", "America/New_York"),
            SECOND_CALENDAR_ID: SandboxCalendar(SECOND_CALENDAR_ID, "Front desk", "America/New_York"),
        }
        self.access_tokens = set()
        self.refresh_tokens = {SANDBOX_REFRESH_TOKEN}
        self.tokens_issued = 0
        self.notifications = []

    def dump(self) -> dict[str, Any]:
        return {
            "calendars": {
                calendar.id: {
                    "summary": calendar.summary,
                    "timeZone": calendar.time_zone,
                    "events": sorted(calendar.events.values(), key=lambda e: (e["start"].get("dateTime", ""), e["id"])),
                }
                for calendar in self.calendars.values()
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
            calendars=[
                _SavedCalendar(id=c.id, summary=c.summary, time_zone=c.time_zone, events=c.events)
                for c in self.calendars.values()
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
                f"not a google_calendar sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}"
            )
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        calendars: dict[str, SandboxCalendar] = {}
        for calendar in saved.calendars:
            for event_id, event in calendar.events.items():
                missing = _EVENT_FIELDS - event.keys()
                if missing or event["id"] != event_id:
                    raise KeyError(f"saved event {event_id!r} lacks {sorted(missing)} or names another id")
            zone = canonical_zone_name(calendar.time_zone)
            calendars[calendar.id] = SandboxCalendar(calendar.id, calendar.summary, zone, calendar.events)
        self.calendars = calendars
        self.access_tokens = set(saved.access_tokens)
        self.refresh_tokens = set(saved.refresh_tokens)
        self.tokens_issued = saved.tokens_issued
        self.notifications = saved.notifications

    # -- OAuth -----------------------------------------------------------------------------------

    def issue_access_token(self) -> str:
        token = f"ya29.sandbox-{secrets.token_urlsafe(24)}"
        self.access_tokens.add(token)
        self.tokens_issued += 1
        return token

    # -- calendars -------------------------------------------------------------------------------

    def calendar(self, calendar_id: str) -> SandboxCalendar:
        found = self.calendars.get(OWNER_EMAIL if calendar_id == "primary" else calendar_id)
        if found is None:
            raise ApiError(404, "notFound", "Not Found")
        return found

    def busy(self, calendar_id: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Merged busy intervals overlapping [start, end): confirmed or tentative, opaque events."""
        intervals = sorted(
            (event_instant(e["start"], "start"), event_instant(e["end"], "end"))
            for e in self.calendar(calendar_id).events.values()
            if e.get("status") != "cancelled" and e.get("transparency", "opaque") == "opaque"
        )
        merged: list[tuple[datetime, datetime]] = []
        for b_start, b_end in intervals:
            if b_end <= start or b_start >= end:
                continue
            if merged and b_start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b_end))
            else:
                merged.append((b_start, b_end))
        return merged

    # -- events ----------------------------------------------------------------------------------

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        found = self.calendar(calendar_id).events.get(event_id)
        if found is None:
            raise ApiError(404, "notFound", "Not Found")
        return found

    def insert(
        self, calendar_id: str, body: dict[str, Any], *, send_updates: str | None, conference_version: int
    ) -> dict[str, Any]:
        calendar = self.calendar(calendar_id)
        check_send_updates(send_updates)
        event_id = str(body.get("id") or "".join(secrets.choice(_BASE32HEX) for _ in range(26)))
        if not 5 <= len(event_id) <= 1024 or not set(event_id) <= _EVENT_ID_CHARACTERS:
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in calendar.events:
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        check_times(body)
        check_attendees(body)
        stamp = now_stamp()
        owner = {"email": OWNER_EMAIL, "self": True}
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": self._etag(),
            "id": event_id,
            "status": "confirmed",
            "htmlLink": html_link(event_id, calendar.id),
            "created": stamp,
            "updated": stamp,
            "creator": owner,
            "organizer": owner,
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        fields = {k: v for k, v in body.items() if k not in ("id", "conferenceData")}
        merge_patch(event, fields)
        if event.get("attendees"):
            event["attendees"] = [{"responseStatus": "needsAction", **a} for a in event["attendees"]]
        self._add_conference(event, body, conference_version)
        calendar.events[event_id] = event
        self._notify(event, "invitation", send_updates)
        return event

    def patch(
        self, calendar_id: str, event_id: str, changes: dict[str, Any], *, send_updates: str | None
    ) -> dict[str, Any]:
        check_send_updates(send_updates)
        event = self.event(calendar_id, event_id)
        if changes.get("id") not in (None, event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        updated = copy.deepcopy(event)
        merge_patch(updated, {k: v for k, v in changes.items() if k != "id"})
        check_times(updated)
        check_attendees(updated)
        if any(key in changes for key in ("start", "end", "status", "attendees")):
            updated["sequence"] = int(updated.get("sequence", 0)) + 1
        updated["updated"] = now_stamp()
        updated["etag"] = self._etag()
        self.calendar(calendar_id).events[event_id] = updated
        self._notify(updated, "update", send_updates)
        return updated

    def delete(self, calendar_id: str, event_id: str, *, send_updates: str | None) -> None:
        check_send_updates(send_updates)
        event = self.event(calendar_id, event_id)
        if event.get("status") == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        event["sequence"] = int(event.get("sequence", 0)) + 1
        event["updated"] = now_stamp()
        event["etag"] = self._etag()
        self._notify(event, "cancellation", send_updates)

    def list_events(
        self, calendar_id: str, query: EventQuery
    ) -> tuple[SandboxCalendar, list[dict[str, Any]], str | None]:
        """One page of matching events and the next page token (None on the last page)."""
        calendar = self.calendar(calendar_id)
        if query.order_by == "startTime" and not query.single_events:
            raise ApiError(400, "badRequest", "The requested ordering is not available for the particular query.")
        if query.time_min and query.time_max and query.time_max <= query.time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        matches = [e for e in calendar.events.values() if is_listed(e, query)]
        if query.order_by == "startTime":
            matches.sort(key=lambda e: (event_instant(e["start"], "start"), e["id"]))
        elif query.order_by == "updated":
            matches.sort(key=lambda e: (e["updated"], e["id"]))
        else:
            matches.sort(key=lambda e: (e["created"], e["id"]))
        offset = page_offset(query.page_token)
        page = matches[offset : offset + query.max_results]
        following = offset + query.max_results
        token = page_token(following) if following < len(matches) else None
        return calendar, copy.deepcopy(page), token

    def add_event(
        self,
        calendar_id: str,
        start: datetime,
        end: datetime,
        summary: str = "Staff meeting",
        *,
        transparency: str = "opaque",
    ) -> dict[str, Any]:
        """An event made outside the integration (by staff in Google Calendar), for tests and demos."""
        zone = self.calendar(calendar_id).time_zone
        body = {
            "summary": summary,
            "start": {"dateTime": start.astimezone(zone_info(zone)).isoformat(), "timeZone": zone},
            "end": {"dateTime": end.astimezone(zone_info(zone)).isoformat(), "timeZone": zone},
            "transparency": transparency,
        }
        return self.insert(calendar_id, body, send_updates="none", conference_version=0)

    # -- helpers ---------------------------------------------------------------------------------

    def _etag(self) -> str:
        return f'"{secrets.randbelow(10**16):016d}"'

    def _add_conference(self, event: dict[str, Any], body: dict[str, Any], version: int) -> None:
        request = (body.get("conferenceData") or {}).get("createRequest")
        if version < 1 or not isinstance(request, dict):
            return  # Google ignores conferenceData unless conferenceDataVersion=1.
        code = "-".join("".join(secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(n)) for n in (3, 4, 3))
        link = f"https://meet.google.com/{code}"
        event["hangoutLink"] = link
        event["conferenceData"] = {
            "createRequest": {**request, "status": {"statusCode": "success"}},
            "entryPoints": [{"entryPointType": "video", "uri": link, "label": link.removeprefix("https://")}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "conferenceId": code,
        }

    def _notify(self, event: dict[str, Any], action: str, send_updates: str | None) -> None:
        recipients = [a["email"] for a in event.get("attendees") or [] if not a.get("self") and a.get("email")]
        if (send_updates or "none") == "none" or not recipients:
            return
        self.notifications.append(
            {"event_id": event["id"], "action": action, "to": recipients, "sendUpdates": send_updates}
        )
