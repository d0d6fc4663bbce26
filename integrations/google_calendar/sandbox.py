"""The Google Calendar emulator: Calendar API v3 and Google's OAuth token endpoint, offline.

Served under the mount point (`/sandbox/google_calendar`) at Google's real paths, so the SDK
pointed at `{mount}/calendar/v3/` and the token URL `{mount}/token` work unchanged:

- `POST /token`: refresh-token grant (https://developers.google.com/identity/protocols/oauth2/web-server#offline)
- `GET /calendar/v3/calendars/{calendarId}`
- `POST /calendar/v3/freeBusy`
- `GET|POST /calendar/v3/calendars/{calendarId}/events`
- `GET|PATCH|DELETE /calendar/v3/calendars/{calendarId}/events/{eventId}`

Errors use Google's JSON error shape: https://developers.google.com/workspace/calendar/api/guides/errors
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.google_calendar.sandbox_state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    GoogleCalendarState,
)
from integrations.google_calendar.sandbox_wire import ApiError, EventQuery, now_stamp, parse_instant, utc_stamp

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "GoogleCalendarState",
    "build_sandbox",
    "google_error",
]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_SCOPE = "https://www.googleapis.com/auth/calendar"
_MAX_RESULTS = 2500
# Google's freeBusy range limit is undocumented (reports put it between two and three months);
# the emulator is at the strict end so a connector that works here works there.
_FREEBUSY_LONGEST = timedelta(days=62)


def google_error(
    status: int, reason: str, message: str, *, domain: str = "global", headers: dict[str, str] | None = None
) -> JSONResponse:
    """Google's error body: {"error": {"code", "message", "errors": [{message, domain, reason}], "status"}}."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _fault_error(status: int, retry_after: float | None) -> Response:
    """An injected fault in Google's own words: 429 `rateLimitExceeded`, 5xx `backendError`."""
    if status == 429:
        seconds = retry_after if retry_after is not None else 1.0
        header = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        return google_error(
            429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits", headers={"Retry-After": header}
        )
    message = "The service is currently unavailable." if status == 503 else "Backend Error"
    return google_error(status, "backendError", message)


Handler = Callable[[Request], Awaitable[Response]]


