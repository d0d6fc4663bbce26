"""The Outlook emulator: Microsoft Graph v1.0 calendar paths and the identity platform's token endpoint, offline.

Served under the mount point (`/sandbox/outlook_calendar`) at Microsoft's real paths, so a client
pointed at `{mount}` for Graph and for login works unchanged:

- `POST /{tenant}/oauth2/v2.0/token`: refresh-token grant
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token)
- `GET /v1.0/me/calendar`, `POST /v1.0/me/calendar/getSchedule`
- `GET /v1.0/me/calendarView` and `/v1.0/me/calendar/calendarView` (with `$top` and `@odata.nextLink`)
- `GET|POST /v1.0/me/events`, `GET|PATCH|DELETE /v1.0/me/events/{id}`, `POST /v1.0/me/events/{id}/cancel`
- the same under `/v1.0/users/{id | userPrincipalName}/…`

Errors use Graph's JSON error shape: https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.outlook_calendar.sandbox_state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TENANT,
    Mailbox,
    OutlookState,
)
from integrations.outlook_calendar.sandbox_wire import (
    GraphError,
    answer_zone,
    expanded_ids,
    graph_error,
    parse_event_time,
    parse_property_filter,
    parse_query_instant,
    render_time,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_TENANT",
    "OutlookState",
    "build_sandbox",
]

_GRAPH_RESOURCE_APP = "00000003-0000-0000-c000-000000000000"
_DEFAULT_TOP = 10
_NOT_ORGANIZER = "Your request can't be completed. You need to be an organizer to cancel a meeting."
_MAX_TOP = 1000
# getSchedule refuses longer windows (Graph: at most 62 days per request).
_SCHEDULE_LONGEST = timedelta(days=62)
_STATUS_DIGIT = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4", "unknown": "2"}

Handler = Callable[[Request, Mailbox], Awaitable[Response]]


def _fault_error(status: int, retry_after: float | None) -> Response:
    """An injected fault in Graph's own words: 429 `ApplicationThrottled` with Retry-After, 5xx otherwise."""
    if status == 429:
        seconds = retry_after if retry_after is not None else 1.0
        header = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        return graph_error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            headers={"Retry-After": header, "x-ms-throttle-limit-percentage": "1.0"},
        )
    if status == 503:
        return graph_error(503, "ServiceNotAvailable", "The service is temporarily unavailable.")
    if status == 504:
        return graph_error(504, "GatewayTimeout", "The gateway timed out.")
    return graph_error(status, "UnknownError", "")


