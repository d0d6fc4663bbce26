"""The Calendly emulator's in-memory state: one user, one event type, its bookings and OAuth tokens.

It follows the API v2 semantics the integration relies on: available times computed from the
event type's weekly availability minus the user's active events; `POST /invitees` booking a
scheduled event with one invitee (no idempotency key: a repeated POST books again when the slot
is free, and is refused when it is not); cancellation that keeps the canceled event and its
`cancellation`; single-use refresh tokens that rotate on every refresh
(https://developer.calendly.com/refresh-token-rotation-guide).

"Now" is only known when the emulator is given a clock (`CalendlyState(clock=…)`): Calendly refuses
times in the past and honours a minimum scheduling notice, but a server under test may run on a
pinned clock the emulator cannot see, so without a clock every time is treated as the future.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.calendly.sandbox_wire import API, ApiError, parse_time, stamp
from integrations.common.zones import UnknownZoneError, zone_info

__all__ = [
    "EVENT_TYPE_URI",
    "NOTES_QUESTION",
    "ORGANIZATION_URI",
    "PHONE_QUESTION",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PERSONAL_ACCESS_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "SNAPSHOT_VERSION",
    "USER_URI",
    "CalendlyState",
    "EventQuery",
]

SANDBOX_CLIENT_ID = "sandbox-calendly-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-calendly-client-secret"
# The seeded grant's refresh token. Unlike the tokens a refresh hands out (single-use, as Calendly's
# are), it stays valid until revoked, so every sandbox connection of a demo can start from it.
SANDBOX_REFRESH_TOKEN = "sandbox-calendly-refresh-token"
SANDBOX_PERSONAL_ACCESS_TOKEN = "sandbox-calendly-personal-access-token"

USER_UUID = "5b8f2a54-0d3c-4a7e-9b0f-3f1c2d4e5a61"
ORGANIZATION_UUID = "9c1d7e22-61a4-4f0b-8e3d-2a7b5c9d0e14"
EVENT_TYPE_UUID = "e2a4c6d8-1b3d-4f5a-9c7e-0a2b4c6d8e0f"
USER_URI = f"{API}/users/{USER_UUID}"
ORGANIZATION_URI = f"{API}/organizations/{ORGANIZATION_UUID}"
EVENT_TYPE_URI = f"{API}/event_types/{EVENT_TYPE_UUID}"
ZONE = "America/New_York"
NOTES_QUESTION = "Please share anything that will help prepare for our meeting."
PHONE_QUESTION = "Phone number"

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1
# Access tokens live two hours (https://developer.calendly.com/how-to-access-calendly-data-on-behalf-of-authenticated-users).
ACCESS_TOKEN_SECONDS = 7200

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _seeded_event_type() -> dict[str, Any]:
    created = "2025-01-06T15:00:00.000000Z"
    return {
        "uri": EVENT_TYPE_URI,
        "name": "30 Minute Appointment",
        "active": True,
        "booking_method": "instant",
        "slug": "30min",
        "scheduling_url": "https://calendly.com/sandbox-dental/30min",
        "duration": 30,
        "kind": "solo",
        "pooling_type": None,
        "type": "StandardEventType",
        "color": "#0069ff",
        "created_at": created,
        "updated_at": created,
        "internal_note": None,
        "description_plain": "A 30-minute appointment at Sandbox Dental.",
        "description_html": "<p>A 30-minute appointment at Sandbox Dental.</p>",
        "profile": {"type": "User", "name": "Sandbox Dental", "owner": USER_URI},
        "secret": False,
        "deleted_at": None,
        "admin_managed": False,
        "kind_description": "One-on-One",
        "custom_questions": [
            {
                "name": NOTES_QUESTION,
                "type": "text",
                "position": 0,
                "enabled": True,
                "required": False,
                "answer_choices": [],
                "include_other": False,
            },
            {
                "name": PHONE_QUESTION,
                "type": "phone_number",
                "position": 1,
                "enabled": True,
                "required": False,
                "answer_choices": [],
                "include_other": False,
            },
        ],
    }


def _seeded_user() -> dict[str, Any]:
    return {
        "uri": USER_URI,
        "name": "Sandbox Dental",
        "slug": "sandbox-dental",
        "email": "frontdesk@sandbox-dental.example.com",
        "scheduling_url": "https://calendly.com/sandbox-dental",
        "timezone": ZONE,
        "avatar_url": None,
        "created_at": "2025-01-06T15:00:00.000000Z",
        "updated_at": "2025-01-06T15:00:00.000000Z",
        "current_organization": ORGANIZATION_URI,
    }


@dataclass(frozen=True)
class Availability:
    """The event type's schedule: weekly hours in a zone, a start-time increment, notice and horizon."""

    zone: str = ZONE
    weekly: tuple[tuple[str, str, str], ...] = tuple((day, "09:00", "17:00") for day in _WEEKDAYS[:5])
    increment_minutes: int = 30
    # Calendly's minimum scheduling notice and "invitees can schedule N days into the future";
    # both need a clock, so they apply only when the emulator has one.
    notice_minutes: int = 240
    horizon_days: int = 60


