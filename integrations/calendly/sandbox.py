"""The Calendly emulator: API v2 and Calendly's OAuth token endpoint, offline.

Served under the mount point (`/sandbox/calendly`) at Calendly's real paths, so a connector whose
`base_url` is the mount and whose token URL is `{mount}/oauth/token` works unchanged:

- `POST /oauth/token`: refresh-token grant with rotation
  (https://developer.calendly.com/api-docs/calendly-o-auth/o-auth/post-oauth-refresh-token)
- `GET /users/me`, `GET /event_types`, `GET /event_types/{uuid}`
- `GET /event_type_available_times`
- `POST /invitees` (Scheduling API: https://developer.calendly.com/schedule-events-with-ai-agents)
- `GET /scheduled_events`, `GET /scheduled_events/{uuid}`, `GET /scheduled_events/{uuid}/invitees`
- `POST /scheduled_events/{uuid}/cancellation`
- `POST /scheduling_links`

Errors use the spec's `ErrorResponse` (`{"title", "message", "details"?}`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.calendly.sandbox_state import (
    ORGANIZATION_URI,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PERSONAL_ACCESS_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    USER_URI,
    CalendlyState,
    EventQuery,
)
from integrations.calendly.sandbox_wire import (
    ApiError,
    calendly_error,
    page_offset,
    pagination,
    parse_time,
    stamp,
)
from integrations.common.sandbox import Sandbox

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PERSONAL_ACCESS_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "CalendlyState",
    "build_sandbox",
]

# Paid plans get 500 requests per user per minute (https://developer.calendly.com/api-docs/overview/rate-limits).
_RATE_LIMIT = 500
_MAX_COUNT = 100
_DEFAULT_COUNT = 20

Handler = Callable[[Request], Awaitable[Response]]


def _fault_error(status: int, retry_after: float | None) -> Response:
    """An injected fault in Calendly's words: 429 with Retry-After and `X-RateLimit-*`, or a 5xx."""
    if status == 429:
        seconds = retry_after if retry_after is not None else 1.0
        reset = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        headers = {
            "Retry-After": reset,
            "X-RateLimit-Limit": str(_RATE_LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        return calendly_error(429, headers=headers)
    return calendly_error(status)


class _CalendlyApi:
    """The HTTP face of `CalendlyState`: parameters in, Calendly's JSON out."""

    def __init__(self, state: CalendlyState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        authed = self._authed
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/users/me", authed(self.me), methods=["GET"]),
            Route("/event_types", authed(self.list_event_types), methods=["GET"]),
            Route("/event_types/{uuid}", authed(self.get_event_type), methods=["GET"]),
            Route("/event_type_available_times", authed(self.available_times), methods=["GET"]),
            Route("/invitees", authed(self.create_invitee), methods=["POST"]),
            Route("/scheduled_events", authed(self.list_events), methods=["GET"]),
            Route("/scheduled_events/{uuid}", authed(self.get_event), methods=["GET"]),
            Route("/scheduled_events/{uuid}/invitees", authed(self.list_invitees), methods=["GET"]),
            Route("/scheduled_events/{uuid}/cancellation", authed(self.cancel), methods=["POST"]),
            Route("/scheduling_links", authed(self.scheduling_link), methods=["POST"]),
        ]

    # -- OAuth token endpoint ----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = _basic_credentials(request) or (form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        if client_id != SANDBOX_CLIENT_ID or client_secret != SANDBOX_CLIENT_SECRET:
            return _oauth_error(401, "invalid_client", "Client authentication failed due to unknown client.")
        issued = self.state.refresh(form.get("refresh_token", ""))
        if issued is None:
            return _oauth_error(
                400,
                "invalid_grant",
                "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI "
                "used in the authorization request, or was issued to another client.",
            )
        access, rotated = issued
        return JSONResponse(
            {
                "token_type": "Bearer",
                "access_token": access,
                "refresh_token": rotated,
                "scope": "default",
                "created_at": int(datetime.now().timestamp()),
                "expires_in": 7200,
                "owner": USER_URI,
                "organization": ORGANIZATION_URI,
            }
        )

    # -- API v2 ----------------------------------------------------------------------------------------

    async def me(self, _request: Request) -> Response:
        return JSONResponse({"resource": self.state.user})

    async def list_event_types(self, request: Request) -> Response:
        params = request.query_params
        user, organization = params.get("user"), params.get("organization")
        if not user and not organization:
            raise ApiError(400, details=[{"parameter": "user", "message": "user or organization is required"}])
        if (user and user != USER_URI) or (organization and organization != ORGANIZATION_URI):
            raise ApiError(403)
        found = sorted(self.state.event_types.values(), key=lambda t: (t["name"] or "", t["uri"]))
        if params.get("active") in ("true", "false"):
            found = [t for t in found if t["active"] == (params["active"] == "true")]
        return _page(request, found)

    async def get_event_type(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        for uri, event_type in self.state.event_types.items():
            if uri.rsplit("/", 1)[-1] == uuid:
                return JSONResponse({"resource": event_type})
        raise ApiError(404)

    async def available_times(self, request: Request) -> Response:
        params = request.query_params
        start = parse_time(params.get("start_time"), "start_time")
        end = parse_time(params.get("end_time"), "end_time")
        event_type_uri = params.get("event_type")
        starts = self.state.available_times(event_type_uri, start, end)
        scheduling_url = self.state.event_type(str(event_type_uri))["scheduling_url"]
        return JSONResponse(
            {
                "collection": [
                    {
                        "status": "available",
                        "invitees_remaining": 1,
                        "start_time": stamp(moment),
                        "scheduling_url": f"{scheduling_url}/{stamp(moment)}?{_month_and_day(moment)}",
                    }
                    for moment in starts
                ]
            }
        )

    async def create_invitee(self, request: Request) -> Response:
        return JSONResponse({"resource": self.state.book(await _json_body(request))}, status_code=201)

    async def list_events(self, request: Request) -> Response:
        params = request.query_params
        sort = params.get("sort", "start_time:asc")
        if sort not in ("start_time:asc", "start_time:desc"):
            raise ApiError(400, details=[{"parameter": "sort", "message": "is invalid"}])
        status = params.get("status")
        if status not in (None, "active", "canceled"):
            raise ApiError(400, details=[{"parameter": "status", "message": "is invalid"}])
        query = EventQuery(
            user=params.get("user"),
            organization=params.get("organization"),
            invitee_email=params.get("invitee_email"),
            status=status,
            min_start_time=parse_time(params["min_start_time"], "min_start_time")
            if params.get("min_start_time")
            else None,
            max_start_time=parse_time(params["max_start_time"], "max_start_time")
            if params.get("max_start_time")
            else None,
            descending=sort.endswith(":desc"),
        )
        return _page(request, self.state.list_events(query))

    async def get_event(self, request: Request) -> Response:
        return JSONResponse({"resource": self.state.event(request.path_params["uuid"])})

    async def list_invitees(self, request: Request) -> Response:
        params = request.query_params
        found = self.state.event_invitees(
            request.path_params["uuid"], email=params.get("email"), status=params.get("status")
        )
        if params.get("sort", "created_at:asc").endswith(":desc"):
            found.reverse()
        return _page(request, found)

    async def cancel(self, request: Request) -> Response:
        body = await _json_body(request)
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 10000):
            raise ApiError(400, details=[{"parameter": "reason", "message": "is invalid"}])
        cancellation = self.state.cancel(request.path_params["uuid"], reason)
        return JSONResponse({"resource": cancellation}, status_code=201)

    async def scheduling_link(self, request: Request) -> Response:
        return JSONResponse({"resource": self.state.scheduling_link(await _json_body(request))}, status_code=201)

    # -- plumbing ----------------------------------------------------------------------------------

    def _authed(self, handler: Handler) -> Handler:
        """Bearer auth (personal access token or OAuth access token); API errors in Calendly's shape."""

        async def guarded(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            refusal = (
                self.state.authenticates(token)
                if scheme.lower() == "bearer" and token
                else "The access token is invalid"
            )
            if refusal is not None:
                return calendly_error(401, refusal)
            try:
                return await handler(request)
            except ApiError as error:
                return calendly_error(error.status, error.message, error.details)

        return guarded


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    params = request.query_params
    try:
        count = int(params.get("count", _DEFAULT_COUNT))
    except ValueError:
        raise ApiError(400, details=[{"parameter": "count", "message": "must be an integer"}]) from None
    if not 1 <= count <= _MAX_COUNT:
        raise ApiError(400, details=[{"parameter": "count", "message": "must be between 1 and 100"}])
    offset = page_offset(params.get("page_token"))
    query = {k: v for k, v in params.items() if k not in ("count", "page_token")}
    return JSONResponse(
        {
            "collection": items[offset : offset + count],
            "pagination": pagination(_local_path(request), query, offset, count, len(items)),
        }
    )


def _month_and_day(moment: datetime) -> str:
    return f"month={moment:%Y-%m}&date={moment:%Y-%m-%d}"


def _local_path(request: Request) -> str:
    """The vendor path below the mount point (Starlette keeps the full path and sets root_path)."""
    root: str = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root) :] if root and path.startswith(root) else path


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def build_sandbox(clock: Callable[[], datetime] | None = None) -> Sandbox:
    """The emulator as a `Sandbox`: one user in America/New_York with a 30-minute event type open
    Monday to Friday 09:00-17:00, no bookings. `clock` gives it a "now" (see `CalendlyState`)."""
    state = CalendlyState(clock)
    return Sandbox(
        name="calendly",
        state=state,
        routes=_CalendlyApi(state).routes(),
        error=_fault_error,
        exempt_paths=("/oauth/token",),
    )
