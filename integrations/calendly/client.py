"""The Calendly API v2 requests this integration makes, over httpx (Calendly has no official SDK).

Each request carries a bearer token (a personal access token, or an OAuth access token refreshed
once on a 401), gets an HTTP timeout sized to the tool call's deadline, and is retried by
`Resilience`. A personal access token or a refreshed token that Calendly still refuses marks the
connection expired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from integrations.calendly.errors import Subject, translate_response, translate_transport
from integrations.calendly.mappers import PROVIDER, stamp
from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault

__all__ = ["CalendlyClient", "Credentials"]

# Calendly's largest page (the spec's `Count`: 1 to 100).
PAGE_SIZE = 100
# A runaway list (a vendor bug, a loop of page tokens) stops here rather than eating the deadline.
MAX_PAGES = 50


class Credentials:
    """The bearer token for one connection: its personal access token when the vault holds one,
    else an OAuth access token from `TokenManager` (Calendly rotates refresh tokens on every
    refresh; the manager stores the new one)."""

    def __init__(self, vault: CredentialVault, tokens: TokenManager) -> None:
        self._vault = vault
        self._tokens = tokens

    async def token(self) -> str:
        secrets = await self._vault.load()
        if secrets.get("personal_access_token"):
            return secrets["personal_access_token"]
        if not (secrets.get("refresh_token") or secrets.get("access_token")):
            raise ProviderNotConnectedError(
                "calendar", "calendly connection has neither a personal access token nor OAuth tokens"
            )
        return await self._tokens.token()

    async def refresh(self, *, stale: str) -> str:
        """A replacement for a token Calendly refused; a personal access token has none."""
        secrets = await self._vault.load()
        if secrets.get("personal_access_token"):
            await self.refused()
        return await self._tokens.refresh(stale=stale)

    async def refused(self) -> None:
        """Calendly refuses the connection's credentials even after a refresh: it must be redone."""
        reason = "Calendly refused the connection's token (revoked or expired); reconnect the account"
        await self._vault.mark_expired(reason)
        raise ProviderNotConnectedError("calendar", reason)


