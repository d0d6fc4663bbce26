"""The Microsoft Graph v1.0 requests this integration makes, over plain httpx.

Why not msgraph-sdk: importing it (and building a GraphServiceClient) costs far more than the whole
tool server's cold start allows (figures in the provider's report); these six requests need none of
its model classes. Each request gets a valid OAuth access token (refreshed once on a 401), the
`Prefer: outlook.timezone` header, an HTTP timeout sized to the tool call's deadline, and is
retried by `Resilience`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from integrations.capabilities.errors import UpstreamError
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.outlook_calendar.errors import Subject, translate, translate_transport
from integrations.outlook_calendar.mappers import PROPERTY_IDS, PROVIDER, graph_time, graph_zone

__all__ = ["OutlookCalendarClient"]

# Ask Graph to expand our extended properties on every event it returns.
EXPAND = "singleValueExtendedProperties($filter=" + " or ".join(f"id eq '{p}'" for p in PROPERTY_IDS) + ")"


class OutlookCalendarClient:
    """One connection's Graph calendar: typed calls in, plain Graph JSON out, integration errors raised."""

    def __init__(
        self,
        base_url: str,
        user: str | None,
        zone: str,
        tokens: TokenManager,
        resilience: Resilience,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._root = f"{base_url}/v1.0"
        self._owner = "/me" if user is None else f"/users/{quote(user, safe='@')}"
        self._zone = zone
        self._tokens = tokens
        self._resilience = resilience
        self._transport = transport

    async def get_calendar(self) -> dict[str, Any]:
        """The owner's default calendar (name, owner address)."""
        # https://learn.microsoft.com/graph/api/calendar-get
        return await self._call("GET", f"{self._owner}/calendar", subject=("calendar", "default"))

    async def get_schedule(self, schedules: list[str], start: datetime, end: datetime) -> dict[str, Any]:
        """Free/busy items of every schedule (mailbox) in [start, end)."""
        body = {
            "schedules": schedules,
            "startTime": graph_time(start, self._zone),
            "endTime": graph_time(end, self._zone),
            "availabilityViewInterval": 30,
        }
        # https://learn.microsoft.com/graph/api/calendar-getschedule
        return await self._call("POST", f"{self._owner}/calendar/getSchedule", json=body)

    async def calendar_view(self, start: datetime, end: datetime, *, top: int) -> list[dict[str, Any]]:
        """Every event (occurrences expanded) overlapping [start, end), following @odata.nextLink."""
        params = {
            "startDateTime": graph_time(start, "UTC")["dateTime"] + "Z",
            "endDateTime": graph_time(end, "UTC")["dateTime"] + "Z",
            "$top": str(top),
            "$expand": EXPAND,
        }
        # https://learn.microsoft.com/graph/api/user-list-calendarview
        return await self._pages(f"{self._owner}/calendarView", params)

    async def events_with_property(self, property_id: str, value: str, *, top: int) -> list[dict[str, Any]]:
        """Every event carrying one of our extended properties with `value`, by start time."""
        literal = value.replace("'", "''")  # OData string literals double their quotes.
        params = {
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{property_id}' and ep/value eq '{literal}')",
            "$expand": EXPAND,
            "$orderby": "start/dateTime",
            "$top": str(top),
        }
        # https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get
        return await self._pages(f"{self._owner}/events", params)

    async def get_event(self, event_id: str) -> dict[str, Any]:
        """One event with our extended properties."""
        # https://learn.microsoft.com/graph/api/event-get
        return await self._call(
            "GET", self._event_path(event_id), params={"$expand": EXPAND}, subject=("appointment", event_id)
        )

    async def create_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event. A `transactionId` Graph has seen answers the event it already made."""
        # https://learn.microsoft.com/graph/api/user-post-events
        return await self._call("POST", f"{self._owner}/events", json=body)

    async def update_event(self, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some properties of an event (Graph sends attendees an update or cancellation)."""
        # https://learn.microsoft.com/graph/api/event-update
        return await self._call("PATCH", self._event_path(event_id), json=changes, subject=("appointment", event_id))

    # -- plumbing ----------------------------------------------------------------------------------

    def _event_path(self, event_id: str) -> str:
        # Outlook ids hold base64 characters (`=`, `-`, `_`, maybe `/` and `+`): always one path segment.
        return f"{self._owner}/events/{quote(event_id, safe='')}"

    async def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = await self._call("GET", path, params=params)
        while True:
            items.extend(page.get("value") or [])
            link = page.get("@odata.nextLink")
            if not link:
                return items
            link = str(link)
            # The token goes only to Graph itself: a next link elsewhere is a broken answer, not a hop.
            if not link.startswith(f"{self._root}/"):
                raise UpstreamError(PROVIDER, "Graph answered a next page link outside its API")
            page = await self._call("GET", link.removeprefix(self._root))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            token = await self._tokens.token()
            response = await self._send(method, path, token, params, json)
            if response.status_code == 401:
                # Graph refused a token we thought valid (revoked or expired early): refresh once, retry once.
                token = await self._tokens.refresh(stale=token)
                response = await self._send(method, path, token, params, json)
            if response.status_code >= 400:
                raise translate(response, subject)
            return _body(response)

        return await self._resilience.call(attempt)

    async def _send(
        self, method: str, path: str, token: str, params: dict[str, str] | None, json: dict[str, Any] | None
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            # Times in answers come in the business's zone; the mapper still reads whichever zone Graph names.
            "Prefer": f'outlook.timezone="{graph_zone(self._zone)}"',
        }
        # A client per attempt: its timeout is what this tool call's deadline leaves now, and no
        # connection pool outlives the event loop that made it.
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._resilience.attempt_timeout(), verify=tls_context()
            ) as client:
                return await client.request(method, f"{self._root}{path}", params=params, json=json, headers=headers)
        except httpx.HTTPError as error:
            # `from None`: httpx's message holds the URL, whose $filter may carry a caller's phone.
            raise translate_transport(error) from None


def _body(response: httpx.Response) -> dict[str, Any]:
    if response.status_code in (202, 204) or not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(PROVIDER, "unreadable answer from Graph", retryable=True) from None
    if not isinstance(body, dict):
        raise UpstreamError(PROVIDER, "unexpected answer shape from Graph")
    return body