class _GraphApi:
    """The HTTP face of `OutlookState`: parameters in, Graph's JSON out."""

    def __init__(self, state: OutlookState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        routes = [Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"])]
        for owner in ("/v1.0/me", "/v1.0/users/{user}"):
            routes += [
                Route(f"{owner}/calendar", self._authed(self.get_calendar), methods=["GET"]),
                Route(f"{owner}/calendar/getSchedule", self._authed(self.get_schedule), methods=["POST"]),
                Route(f"{owner}/calendarView", self._authed(self.calendar_view), methods=["GET"]),
                Route(f"{owner}/calendar/calendarView", self._authed(self.calendar_view), methods=["GET"]),
                Route(f"{owner}/events", self._authed(self.list_events), methods=["GET"]),
                Route(f"{owner}/events", self._authed(self.create_event), methods=["POST"]),
                Route(f"{owner}/events/{{event_id}}", self._authed(self.get_event), methods=["GET"]),
                Route(f"{owner}/events/{{event_id}}", self._authed(self.update_event), methods=["PATCH"]),
                Route(f"{owner}/events/{{event_id}}", self._authed(self.delete_event), methods=["DELETE"]),
                Route(f"{owner}/events/{{event_id}}/cancel", self._authed(self.cancel_event), methods=["POST"]),
            ]
        return routes

    # -- identity platform token endpoint ----------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type", "")
        if grant != "refresh_token":
            return _oauth_error(
                400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
            )
        if not form.get("client_id"):
            return _oauth_error(400, "invalid_request", 900144, "The request body must contain 'client_id'.")
        if form["client_id"] != SANDBOX_CLIENT_ID:
            return _oauth_error(
                400, "unauthorized_client", 700016, f"Application with identifier '{form['client_id']}' was not found."
            )
        if form.get("client_secret") != SANDBOX_CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if not form.get("scope"):
            return _oauth_error(400, "invalid_request", 90014, "The request body must contain 'scope'.")
        if form.get("refresh_token") not in self.state.refresh_tokens:
            return _oauth_error(
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity or was revoked. The user must sign in again.",
            )
        access, refresh = self.state.issue_tokens()
        return JSONResponse(
            {
                "token_type": "Bearer",
                "scope": "https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/.default",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access,
                "refresh_token": refresh,
            }
        )

    # -- Graph -------------------------------------------------------------------------------------

    async def get_calendar(self, request: Request, box: Mailbox) -> Response:
        return JSONResponse({"@odata.context": _context(request, box, "calendar/$entity"), **box.calendar()})

    async def get_schedule(self, request: Request, box: Mailbox) -> Response:
        body = _parameters(await _json_body(request))
        schedules = body.get("schedules")
        if not isinstance(schedules, list) or not schedules:
            raise GraphError(400, "ErrorInvalidParameter", "The parameter 'Schedules' is missing or empty.")
        start = parse_event_time(body.get("starttime"), "StartTime")
        end = parse_event_time(body.get("endtime"), "EndTime")
        interval = body.get("availabilityviewinterval", 30)
        if not isinstance(interval, int) or not 5 <= interval <= 1440:
            raise GraphError(400, "ErrorInvalidParameter", "AvailabilityViewInterval must be between 5 and 1440.")
        if end <= start or end - start > _SCHEDULE_LONGEST:
            raise GraphError(400, "ErrorInvalidTimeInterval", "The time interval is invalid or too long (62 days).")
        zone_name, zone = answer_zone(request.headers.get("prefer"))
        value = [self._schedule(str(address), start, end, interval, zone_name, zone) for address in schedules]
        context = f"{_root(request)}/$metadata#Collection(microsoft.graph.scheduleInformation)"
        return JSONResponse({"@odata.context": context, "value": value}, headers=_applied(request, zone_name))

    def _schedule(
        self, address: str, start: datetime, end: datetime, interval: int, zone_name: str, zone: Any
    ) -> dict[str, Any]:
        try:
            target = self.state.mailbox(address)
        except GraphError:
            return {
                "scheduleId": address,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {
                    "message": "The SMTP address has no mailbox associated with it.",
                    "responseCode": "ErrorMailRecipientNotFound",
                },
            }
        items = self.state.busy_items(target, start, end)
        view = []
        step = timedelta(minutes=interval)
        cursor = start
        while cursor < end:
            statuses = [e["showAs"] for s, f, e in items if s < cursor + step and f > cursor]
            view.append(max((_STATUS_DIGIT[s] for s in statuses), default="0"))
            cursor += step
        return {
            "scheduleId": address,
            "availabilityView": "".join(view),
            "scheduleItems": [
                {
                    "isPrivate": False,
                    "status": e["showAs"],
                    "subject": e["subject"],
                    "location": (e.get("location") or {}).get("displayName", ""),
                    "start": render_time(s, zone_name, zone),
                    "end": render_time(f, zone_name, zone),
                }
                for s, f, e in items
            ],
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "09:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": target.time_zone},
            },
        }

    async def calendar_view(self, request: Request, box: Mailbox) -> Response:
        params = request.query_params
        start = parse_query_instant(params.get("startDateTime"), "startDateTime")
        end = parse_query_instant(params.get("endDateTime"), "endDateTime")
        if end < start:
            raise GraphError(400, "ErrorInvalidParameter", "The end time must be after the start time.")
        events = [e for _, _, e in self.state.busy_items(box, start, end)]
        return self._page(request, box, events, "calendarView")

    async def list_events(self, request: Request, box: Mailbox) -> Response:
        params = request.query_params
        events = self.state.live_events(box)
        if params.get("$filter"):
            wanted = parse_property_filter(params["$filter"])
            events = [e for e in events if wanted.matches(_properties(e))]
        order = (params.get("$orderby") or "").strip()
        if order not in ("", "start/dateTime", "start/dateTime asc", "start/dateTime desc"):
            raise GraphError(400, "BadRequest", f"Could not find a property named '{order[:40]}'.")
        events.sort(key=lambda e: (e["start"]["dateTime"], e["id"]), reverse=order.endswith("desc"))
        if not order:
            events.sort(key=lambda e: (e["createdDateTime"], e["id"]), reverse=True)
        return self._page(request, box, events, "events")

    async def create_event(self, request: Request, box: Mailbox) -> Response:
        event, _new = self.state.create(box, await _json_body(request))
        zone_name, zone = answer_zone(request.headers.get("prefer"))
        # A retried create with a known transactionId gets the event it made, as a 201 again.
        return JSONResponse(
            _render(request, box, event, zone_name, zone, frozenset(), "events/$entity"),
            status_code=201,
            headers=_applied(request, zone_name),
        )

    async def get_event(self, request: Request, box: Mailbox) -> Response:
        event = self.state.event(box, request.path_params["event_id"])
        zone_name, zone = answer_zone(request.headers.get("prefer"))
        wanted = expanded_ids(request.query_params.get("$expand"))
        return JSONResponse(
            _render(request, box, event, zone_name, zone, wanted, "events/$entity"),
            headers=_applied(request, zone_name),
        )

    async def update_event(self, request: Request, box: Mailbox) -> Response:
        event = self.state.update(box, request.path_params["event_id"], await _json_body(request))
        zone_name, zone = answer_zone(request.headers.get("prefer"))
        return JSONResponse(
            _render(request, box, event, zone_name, zone, frozenset(), "events/$entity"),
            headers=_applied(request, zone_name),
        )

    async def delete_event(self, request: Request, box: Mailbox) -> Response:
        self.state.remove(box, request.path_params["event_id"], "cancellation")
        return Response(status_code=204)

    async def cancel_event(self, request: Request, box: Mailbox) -> Response:
        body = _parameters(await _json_body(request))
        event = self.state.event(box, request.path_params["event_id"])
        if not event.get("isOrganizer", True):
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                _NOT_ORGANIZER,
            )
        if "comment" in body and not isinstance(body["comment"], str):
            raise GraphError(400, "RequestBodyRead", "Cannot convert the literal to 'Edm.String'.")
        self.state.remove(box, event["id"], "cancellation")
        return Response(status_code=202)

    # -- plumbing ----------------------------------------------------------------------------------

    def _page(self, request: Request, box: Mailbox, events: list[dict[str, Any]], what: str) -> Response:
        params = request.query_params
        top = _top(params.get("$top"))
        skip = _skip(params.get("$skip"))
        wanted = expanded_ids(params.get("$expand"))
        zone_name, zone = answer_zone(request.headers.get("prefer"))
        page = events[skip : skip + top]
        answer: dict[str, Any] = {
            "@odata.context": _context(request, box, what),
            "value": [_render(request, box, e, zone_name, zone, wanted, None) for e in page],
        }
        if skip + top < len(events):
            following = {k: v for k, v in params.items() if k != "$skip"}
            following["$skip"] = str(skip + top)
            answer["@odata.nextLink"] = f"{str(request.url).split('?')[0]}?{urlencode(following)}"
        return JSONResponse(answer, headers=_applied(request, zone_name))

    def _authed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Bearer auth with an issued token, Graph's 401 otherwise; API errors rendered in Graph's shape."""

        async def guarded(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _unauthenticated("Access token is empty.")
            if token not in self.state.access_tokens:
                return _unauthenticated("Access token has expired or is not yet valid.")
            try:
                box = self.state.mailbox(request.path_params.get("user"))
                return await handler(request, box)
            except GraphError as error:
                return graph_error(error.status, error.code, error.message)

        return guarded


def _unauthenticated(message: str) -> Response:
    authenticate = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
        f'client_id="{_GRAPH_RESOURCE_APP}"'
    )
    return graph_error(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": authenticate})


def _oauth_error(status: int, error: str, code: int, description: str) -> Response:
    trace = str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return JSONResponse(body, status_code=status)


def _properties(event: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["value"] for p in event.get("singleValueExtendedProperties") or []}


def _render(
    request: Request,
    box: Mailbox,
    event: dict[str, Any],
    zone_name: str,
    zone: Any,
    expand: frozenset[str],
    entity: str | None,
) -> dict[str, Any]:
    """An event as Graph answers it: times in the preferred zone, extended properties only when expanded."""
    shown: dict[str, Any] = {}
    if entity is not None:
        shown["@odata.context"] = _context(request, box, entity)
    shown["@odata.etag"] = f'W/"{event["changeKey"]}"'
    for key, value in event.items():
        if key == "singleValueExtendedProperties" or (key == "transactionId" and value is None):
            continue
        shown[key] = json.loads(json.dumps(value))
    shown["start"] = render_time(_utc(event["start"]), zone_name, zone)
    shown["end"] = render_time(_utc(event["end"]), zone_name, zone)
    if expand:
        found = [p for p in event.get("singleValueExtendedProperties") or [] if p["id"] in expand]
        if found:
            shown["singleValueExtendedProperties"] = [dict(p) for p in found]
    return shown


def _utc(stored: dict[str, Any]) -> datetime:
    return parse_event_time(stored, "stored")


def _root(request: Request) -> str:
    url = str(request.url)
    return url[: url.index("/v1.0/") + len("/v1.0")]


def _context(request: Request, box: Mailbox, what: str) -> str:
    owner = "users('" + box.address + "')"
    return f"{_root(request)}/$metadata#{owner}/{what}"


def _applied(request: Request, zone_name: str) -> dict[str, str]:
    if "outlook.timezone" not in (request.headers.get("prefer") or ""):
        return {}
    return {"Preference-Applied": f'outlook.timezone="{zone_name}"'}


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    """Action parameters by lower-cased name: Graph takes `Schedules` and `schedules` alike."""
    return {key.lower(): value for key, value in body.items()}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def _top(value: str | None) -> int:
    if value is None:
        return _DEFAULT_TOP
    if not value.isdigit() or int(value) < 1:
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for $top query option found.")
    return min(int(value), _MAX_TOP)


def _skip(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for $skip query option found.")
    return int(value)


def build_sandbox() -> Sandbox:
    """The emulator as a `Sandbox`: the owner's mailbox and a front-desk mailbox (New York), no events."""
    state = OutlookState()
    return Sandbox(
        name="outlook_calendar",
        state=state,
        routes=_GraphApi(state).routes(),
        error=_fault_error,
        exempt_paths=(f"/{SANDBOX_TENANT}/oauth2/", "/common/oauth2/", "/organizations/oauth2/"),
    )
