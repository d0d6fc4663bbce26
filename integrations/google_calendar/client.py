"""The Calendar API v3 requests this integration makes, through Google's official SDK.

Each request gets a valid OAuth access token (refreshed once on a 401), runs on a worker thread
with an HTTP timeout sized to the tool call's deadline, and is retried by `Resilience`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from integrations.capabilities.errors import UpstreamError
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.google_calendar.errors import Subject, translate
from integrations.google_calendar.mappers import PROVIDER, rfc3339

__all__ = ["GoogleCalendarClient"]

# A prepared SDK request (googleapiclient.http.HttpRequest), built from the service resource.
Prepare = Callable[[Any], Any]


class GoogleCalendarClient:
    """One connection's Calendar API: typed calls in, plain event JSON out, integration errors raised."""

    def __init__(self, base_url: str, tokens: TokenManager, resilience: Resilience) -> None:
        self._tokens = tokens
        self._resilience = resilience
        # The discovery document ships inside the SDK (static_discovery), so building makes no request.
        # `http=` is only a placeholder: every request runs on its own Http with that attempt's timeout,
        # and the Authorization header comes from TokenManager, the one owner of the tokens.
        self._service = build(
            "calendar",
            "v3",
            http=httplib2.Http(),
            client_options={"api_endpoint": f"{base_url}/calendar/v3/"},
            static_discovery=True,
            cache_discovery=False,
        )

    async def get_calendar(self, calendar_id: str) -> dict[str, Any]:
        """The calendar's metadata (id, summary, timeZone)."""
        # https://developers.google.com/workspace/calendar/api/v3/reference/calendars/get
        return await self._run(lambda s: s.calendars().get(calendarId=calendar_id), ("calendar", calendar_id))

    async def free_busy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict[str, Any]:
        """Busy intervals of every calendar in [start, end)."""
        body = {"timeMin": rfc3339(start), "timeMax": rfc3339(end), "items": [{"id": c} for c in calendar_ids]}
        # https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query
        return await self._run(lambda s: s.freebusy().query(body=body))

    async def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """One event, including a cancelled (deleted) one Google still remembers."""
        # https://developers.google.com/workspace/calendar/api/v3/reference/events/get
        return await self._run(
            lambda s: s.events().get(calendarId=calendar_id, eventId=event_id), ("appointment", event_id)
        )

    async def insert_event(self, calendar_id: str, body: dict[str, Any], send_updates: str) -> dict[str, Any]:
        """Create an event. A body `id` that already exists answers 409 (UpstreamError status 409)."""
        # https://developers.google.com/workspace/calendar/api/v3/reference/events/insert
        return await self._run(lambda s: s.events().insert(calendarId=calendar_id, body=body, sendUpdates=send_updates))

    async def patch_event(
        self, calendar_id: str, event_id: str, body: dict[str, Any], send_updates: str
    ) -> dict[str, Any]:
        """Change some fields of an event."""
        # https://developers.google.com/workspace/calendar/api/v3/reference/events/patch
        return await self._run(
            lambda s: s.events().patch(calendarId=calendar_id, eventId=event_id, body=body, sendUpdates=send_updates),
            ("appointment", event_id),
        )

    async def delete_event(self, calendar_id: str, event_id: str, send_updates: str) -> None:
        """Delete (cancel) an event. A second delete answers 410, raised as NotFoundError."""
        # https://developers.google.com/workspace/calendar/api/v3/reference/events/delete
        await self._run(
            lambda s: s.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates),
            ("appointment", event_id),
        )

    async def list_events(
        self,
        calendar_id: str,
        *,
        private_property: str,
        time_min: datetime,
        time_max: datetime | None = None,
        max_results: int = 250,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        """One page of single (expanded) events carrying a private extended property, by start time."""
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "privateExtendedProperty": private_property,
            "timeMin": rfc3339(time_min),
            "singleEvents": True,
            "orderBy": "startTime",
            "maxResults": max_results,
        }
        if time_max is not None:
            params["timeMax"] = rfc3339(time_max)
        if page_token:
            params["pageToken"] = page_token
        # https://developers.google.com/workspace/calendar/api/v3/reference/events/list
        return await self._run(lambda s: s.events().list(**params))

    async def _run(self, prepare: Prepare, subject: Subject | None = None) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            token = await self._tokens.token()
            try:
                return await asyncio.to_thread(self._send, prepare, token, subject)
            except UpstreamError as error:
                if error.status != 401:
                    raise
            # Google refused a token we thought valid (revoked or expired early): refresh once, retry once.
            token = await self._tokens.refresh(stale=token)
            return await asyncio.to_thread(self._send, prepare, token, subject)

        return await self._resilience.call(attempt)

    def _send(self, prepare: Prepare, token: str, subject: Subject | None) -> dict[str, Any]:
        request = prepare(self._service)
        request.headers["authorization"] = f"Bearer {token}"
        # A fresh Http per attempt: httplib2 objects are not thread-safe, and the timeout must be
        # what is left of this tool call's deadline now, not when the connector was built.
        http = httplib2.Http(timeout=self._resilience.attempt_timeout())
        try:
            answer = request.execute(http=http)
        except (HttpError, OSError, httplib2.HttpLib2Error, ValueError) as error:
            # `from None`: the SDK's exception text holds the request URL, which may carry a caller's phone.
            raise translate(error, subject) from None
        finally:
            http.close()
        if answer == "":
            return {}  # events.delete answers 204 with an empty body.
        if not isinstance(answer, dict):
            raise UpstreamError(PROVIDER, "unexpected answer shape from Google")
        return answer