@dataclass(frozen=True)
class EventQuery:
    """The `GET /scheduled_events` filters the emulator honours."""

    user: str | None = None
    organization: str | None = None
    invitee_email: str | None = None
    status: str | None = None
    min_start_time: datetime | None = None
    max_start_time: datetime | None = None
    descending: bool = False


class _Snapshot(BaseModel):
    """The state as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    events: dict[str, dict[str, Any]]
    invitees: dict[str, list[dict[str, Any]]]
    scheduling_links: list[dict[str, Any]]
    access_tokens: dict[str, str]
    refresh_tokens: list[str]
    seeded_grant_valid: bool
    personal_access_tokens: list[str]
    tokens_issued: int
    booking_enabled: bool
    busy: list[list[str]]


class CalendlyState:
    """Everything the emulator remembers; `reset()` returns it to the seeded account, no bookings."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock
        self.availability = Availability()
        self.user = _seeded_user()
        self.event_types: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.invitees: dict[str, list[dict[str, Any]]] = {}
        self.scheduling_links: list[dict[str, Any]] = []
        # access token -> expiry (Calendly timestamp); refresh tokens are single-use.
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: set[str] = set()
        self.seeded_grant_valid = True
        self.personal_access_tokens: set[str] = set()
        self.tokens_issued = 0
        # False: the account's plan cannot use the Scheduling API, so POST /invitees answers 403.
        self.booking_enabled = True
        # Busy time from calendars connected to Calendly (staff's own meetings), as UTC stamps.
        self.busy: list[tuple[str, str]] = []
        self.reset()

    # -- SandboxState -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.event_types = {EVENT_TYPE_URI: _seeded_event_type()}
        self.events = {}
        self.invitees = {}
        self.scheduling_links = []
        self.access_tokens = {}
        self.refresh_tokens = set()
        self.seeded_grant_valid = True
        self.personal_access_tokens = {SANDBOX_PERSONAL_ACCESS_TOKEN}
        self.tokens_issued = 0
        self.booking_enabled = True
        self.busy = []

    def dump(self) -> dict[str, Any]:
        events = sorted(self.events.values(), key=lambda e: (e["start_time"], e["uri"]))
        return {
            "events": [{**e, "invitees": self.invitees.get(_uuid(e["uri"]), [])} for e in events],
            "scheduling_links": self.scheduling_links,
            "busy": [{"start_time": s, "end_time": e} for s, e in self.busy],
            "booking_enabled": self.booking_enabled,
            "tokens": {
                "issued": self.tokens_issued,
                "refresh_token_valid": self.seeded_grant_valid or bool(self.refresh_tokens),
            },
        }

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()
        self.seeded_grant_valid = False

    def revoke_personal_access_tokens(self) -> None:
        """What a user does on Calendly's Integrations page: every personal access token stops working."""
        self.personal_access_tokens.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "events": copy.deepcopy(self.events),
            "invitees": copy.deepcopy(self.invitees),
            "scheduling_links": copy.deepcopy(self.scheduling_links),
            "access_tokens": dict(self.access_tokens),
            "refresh_tokens": sorted(self.refresh_tokens),
            "seeded_grant_valid": self.seeded_grant_valid,
            "personal_access_tokens": sorted(self.personal_access_tokens),
            "tokens_issued": self.tokens_issued,
            "booking_enabled": self.booking_enabled,
            "busy": [[s, e] for s, e in self.busy],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        if not isinstance(snapshot, dict):
            raise TypeError(f"a snapshot is a dict, not {type(snapshot).__name__}")
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(snapshot)
        for event_uuid, event in saved.events.items():
            if event.get("uri") != f"{API}/scheduled_events/{event_uuid}" or "start_time" not in event:
                raise ValueError(f"event {event_uuid!r} is not one this emulator wrote")
        if any(len(pair) != 2 for pair in saved.busy):
            raise ValueError("busy intervals are [start, end] pairs")
        self.reset()
        self.events = copy.deepcopy(saved.events)
        self.invitees = copy.deepcopy(saved.invitees)
        self.scheduling_links = copy.deepcopy(saved.scheduling_links)
        self.access_tokens = dict(saved.access_tokens)
        self.refresh_tokens = set(saved.refresh_tokens)
        self.seeded_grant_valid = saved.seeded_grant_valid
        self.personal_access_tokens = set(saved.personal_access_tokens)
        self.tokens_issued = saved.tokens_issued
        self.booking_enabled = saved.booking_enabled
        self.busy = [(s, e) for s, e in saved.busy]

    # -- OAuth ---------------------------------------------------------------------------------------

    def refresh(self, refresh_token: str) -> tuple[str, str] | None:
        """A new access and refresh token for a valid refresh token (which is then used up), else None."""
        if refresh_token in self.refresh_tokens:
            self.refresh_tokens.discard(refresh_token)
        elif not (refresh_token == SANDBOX_REFRESH_TOKEN and self.seeded_grant_valid):
            return None
        self.tokens_issued += 1
        access = f"sandbox-calendly-access-{secrets.token_urlsafe(24)}"
        rotated = f"sandbox-calendly-refresh-{secrets.token_urlsafe(24)}"
        self.access_tokens[access] = stamp(datetime.now(UTC) + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        self.refresh_tokens.add(rotated)
        return access, rotated

    def authenticates(self, token: str) -> str | None:
        """None when the bearer token is good, else Calendly's reason."""
        if token in self.personal_access_tokens:
            return None
        expiry = self.access_tokens.get(token)
        if expiry is None:
            return "The access token is invalid"
        if parse_time(expiry, "expiry") <= datetime.now(UTC):
            return "The access token expired"
        return None

    # -- event types and availability -----------------------------------------------------------------

    def event_type(self, uri: str) -> dict[str, Any]:
        found = self.event_types.get(uri)
        if found is None:
            raise ApiError(404)
        return found

    def available_times(self, event_type_uri: str | None, start: datetime, end: datetime) -> list[datetime]:
        """Every start of the event type in [start, end) that the schedule offers and nothing occupies."""
        if not event_type_uri:
            raise ApiError(400, details=[{"parameter": "event_type", "message": "is required"}])
        event_type = self.event_type(event_type_uri)
        if end <= start:
            raise ApiError(400, details=[{"parameter": "end_time", "message": "must be after start_time"}])
        if end - start > timedelta(days=31):
            raise ApiError(
                400, details=[{"parameter": "end_time", "message": "date range can be no greater than 31 days"}]
            )
        now = self.clock().astimezone(UTC) if self.clock else None
        if now is not None and start < now:
            raise ApiError(400, details=[{"parameter": "start_time", "message": "must be in the future"}])
        if not event_type["active"]:
            return []
        duration = timedelta(minutes=int(event_type["duration"]))
        earliest, latest = start, end
        if now is not None:
            earliest = max(earliest, now + timedelta(minutes=self.availability.notice_minutes))
            latest = min(latest, now + timedelta(days=self.availability.horizon_days))
        occupied = self._occupied()
        return [
            slot
            for slot in self._grid(earliest, latest, duration)
            if not any(slot < busy_end and busy_start < slot + duration for busy_start, busy_end in occupied)
        ]

    def _grid(self, start: datetime, end: datetime, duration: timedelta) -> list[datetime]:
        zone = zone_info(self.availability.zone)
        step = timedelta(minutes=self.availability.increment_minutes)
        starts: list[datetime] = []
        day: date = start.astimezone(zone).date() - timedelta(days=1)
        while day <= end.astimezone(zone).date():
            for weekday, opens, closes in self.availability.weekly:
                if weekday != _WEEKDAYS[day.weekday()]:
                    continue
                cursor = datetime.combine(day, time.fromisoformat(opens), tzinfo=zone).astimezone(UTC)
                closing = datetime.combine(day, time.fromisoformat(closes), tzinfo=zone).astimezone(UTC)
                while cursor + duration <= closing:
                    if start <= cursor < end:
                        starts.append(cursor)
                    cursor += step
            day += timedelta(days=1)
        return sorted(starts)

    def _occupied(self) -> list[tuple[datetime, datetime]]:
        booked = [
            (parse_time(e["start_time"], "start_time"), parse_time(e["end_time"], "end_time"))
            for e in self.events.values()
            if e["status"] == "active"
        ]
        return booked + [(parse_time(s, "start"), parse_time(e, "end")) for s, e in self.busy]

    def add_busy(self, start: datetime, end: datetime) -> None:
        """Busy time on a calendar connected to Calendly (staff's own meeting), for tests and demos."""
        self.busy.append((stamp(start), stamp(end)))

    # -- booking ------------------------------------------------------------------------------------------

    def book(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /invitees`: the invitee of a new scheduled event, or Calendly's 400/403/404."""
        if not self.booking_enabled:
            raise ApiError(
                403, "This account's plan does not include the Scheduling API. Upgrade to a paid plan to book invitees."
            )
        missing = [name for name in ("event_type", "start_time", "invitee") if not body.get(name)]
        if missing:
            raise ApiError(400, details=[{"parameter": name, "message": "is required"} for name in missing])
        event_type = self.event_type(str(body["event_type"]))
        start = parse_time(str(body["start_time"]), "start_time")
        invitee = _check_invitee(body["invitee"])
        answers = _check_answers(body.get("questions_and_answers") or [], event_type["custom_questions"])
        offered = self.available_times(event_type["uri"], start, start + timedelta(seconds=1))
        if start not in offered:
            raise ApiError(400, details=[{"parameter": "start_time", "message": "The selected time is not available."}])
        now = stamp(datetime.now(UTC))
        event_uuid, invitee_uuid = str(uuid.uuid4()), str(uuid.uuid4())
        event_uri = f"{API}/scheduled_events/{event_uuid}"
        tracking = {key: None for key in ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term")}
        tracking["salesforce_uuid"] = None
        tracking.update({k: v for k, v in (body.get("tracking") or {}).items() if k in tracking})
        event = {
            "uri": event_uri,
            "name": event_type["name"],
            "meeting_notes_plain": None,
            "meeting_notes_html": None,
            "status": "active",
            "start_time": stamp(start),
            "end_time": stamp(start + timedelta(minutes=int(event_type["duration"]))),
            "event_type": event_type["uri"],
            "location": {"type": "physical", "location": "Sandbox Dental, 1 Main Street"},
            "invitees_counter": {"total": 1, "active": 1, "limit": 1},
            "created_at": now,
            "updated_at": now,
            "event_memberships": [{"user": USER_URI, "user_email": self.user["email"], "user_name": self.user["name"]}],
            "event_guests": [],
            "calendar_event": None,
        }
        record = {
            "uri": f"{event_uri}/invitees/{invitee_uuid}",
            "email": invitee["email"],
            "first_name": invitee.get("first_name"),
            "last_name": invitee.get("last_name"),
            "name": invitee.get("name")
            or " ".join(filter(None, (invitee.get("first_name"), invitee.get("last_name")))),
            "status": "active",
            "questions_and_answers": answers,
            "timezone": invitee["timezone"],
            "event": event_uri,
            "created_at": now,
            "updated_at": now,
            "tracking": tracking,
            "text_reminder_number": invitee.get("text_reminder_number"),
            "rescheduled": False,
            "old_invitee": None,
            "new_invitee": None,
            "cancel_url": f"https://calendly.com/cancellations/{invitee_uuid}",
            "reschedule_url": f"https://calendly.com/reschedulings/{invitee_uuid}",
            "routing_form_submission": None,
            "payment": None,
            "no_show": None,
            "reconfirmation": None,
            "scheduling_method": "instant_book",
            "invitee_scheduled_by": None,
        }
        self.events[event_uuid] = event
        self.invitees[event_uuid] = [record]
        return copy.deepcopy(record)

    def event(self, event_uuid: str) -> dict[str, Any]:
        found = self.events.get(event_uuid)
        if found is None:
            raise ApiError(404)
        return copy.deepcopy(found)

    def event_invitees(self, event_uuid: str, *, email: str | None, status: str | None) -> list[dict[str, Any]]:
        self.event(event_uuid)
        found = [
            i
            for i in self.invitees.get(event_uuid, [])
            if (email is None or i["email"] == email.lower()) and (status is None or i["status"] == status)
        ]
        return copy.deepcopy(sorted(found, key=lambda i: (i["created_at"], i["uri"])))

    def list_events(self, query: EventQuery) -> list[dict[str, Any]]:
        if not query.user and not query.organization:
            raise ApiError(400, details=[{"parameter": "user", "message": "user or organization is required"}])
        if query.user and query.user != USER_URI:
            raise ApiError(403)
        if query.organization and query.organization != ORGANIZATION_URI:
            raise ApiError(403)
        matches = []
        for event_uuid, event in self.events.items():
            start = parse_time(event["start_time"], "start_time")
            if query.status and event["status"] != query.status:
                continue
            if query.min_start_time and start < query.min_start_time:
                continue
            if query.max_start_time and start >= query.max_start_time:
                continue
            emails = {i["email"] for i in self.invitees.get(event_uuid, [])}
            if query.invitee_email and query.invitee_email.lower() not in emails:
                continue
            matches.append(event)
        matches.sort(key=lambda e: (e["start_time"], e["uri"]), reverse=query.descending)
        return copy.deepcopy(matches)

    def cancel(self, event_uuid: str, reason: str | None) -> dict[str, Any]:
        event = self.events.get(event_uuid)
        if event is None:
            raise ApiError(404)
        if event["status"] == "canceled":
            raise ApiError(403, "Event is already canceled")
        cancellation = {"canceled_by": self.user["name"], "reason": reason, "canceler_type": "host"}
        now = stamp(datetime.now(UTC))
        event.update({"status": "canceled", "cancellation": cancellation, "updated_at": now})
        event["invitees_counter"]["active"] = 0
        for invitee in self.invitees.get(event_uuid, []):
            invitee.update({"status": "canceled", "cancellation": cancellation, "updated_at": now})
        return dict(cancellation)

    def scheduling_link(self, body: dict[str, Any]) -> dict[str, Any]:
        problems = [
            {"parameter": name, "message": "is required"}
            for name in ("max_event_count", "owner", "owner_type")
            if body.get(name) in (None, "")
        ]
        if problems:
            raise ApiError(400, details=problems)
        if body["owner_type"] != "EventType" or body["max_event_count"] != 1:
            raise ApiError(
                400, details=[{"parameter": "owner_type", "message": "must be EventType with max_event_count 1"}]
            )
        event_type = self.event_type(str(body["owner"]))
        code = "-".join(secrets.token_hex(2) for _ in range(2))
        link = {
            "booking_url": f"https://calendly.com/d/{code}/{event_type['slug']}",
            "owner": event_type["uri"],
            "owner_type": "EventType",
        }
        self.scheduling_links.append(link)
        return dict(link)


def _uuid(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _check_invitee(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, details=[{"parameter": "invitee", "message": "must be an object"}])
    problems = [
        {"parameter": f"invitee.{n}", "message": "is required"} for n in ("email", "timezone") if not value.get(n)
    ]
    if not value.get("name") and not value.get("first_name"):
        problems.append({"parameter": "invitee.name", "message": "name or first_name is required"})
    email = str(value.get("email") or "")
    local, _, domain = email.partition("@")
    if email and (not local or "." not in domain or " " in email):
        problems.append({"parameter": "invitee.email", "message": "is invalid"})
    if value.get("timezone"):
        try:
            zone_info(str(value["timezone"]))
        except UnknownZoneError:
            problems.append({"parameter": "invitee.timezone", "message": "is invalid"})
    number = value.get("text_reminder_number")
    if number is not None and not _phone_like(str(number)):
        problems.append({"parameter": "invitee.text_reminder_number", "message": "is invalid"})
    if problems:
        raise ApiError(400, details=problems)
    return {**value, "email": email.lower()}


def _check_answers(answers: Any, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers must name an enabled question of the event type, at that question's position."""
    if not isinstance(answers, list):
        raise ApiError(400, details=[{"parameter": "questions_and_answers", "message": "must be an array"}])
    enabled = {q["name"]: q for q in questions if q.get("enabled")}
    checked: list[dict[str, Any]] = []
    for index, answer in enumerate(answers):
        where = f"questions_and_answers[{index}]"
        if not isinstance(answer, dict) or not {"question", "answer", "position"} <= set(answer):
            raise ApiError(400, details=[{"parameter": where, "message": "question, answer and position are required"}])
        question = enabled.get(str(answer["question"]))
        if question is None or question["position"] != answer["position"]:
            raise ApiError(
                400, details=[{"parameter": where, "message": "does not match a question of the event type"}]
            )
        if question["type"] == "phone_number" and not _phone_like(str(answer["answer"])):
            raise ApiError(400, details=[{"parameter": where, "message": "is not a valid phone number"}])
        checked.append(
            {"question": question["name"], "answer": str(answer["answer"]), "position": question["position"]}
        )
    answered = {a["question"] for a in checked}
    missing = [q["name"] for q in enabled.values() if q.get("required") and q["name"] not in answered]
    if missing:
        raise ApiError(
            400, details=[{"parameter": "questions_and_answers", "message": f"{m} is required"} for m in missing]
        )
    return checked


def _phone_like(text: str) -> bool:
    digits = [c for c in text if c.isdigit()]
    return text.startswith("+") and 8 <= len(digits) <= 15 and set(text) <= set("+0123456789 -().")