class CalendlyClient:
    """One connection's Calendly API: typed calls in, Calendly's JSON out, integration errors raised."""

    def __init__(
        self, base_url: str, credentials: Credentials, resilience: Resilience, *, timeout_ceiling: float = 10.0
    ) -> None:
        self._base_url = base_url
        self._credentials = credentials
        self._resilience = resilience
        self._timeout_ceiling = timeout_ceiling

    async def me(self) -> dict[str, Any]:
        """The token's user (its URI scopes event lists; its timezone is the account's)."""
        # https://developer.calendly.com/api-docs/calendly-api/users/get-current-user
        return dict((await self._call("GET", "/users/me"))["resource"])

    async def event_type(self, uuid: str) -> dict[str, Any]:
        """One event type: duration, scheduling URL and custom questions."""
        # https://developer.calendly.com/api-docs/calendly-api/event-types/get-event-type
        answer = await self._call("GET", f"/event_types/{uuid}", subject=("event type", uuid))
        return dict(answer["resource"])

    async def active_event_types(self, user_uri: str) -> list[dict[str, Any]]:
        """The user's active event types, by name."""
        # https://developer.calendly.com/api-docs/calendly-api/event-types/list-user-s-event-types
        return await self._all("/event_types", {"user": user_uri, "active": "true"})

    async def available_times(self, event_type_uri: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Bookable starts of the event type in [start, end): at most 31 days, in the future."""
        params = {"event_type": event_type_uri, "start_time": stamp(start), "end_time": stamp(end)}
        # https://developer.calendly.com/api-docs/calendly-api/event-types/list-event-type-available-times
        return await self._call("GET", "/event_type_available_times", params=params)

    async def create_invitee(
        self, body: dict[str, Any], recover: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> dict[str, Any]:
        """Book: the new invitee. Calendly has no idempotency key, so before a retried attempt (the
        last one timed out or failed, and may have booked) `recover()` looks for the invitee that
        attempt made; a lookup that fails raises rather than risk booking twice."""
        attempted = False

        async def attempt() -> dict[str, Any]:
            nonlocal attempted
            if attempted:
                earlier = await recover()
                if earlier is not None:
                    return earlier
            attempted = True
            # https://developer.calendly.com/api-docs/calendly-api/scheduling-api/create-event-invitee
            return dict((await self._once("POST", "/invitees", json=body))["resource"])

        return await self._resilience.call(attempt)

    async def scheduling_link(self, event_type_uri: str) -> dict[str, Any]:
        """A single-use booking link for the event type."""
        body = {"max_event_count": 1, "owner": event_type_uri, "owner_type": "EventType"}
        # https://developer.calendly.com/api-docs/calendly-api/scheduling-links/create-single-use-scheduling-link
        return dict((await self._call("POST", "/scheduling_links", json=body))["resource"])

    async def scheduled_events(
        self,
        user_uri: str,
        *,
        min_start: datetime,
        max_start: datetime | None = None,
        invitee_email: str | None = None,
        status: str | None = "active",
    ) -> list[dict[str, Any]]:
        """The user's events starting in [min_start, max_start), by start time, every page."""
        params = {"user": user_uri, "min_start_time": stamp(min_start), "sort": "start_time:asc"}
        if max_start is not None:
            params["max_start_time"] = stamp(max_start)
        if invitee_email:
            params["invitee_email"] = invitee_email
        if status:
            params["status"] = status
        # https://developer.calendly.com/api-docs/calendly-api/scheduled-events/list-events
        return await self._all("/scheduled_events", params)

    async def scheduled_event(self, uuid: str) -> dict[str, Any]:
        """One scheduled event, canceled ones included."""
        # https://developer.calendly.com/api-docs/calendly-api/scheduled-events/get-event
        answer = await self._call("GET", f"/scheduled_events/{uuid}", subject=("appointment", uuid))
        return dict(answer["resource"])

    async def invitees(self, event_uuid: str) -> list[dict[str, Any]]:
        """The event's invitees (one for a one-on-one event type), oldest first."""
        # https://developer.calendly.com/api-docs/calendly-api/scheduled-events/list-event-invitees
        return await self._all(f"/scheduled_events/{event_uuid}/invitees", {}, subject=("appointment", event_uuid))

    async def cancel(self, event_uuid: str, reason: str) -> dict[str, Any]:
        """Cancel the event (201 with the cancellation); Calendly notifies the invitee."""
        # https://developer.calendly.com/api-docs/calendly-api/scheduled-events/cancel-event
        answer = await self._call(
            "POST",
            f"/scheduled_events/{event_uuid}/cancellation",
            json={"reason": reason},
            subject=("appointment", event_uuid),
        )
        return dict(answer["resource"])

    # -- plumbing -----------------------------------------------------------------------------------

    async def _all(self, path: str, params: dict[str, str], subject: Subject | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page_params = {**params, "count": str(PAGE_SIZE)}
            if token:
                page_params["page_token"] = token
            answer = await self._call("GET", path, params=page_params, subject=subject)
            items.extend(answer.get("collection") or [])
            token = (answer.get("pagination") or {}).get("next_page_token")
            if not token:
                return items
        raise UpstreamError(PROVIDER, f"more than {MAX_PAGES} pages of results")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        return await self._resilience.call(lambda: self._once(method, path, params=params, json=json, subject=subject))

    async def _once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        token = await self._credentials.token()
        response = await self._send(method, path, token, params, json)
        if response.status_code == 401:
            # Refused a token we thought valid (expired early, revoked): refresh once, retry once.
            token = await self._credentials.refresh(stale=token)
            response = await self._send(method, path, token, params, json)
            if response.status_code == 401:
                await self._credentials.refused()
        if not response.is_success:
            raise translate_response(response, subject)
        try:
            answer = response.json()
        except ValueError:
            raise UpstreamError(PROVIDER, "unreadable answer from Calendly", retryable=True) from None
        if not isinstance(answer, dict):
            raise UpstreamError(PROVIDER, "unexpected answer shape from Calendly", retryable=True)
        return answer

    async def _send(
        self, method: str, path: str, token: str, params: dict[str, str] | None, json: dict[str, Any] | None
    ) -> httpx.Response:
        # A client per attempt: its timeout is what this tool call's deadline leaves now, and no
        # connection pool outlives the event loop that opened it.
        timeout = self._resilience.attempt_timeout(self._timeout_ceiling)
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=timeout, verify=tls_context()) as client:
                return await client.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                )
        except httpx.HTTPError as error:
            # `from None`: httpx's text holds the URL, whose query may carry a caller's email.
            raise translate_transport(error) from None
