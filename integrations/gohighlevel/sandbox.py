"""The GoHighLevel emulator: LeadConnector API v2 contacts, notes, calendar slots and appointments, and OAuth.

Mounted under `/sandbox/gohighlevel`, so `{base_url}/contacts/upsert` is served where the
connector sends it. Paths, bodies and statuses follow GoHighLevel's published OpenAPI files
(`tests/specs/gohighlevel/`): https://marketplace.gohighlevel.com/docs/

- `POST /oauth/token` (form; `grant_type=refresh_token`, `user_type=Location`)
- `POST /contacts/search`, `POST /contacts/upsert`, `POST /contacts/`, `GET|PUT /contacts/{contactId}`
- `GET|POST /contacts/{contactId}/notes`, `GET /contacts/{contactId}/appointments`
- `GET /calendars/{calendarId}`, `GET /calendars/{calendarId}/free-slots`, `GET /calendars/events`
- `POST /calendars/events/appointments`, `GET|PUT /calendars/events/appointments/{eventId}`

Every request needs `Authorization: Bearer <location token or Private Integration token>` (401 in
GoHighLevel's shape otherwise) and a `Version` header (`2021-07-28` for contacts, `2021-04-15` for
calendars; the official SDK always sends `v3`, also accepted). A `locationId` other than the
sandbox location's answers 403. Errors are NestJS-style `{statusCode, message[, error]}`.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.common.zones import UnknownZoneError, canonical_zone_name
from integrations.gohighlevel import sandbox_search
from integrations.gohighlevel.sandbox_state import (
    CALENDAR_ID,
    LOCATION_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PRIVATE_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    ZONE,
    GhlError,
    GoHighLevelState,
)

__all__ = [
    "CALENDAR_ID",
    "LOCATION_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "build_sandbox",
    "ghl_error",
]

Handler = Callable[[Request], Awaitable[Response]]
VERSIONS = frozenset({"2021-07-28", "2021-04-15", "v3"})
_STATUS_TEXT = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def trace_id() -> str:
    return str(uuid.uuid4())


def ghl_error(status: int, retry_after: float | None) -> Response:
    """An injected fault in GoHighLevel's shape. The 429 body is UNCONFIRMED (NestJS throttler text);
    the X-RateLimit-* headers are DOC (marketplace.gohighlevel.com/docs/other/rate-limits)."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1.0
        return JSONResponse(
            {"statusCode": 429, "message": "Too Many Requests", "error": "Too Many Requests"},
            status_code=429,
            headers={
                "Retry-After": str(math.ceil(wait)),
                "X-RateLimit-Limit-Daily": "200000",
                "X-RateLimit-Daily-Remaining": "199000",
                "X-RateLimit-Interval-Milliseconds": "10000",
                "X-RateLimit-Max": "100",
                "X-RateLimit-Remaining": "0",
            },
        )
    text = _STATUS_TEXT.get(status, "Internal Server Error")
    return JSONResponse({"statusCode": status, "message": text, "error": text}, status_code=status)