class _CalendarApi:
    """The HTTP face of `GoogleCalendarState`: parameters in, Google's JSON out."""

    def __init__(self, state: GoogleCalendarState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        base = "/calendar/v3"
        return [
            Route("/token", self.token, methods=["POST"]),
            Route(f"{base}/freeBusy", self._authed(self.free_busy), methods=["POST"]),
            Route(f"{base}/calendars/{{calendarId}}", self._authed(self.get_calendar), methods=["GET"]),
            Route(f"{base}/calendars/{{calendarId}}/events", self._authed(self.list_events), methods=["GET"]),
            Route(f"{base}/calendars/{{calendarId}}/events", self._authed(self.insert_event), methods=["POST"]),
            Route(f"{base}/calendars/{{calendarId}}/events/{{eventId}}", self._authed(self.get_event), methods=["GET"]),
            Route(
                f"{base}/calendars/{{calendarId}}/events/{{eventId}}", self._authed(self.patch_event), methods=["PATCH"]
            ),
            Route(
                f"{base}/calendars/{{calendarId}}/events/{{eventId}}",
                self._authed(self.delete_event),
                methods=["DELETE"],
            ),
        ]

    # -- OAuth token endpoint ----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}")
        if form.get("client_id") != SANDBOX_CLIENT_ID or form.get("client_secret") != SANDBOX_CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not form.get("refresh_token"):
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        if form["refresh_token"] not in self.state.refresh_tokens:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return JSONResponse(
            {
                "access_token": self.state.issue_access_token(),
                "expires_in": 3599,
                "scope": _SCOPE,
                "token_type": "Bearer",
            }
        )

    # -- Calendar API ------------------------------------------------------------------------------

    async def get_calendar(self, request: Request) -> Response:
        return JSONResponse(self.state.calendar(request.path_params["calendarId"]).resource())

    async def free_busy(self, request: Request) -> Response:
        body = await _json_body(request)
        if not body.get("timeMin"):
            raise ApiError(400, "required", "Missing timeMin parameter.")
        if not body.get("timeMax"):
            raise ApiError(400, "required", "Missing timeMax parameter.")
        start = parse_instant(str(body["timeMin"]), "timeMin")
        end = parse_instant(str(body["timeMax"]), "timeMax")
        if end <= start:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        if end - start > _FREEBUSY_LONGEST:
            raise ApiError(400, "timeRangeTooLong", "The requested time range is too long.")
        calendars: dict[str, Any] = {}
        for item in body.get("items") or []:
            calendar_id = str(item.get("id", ""))
            try:
                busy = self.state.busy(calendar_id, start, end)
            except ApiError as error:
                calendars[calendar_id] = {"errors": [{"domain": "global", "reason": error.reason}], "busy": []}
                continue
            calendars[calendar_id] = {"busy": [{"start": utc_stamp(s), "end": utc_stamp(e)} for s, e in busy]}
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": utc_stamp(start),
                "timeMax": utc_stamp(end),
                "calendars": calendars,
            }
        )

    async def list_events(self, request: Request) -> Response:
        params = request.query_params
        query = EventQuery(
            time_min=parse_instant(params["timeMin"], "timeMin") if params.get("timeMin") else None,
            time_max=parse_instant(params["timeMax"], "timeMax") if params.get("timeMax") else None,
            single_events=_flag(params.get("singleEvents")),
            order_by=params.get("orderBy"),
            private_properties=tuple(params.getlist("privateExtendedProperty")),
            shared_properties=tuple(params.getlist("sharedExtendedProperty")),
            show_deleted=_flag(params.get("showDeleted")),
            max_results=_max_results(params.get("maxResults")),
            page_token=params.get("pageToken"),
        )
        calendar, items, next_token = self.state.list_events(request.path_params["calendarId"], query)
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]}"',
            "summary": calendar.summary,
            "description": "",
            "updated": max((e["updated"] for e in items), default=now_stamp()),
            "timeZone": calendar.time_zone,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 30}],
            "items": items,
        }
        if next_token:
            answer["nextPageToken"] = next_token
        return JSONResponse(answer)

    async def insert_event(self, request: Request) -> Response:
        params = request.query_params
        event = self.state.insert(
            request.path_params["calendarId"],
            await _json_body(request),
            send_updates=params.get("sendUpdates"),
            conference_version=_conference_version(params.get("conferenceDataVersion")),
        )
        return JSONResponse(event)

    async def get_event(self, request: Request) -> Response:
        return JSONResponse(self.state.event(request.path_params["calendarId"], request.path_params["eventId"]))

    async def patch_event(self, request: Request) -> Response:
        event = self.state.patch(
            request.path_params["calendarId"],
            request.path_params["eventId"],
            await _json_body(request),
            send_updates=request.query_params.get("sendUpdates"),
        )
        return JSONResponse(event)

    async def delete_event(self, request: Request) -> Response:
        self.state.delete(
            request.path_params["calendarId"],
            request.path_params["eventId"],
            send_updates=request.query_params.get("sendUpdates"),
        )
        return Response(status_code=204)

    # -- plumbing ----------------------------------------------------------------------------------

    def _authed(self, handler: Handler) -> Handler:
        """Bearer auth with an issued, unexpired token; API errors rendered in Google's shape."""

        async def guarded(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _unauthenticated(
                    "Request is missing required authentication credential. Expected OAuth 2 access token, "
                    "login cookie or other valid authentication credential.",
                    "Login Required.",
                    "required",
                )
            if token not in self.state.access_tokens:
                return _unauthenticated(
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                    "login cookie or other valid authentication credential.",
                    "Invalid Credentials",
                    "authError",
                )
            try:
                return await handler(request)
            except ApiError as error:
                return google_error(error.status, error.reason, error.message)

        return guarded


def _unauthenticated(message: str, detail: str, reason: str) -> Response:
    body = {
        "error": {
            "code": 401,
            "message": message,
            "errors": [
                {
                    "message": detail,
                    "domain": "global",
                    "reason": reason,
                    "location": "Authorization",
                    "locationType": "header",
                }
            ],
            "status": "UNAUTHENTICATED",
        }
    }
    return JSONResponse(
        body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    )


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "parseError", "Parse Error") from None
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _max_results(value: str | None) -> int:
    if value is None:
        return 250
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, "invalidParameter", f"Invalid value '{value}'. Values must be integers.") from None
    if number < 1:
        raise ApiError(400, "invalidParameter", f"Invalid value '{value}'. Values must be within the range: [1, 2500]")
    # Google silently caps maxResults at 2500.
    return min(number, _MAX_RESULTS)


def _conference_version(value: str | None) -> int:
    if value in (None, "0", "1"):
        return int(value or 0)
    raise ApiError(400, "invalidParameter", f"Invalid value '{value}'. Values must be within the range: [0, 1]")


def build_sandbox() -> Sandbox:
    """The emulator as a `Sandbox`: two calendars (primary and a shared front-desk one), no events."""
    state = GoogleCalendarState()
    return Sandbox(
        name="google_calendar",
        state=state,
        routes=_CalendarApi(state).routes(),
        error=_fault_error,
        exempt_paths=("/token",),
    )
