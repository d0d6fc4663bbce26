"""The Cal.com emulator: API v2 slots, slot reservations, bookings and /me, offline.

Served under the mount point (`/sandbox/calcom`) at Cal.com's real paths, so a connector whose
`base_url` is the mount works unchanged:

- `GET /v2/me`
- `GET /v2/slots` (cal-api-version 2024-09-04; public, as at Cal.com)
- `POST /v2/slots/reservations`, `GET|DELETE /v2/slots/reservations/{uid}` (2024-09-04)
- `POST|GET /v2/bookings`, `GET /v2/bookings/{uid}`, `POST /v2/bookings/{uid}/reschedule|cancel` (2024-08-13)

Auth is an API key as a Bearer token (`cal_…`); a key Cal.com does not know answers 401 in its
error shape. The emulator insists on each endpoint's `cal-api-version` (Cal.com would silently
answer an older version's shape instead). Reference: https://cal.com/docs/api-reference/v2
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.calcom.sandbox_state import EVENT_TYPE_ID, OWNER, SANDBOX_API_KEY, CalcomState
from integrations.calcom.sandbox_wire import (
    ApiError,
    cal_error,
    fault_error,
    local_stamp,
    parse_query_instant,
    request_path,
)
from integrations.common.sandbox import Sandbox
from integrations.common.zones import UnknownZoneError, canonical_zone_name

__all__ = ["EVENT_TYPE_ID", "SANDBOX_API_KEY", "CalcomState", "build_sandbox"]

SLOTS = "2024-09-04"
BOOKINGS = "2024-08-13"
_MAX_TAKE = 250
Handler = Callable[[Request], Awaitable[Response]]


class _CalcomApi:
    """The HTTP face of `CalcomState`: parameters in, Cal.com's JSON out."""

    def __init__(self, state: CalcomState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        def route(path: str, handler: Handler, method: str, *, version: str | None, auth: str) -> Route:
            return Route(path, self._guarded(handler, version, auth), methods=[method])

        return [
            route("/v2/me", self.me, "GET", version=None, auth="required"),
            route("/v2/slots", self.slots, "GET", version=SLOTS, auth="none"),
            route("/v2/slots/reservations", self.reserve, "POST", version=SLOTS, auth="optional"),
            route("/v2/slots/reservations/{uid}", self.reservation, "GET", version=SLOTS, auth="none"),
            route("/v2/slots/reservations/{uid}", self.release, "DELETE", version=SLOTS, auth="none"),
            route("/v2/bookings", self.create_booking, "POST", version=BOOKINGS, auth="optional"),
            route("/v2/bookings", self.list_bookings, "GET", version=BOOKINGS, auth="required"),
            route("/v2/bookings/{uid}", self.get_booking, "GET", version=BOOKINGS, auth="optional"),
            route("/v2/bookings/{uid}/reschedule", self.reschedule, "POST", version=BOOKINGS, auth="optional"),
            route("/v2/bookings/{uid}/cancel", self.cancel, "POST", version=BOOKINGS, auth="optional"),
        ]

    async def me(self, _request: Request) -> Response:
        return _success(
            {
                **{k: OWNER[k] for k in ("id", "username", "email", "name", "timeZone")},
                "avatarUrl": None,
                "bio": None,
                "timeFormat": 12,
                "defaultScheduleId": 77,
                "weekStart": "Sunday",
                "organizationId": None,
            }
        )

    async def slots(self, request: Request) -> Response:
        params = request.query_params
        if not params.get("eventTypeId"):
            raise ApiError(400, "eventTypeId, eventTypeSlug + username, or usernames must be provided")
        event_type = self.state.event_type(params["eventTypeId"])
        if not params.get("start") or not params.get("end"):
            raise ApiError(400, "start and end query parameters are required")
        start = parse_query_instant(params["start"], "start", end_of_day=False)
        end = parse_query_instant(params["end"], "end", end_of_day=True)
        if end < start:
            raise ApiError(400, "Invalid time range given - check the 'start' and 'end' query parameters.")
        try:
            zone = canonical_zone_name(params.get("timeZone") or "UTC")
        except UnknownZoneError:
            raise ApiError(400, f"Invalid timeZone: {params.get('timeZone', '')[:64]}") from None
        duration = params.get("duration")
        length = self.state.length(_number(duration, "duration") if duration else None, "duration")
        rescheduling = params.get("bookingUidToReschedule")
        days: dict[str, list[Any]] = {}
        for moment in self.state.free_starts(start, end, length, rescheduling=rescheduling):
            shown = local_stamp(moment, zone)
            slot: Any = {"start": shown}
            if params.get("format") == "range":
                slot["end"] = local_stamp(moment + length, zone)
            days.setdefault(shown[:10], []).append(slot)
        del event_type
        return _success(days)

    async def reserve(self, request: Request) -> Response:
        reservation = self.state.reserve(await _json_body(request), authenticated=request.state.authenticated)
        return _success({k: v for k, v in reservation.items() if k != "releaseAt"}, status=201)

    async def reservation(self, request: Request) -> Response:
        return _success(self.state.reservation(request.path_params["uid"]))

    async def release(self, request: Request) -> Response:
        self.state.release(request.path_params["uid"])
        return JSONResponse({"status": "success"})

    async def create_booking(self, request: Request) -> Response:
        return _success(self.state.create_booking(await _json_body(request)), status=201)

    async def list_bookings(self, request: Request) -> Response:
        params = request.query_params
        filters = {
            name: params.get(name) for name in ("attendeeEmail", "attendeeName", "afterStart", "beforeEnd", "sortStart")
        }
        statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
        take = _number(params.get("take", "100"), "take")
        skip = _number(params.get("skip", "0"), "skip")
        if take < 1 or take > _MAX_TAKE or skip < 0:
            raise ApiError(400, f"take must be between 1 and {_MAX_TAKE}, skip at least 0")
        matches = self.state.list_bookings({**filters, "status": statuses})
        page = matches[skip : skip + take]
        total = len(matches)
        pages = (total + take - 1) // take
        return JSONResponse(
            {
                "status": "success",
                "data": page,
                "pagination": {
                    "totalItems": total,
                    "remainingItems": max(0, total - (skip + take)),
                    "returnedItems": len(page),
                    "itemsPerPage": take,
                    "currentPage": skip // take + 1,
                    "totalPages": pages,
                    "hasNextPage": skip + take < total,
                    "hasPreviousPage": skip > 0,
                },
            }
        )

    async def get_booking(self, request: Request) -> Response:
        return _success(self.state.booking(request.path_params["uid"]))

    async def reschedule(self, request: Request) -> Response:
        moved = self.state.reschedule(request.path_params["uid"], await _json_body(request))
        return _success(moved, status=201)

    async def cancel(self, request: Request) -> Response:
        return _success(self.state.cancel(request.path_params["uid"], await _json_body(request)))

    # -- plumbing ---------------------------------------------------------------------------------------

    def _guarded(self, handler: Handler, version: str | None, auth: str) -> Handler:
        """API-key auth as Cal.com's ApiAuthStrategy does it; errors in Cal.com's shape."""

        async def guarded(request: Request) -> Response:
            path = request_path(request.scope)
            try:
                request.state.authenticated = self._authenticate(request, auth)
                if version is not None and request.headers.get("cal-api-version") != version:
                    raise ApiError(
                        400,
                        f"This emulator serves cal-api-version {version} of this endpoint only; "
                        "without it Cal.com answers with an older version",
                    )
                return await handler(request)
            except ApiError as error:
                return cal_error(error, path)

        return guarded

    def _authenticate(self, request: Request, auth: str) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if auth == "none":
            return False
        if not token:
            if auth == "optional":
                return False
            raise ApiError(
                401,
                "No authentication method provided. Either pass an API key as 'Bearer' header or OAuth "
                "client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers",
            )
        if not token.startswith("cal_"):
            raise ApiError(401, "Invalid Access Token.")
        if token not in self.state.api_keys:
            raise ApiError(401, "Your api key is not valid")
        return True


def _success(data: Any, *, status: int = 200) -> Response:
    return JSONResponse({"status": "success", "data": data}, status_code=status)


def _number(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{what} must be a number") from None


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "Unexpected token in JSON body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def build_sandbox(state: CalcomState | None = None) -> Sandbox:
    """The emulator as a `Sandbox`: one user and one 30-minute event type, Mon-Fri 09:00-17:00 New York."""
    state = state or CalcomState()
    return Sandbox(name="calcom", state=state, routes=_CalcomApi(state).routes(), error=fault_error)