def _answer(error: GhlError) -> Response:
    return JSONResponse(error.body, status_code=error.status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise GhlError(400, "Unexpected token in JSON", error="Bad Request") from None
    if not isinstance(body, dict):
        raise GhlError(400, "Request body must be a JSON object", error="Bad Request")
    return body


def _own_location(location_id: object) -> None:
    if location_id != LOCATION_ID:
        # MEM: GoHighLevel's wording for a token of another sub-account.
        raise GhlError(403, "The token does not have access to this location.", error="Forbidden")


def _millis(request: Request, name: str) -> float:
    raw = request.query_params.get(name)
    try:
        return float(raw) if raw is not None else math.nan
    except ValueError:
        return math.nan


class _GhlApi:
    """The HTTP face of `GoHighLevelState`."""

    def __init__(self, state: GoHighLevelState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str) -> Route:
            return Route(path, self._guarded(handler), methods=[method])

        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            route("/contacts/search", self.search, "POST"),
            route("/contacts/upsert", self.upsert, "POST"),
            route("/contacts/", self.create, "POST"),
            route("/contacts/{contactId}", self.get_contact, "GET"),
            route("/contacts/{contactId}", self.update_contact, "PUT"),
            route("/contacts/{contactId}/notes", self.list_notes, "GET"),
            route("/contacts/{contactId}/notes", self.create_note, "POST"),
            route("/contacts/{contactId}/appointments", self.contact_appointments, "GET"),
            route("/calendars/events/appointments", self.create_appointment, "POST"),
            route("/calendars/events/appointments/{eventId}", self.get_appointment, "GET"),
            route("/calendars/events/appointments/{eventId}", self.edit_appointment, "PUT"),
            route("/calendars/events", self.list_events, "GET"),
            route("/calendars/{calendarId}/free-slots", self.free_slots, "GET"),
            route("/calendars/{calendarId}", self.get_calendar, "GET"),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if not token or not self.state.authorized(token):
                return _answer(GhlError(401, "Invalid token: access token is invalid", error="Unauthorized"))
            if request.headers.get("version") not in VERSIONS:
                # MEM: GoHighLevel's wording when the Version header is missing or unknown.
                return _answer(GhlError(400, "version header was not found", error="Bad Request"))
            try:
                return await handler(request)
            except GhlError as error:
                return _answer(error)

        return guarded

    # -- OAuth ---------------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            return JSONResponse(self.state.refresh(form))
        except GhlError as error:
            # UNCONFIRMED: GoHighLevel's body for a refused grant; the OAuth error code is kept in `error`.
            body = {**error.body, "error_description": str(error.message)}
            return JSONResponse(body, status_code=error.status)

    # -- contacts -------------------------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        body = await _json(request)
        page, limit, filters, query = sandbox_search.validate(body)
        _own_location(body["locationId"])
        found = [
            c
            for c in self.state.contacts.values()
            if c.get("locationId") == body["locationId"] and sandbox_search.matches(c, filters, query)
        ]
        found.sort(key=lambda c: (c["dateAdded"], c["id"]), reverse=True)
        shown = found[(page - 1) * limit : page * limit]
        return JSONResponse(
            {"contacts": [sandbox_search.search_item(c) for c in shown], "total": len(found), "traceId": trace_id()}
        )

    async def upsert(self, request: Request) -> Response:
        body = await _json(request)
        _own_location(body.get("locationId"))
        contact, new = self.state.upsert_contact(body)
        return JSONResponse({"new": new, "contact": contact, "traceId": trace_id()})

    async def create(self, request: Request) -> Response:
        body = await _json(request)
        _own_location(body.get("locationId"))
        return JSONResponse({"contact": self.state.create_contact(body)}, status_code=201)

    async def get_contact(self, request: Request) -> Response:
        return JSONResponse({"contact": self.state.contact(request.path_params["contactId"])})

    async def update_contact(self, request: Request) -> Response:
        body = await _json(request)
        contact = self.state.update_contact(request.path_params["contactId"], body)
        return JSONResponse({"succeded": True, "contact": contact})

    async def list_notes(self, request: Request) -> Response:
        return JSONResponse({"notes": self.state.notes_of(request.path_params["contactId"])})

    async def create_note(self, request: Request) -> Response:
        body = await _json(request)
        return JSONResponse({"note": self.state.add_note(request.path_params["contactId"], body)}, status_code=201)

    async def contact_appointments(self, request: Request) -> Response:
        events = self.state.appointments_of(request.path_params["contactId"])
        return JSONResponse({"events": [self.state.contact_event_view(e) for e in events]})

    # -- calendars -------------------------------------------------------------------------------------

    async def get_calendar(self, request: Request) -> Response:
        return JSONResponse({"calendar": self.state.calendar(request.path_params["calendarId"])})

    async def free_slots(self, request: Request) -> Response:
        start, end = _millis(request, "startDate"), _millis(request, "endDate")
        if math.isnan(start) or math.isnan(end):
            raise GhlError(
                422, ["startDate must be a number", "endDate must be a number"], error="Unprocessable Entity"
            )
        try:
            zone = canonical_zone_name(request.query_params.get("timezone") or ZONE)
        except UnknownZoneError:
            raise GhlError(400, "Invalid timezone", error="Bad Request") from None
        days: dict[str, Any] = dict(self.state.free_slots(request.path_params["calendarId"], start, end, zone))
        days["traceId"] = trace_id()
        return JSONResponse(days)

    async def list_events(self, request: Request) -> Response:
        _own_location(request.query_params.get("locationId"))
        calendar_id = request.query_params.get("calendarId")
        if not calendar_id:
            raise GhlError(400, "Either of calendarId, userId or groupId is required", error="Bad Request")
        start, end = _millis(request, "startTime"), _millis(request, "endTime")
        if math.isnan(start) or math.isnan(end):
            raise GhlError(
                422,
                ["startTime must be a number string", "endTime must be a number string"],
                error="Unprocessable Entity",
            )
        events = self.state.events_between(calendar_id, start, end)
        return JSONResponse({"events": [self.state.event_view(e) for e in events], "traceId": trace_id()})

    async def create_appointment(self, request: Request) -> Response:
        body = await _json(request)
        _own_location(body.get("locationId"))
        event = self.state.create_appointment(body)
        return JSONResponse(self.state.appointment_view(event))

    async def get_appointment(self, request: Request) -> Response:
        event = self.state.event(request.path_params["eventId"])
        return JSONResponse({"event": self.state.event_view(event)})

    async def edit_appointment(self, request: Request) -> Response:
        body = await _json(request)
        event = self.state.edit_appointment(request.path_params["eventId"], body)
        return JSONResponse(self.state.appointment_view(event))


def build_sandbox() -> Sandbox:
    """A fresh GoHighLevel emulator (one location, one calendar, no contacts)."""
    state = GoHighLevelState()
    return Sandbox(
        name="gohighlevel",
        state=state,
        routes=_GhlApi(state).routes(),
        error=ghl_error,
        exempt_paths=("/oauth/",),
    )
