"""The HubSpot emulator: CRM v3 contacts, notes and calls, v4 association listings and the OAuth token endpoint.

Mounted under `/sandbox/hubspot`, so `{base_url}/crm/v3/objects/contacts` is served exactly where
the SDK sends it once `host` points at the sandbox. Auth is checked per request (Bearer tokens it
issued, or the fixed private-app token); errors, 401s and injected faults come in HubSpot's formats.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.hubspot import sandbox_reads
from integrations.hubspot.sandbox_engagements import ENGAGEMENT_DEFAULT, ENGAGEMENT_TYPES, EngagementType
from integrations.hubspot.sandbox_records import HubSpotError, Record, correlation_id
from integrations.hubspot.sandbox_state import (
    CONTACT_ALWAYS,
    CONTACT_DEFAULT,
    PORTAL_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PRIVATE_APP_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    HubSpotState,
    TokenError,
)

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_PRIVATE_APP_TOKEN",
    "SANDBOX_REFRESH_TOKEN",
    "build_sandbox",
    "hubspot_error",
]

Handler = Callable[[Request], Awaitable[Response]]
# Pages for GET /crm/v3/objects/contacts: HubSpot's default and maximum.
_LIST_DEFAULT, _LIST_MAX = 10, 100
# Server-error categories by status, as HubSpot's gateway labels them.
_SERVER_CATEGORIES = {502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}


def hubspot_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as HubSpot answers it: its rate-limit body and headers, or a 5xx error."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1.0
        return JSONResponse(
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation_id(),
                "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": f"publicapi:oauth:{PORTAL_ID}",
            },
            status_code=429,
            headers={
                # Retry-After is whole seconds (RFC 9110).
                "Retry-After": str(math.ceil(wait)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": "110",
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Daily": "250000",
                "X-HubSpot-RateLimit-Daily-Remaining": "249000",
            },
        )
    category = _SERVER_CATEGORIES.get(status, "INTERNAL_ERROR")
    error = HubSpotError(status, category, "An internal error occurred. Please try again later.")
    return JSONResponse(error.body, status_code=status)


def _properties_param(request: Request) -> list[str] | None:
    """`properties` given repeated (the SDK) or comma-separated (the docs); None when absent."""
    values = request.query_params.getlist("properties")
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise HubSpotError(400, "VALIDATION_ERROR", f"{name} must be an integer") from None


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise HubSpotError(400, "VALIDATION_ERROR", f"{name} must be true or false")
    return raw == "true"


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1") from None


class _Routes:
    """HubSpot's endpoints over one `HubSpotState`."""

    def __init__(self, state: HubSpotState) -> None:
        self.state = state

    def authenticated(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self.state.authenticate(request.headers.get("authorization"))
                return await handler(request)
            except HubSpotError as error:
                return JSONResponse(error.body, status_code=error.status)

        return endpoint

    async def token(self, request: Request) -> Response:
        # https://developers.hubspot.com/docs/api/oauth/tokens
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            return JSONResponse(self.state.refresh(form))
        except TokenError as error:
            return JSONResponse(error.body, status_code=400)

    async def list_contacts(self, request: Request) -> Response:
        limit = min(max(_int_param(request, "limit", _LIST_DEFAULT), 1), _LIST_MAX)
        page, next_after = self.state.list_contacts(after=request.query_params.get("after"), limit=limit)
        names = _properties_param(request) or CONTACT_DEFAULT
        body: dict[str, Any] = {"results": [record.public(names) for record in page]}
        if next_after is not None:
            link = str(request.url.include_query_params(after=next_after))
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return JSONResponse(body)

    async def create_contact(self, request: Request) -> Response:
        record = self.state.create_contact(await _json_body(request))
        return JSONResponse(record.public(record.properties), status_code=201)

    async def search_contacts(self, request: Request) -> Response:
        body = await _json_body(request)
        page, total, next_after = self.state.search_contacts(body)
        names = [*(body.get("properties") or CONTACT_DEFAULT), *CONTACT_ALWAYS]
        answer: dict[str, Any] = {"total": total, "results": [record.public(names) for record in page]}
        if next_after is not None:
            answer["paging"] = {"next": {"after": next_after}}
        return JSONResponse(answer)

    async def get_contact(self, request: Request) -> Response:
        record = self.state.contact(
            request.path_params["contact_id"], id_property=request.query_params.get("idProperty")
        )
        return JSONResponse(record.public(_properties_param(request) or CONTACT_DEFAULT))

    async def update_contact(self, request: Request) -> Response:
        record = self.state.update_contact(
            request.path_params["contact_id"],
            await _json_body(request),
            id_property=request.query_params.get("idProperty"),
        )
        return JSONResponse(record.public(record.properties))

    def engagement_routes(self, kind: EngagementType) -> list[Route]:
        """Create, batch read and get for one engagement type, at `/crm/v3/objects/{kind.name}`."""
        # https://developers.hubspot.com/docs/guides/api/crm/engagements/notes (calls: …/engagements/calls)
        # The store is looked up per request: `reset` replaces it.

        async def create(request: Request) -> Response:
            record = self.state.engagements(kind.name).create(await _json_body(request))
            return JSONResponse(record.public(record.properties), status_code=201)

        async def read(request: Request) -> Response:
            archived = _bool_param(request, "archived")
            store = self.state.engagements(kind.name)
            status, body = sandbox_reads.read_batch(store, await _json_body(request), archived=archived)
            return JSONResponse(body, status_code=status)

        async def get(request: Request) -> Response:
            record = self.state.engagements(kind.name).get(request.path_params["record_id"])
            body = record.public(_properties_param(request) or ENGAGEMENT_DEFAULT)
            wanted = {name for value in request.query_params.getlist("associations") for name in value.split(",")}
            if "contacts" in wanted:
                body["associations"] = {"contacts": {"results": _contact_links(record, kind)}}
            return JSONResponse(body)

        base = f"/crm/v3/objects/{kind.name}"
        return [
            Route(base, self.authenticated(create), methods=["POST"]),
            Route(f"{base}/batch/read", self.authenticated(read), methods=["POST"]),
            Route(f"{base}/{{record_id}}", self.authenticated(get), methods=["GET"]),
        ]

    async def list_associations(self, request: Request) -> Response:
        params = request.path_params
        most = sandbox_reads.ASSOCIATIONS_MAX
        limit = min(max(_int_param(request, "limit", most), 1), most)
        page, next_after = sandbox_reads.association_page(
            self.state,
            params["object_type"],
            params["object_id"],
            params["to_object_type"],
            after=request.query_params.get("after"),
            limit=limit,
        )
        body: dict[str, Any] = {"results": page}
        if next_after is not None:
            link = str(request.url.include_query_params(after=next_after))
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return JSONResponse(body)


def _contact_links(record: Record, kind: EngagementType) -> list[dict[str, str]]:
    return [{"id": str(a["to"]["id"]), "type": kind.contact_link} for a in record.associations]


def build_sandbox() -> Sandbox:
    """A fresh HubSpot emulator with an empty portal and the sandbox OAuth app installed."""
    state = HubSpotState()
    routes = _Routes(state)
    auth = routes.authenticated
    return Sandbox(
        name="hubspot",
        state=state,
        routes=[
            Route("/oauth/v1/token", routes.token, methods=["POST"]),
            Route("/crm/v3/objects/contacts/search", auth(routes.search_contacts), methods=["POST"]),
            Route("/crm/v3/objects/contacts", auth(routes.list_contacts), methods=["GET"]),
            Route("/crm/v3/objects/contacts", auth(routes.create_contact), methods=["POST"]),
            Route("/crm/v3/objects/contacts/{contact_id}", auth(routes.get_contact), methods=["GET"]),
            Route("/crm/v3/objects/contacts/{contact_id}", auth(routes.update_contact), methods=["PATCH"]),
            *(route for kind in ENGAGEMENT_TYPES for route in routes.engagement_routes(kind)),
            Route(
                "/crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}",
                auth(routes.list_associations),
                methods=["GET"],
            ),
        ],
        error=hubspot_error,
        exempt_paths=("/oauth/v1/token",),
    )
