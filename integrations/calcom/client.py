"""The Cal.com API v2 requests this integration makes, over httpx (Cal.com has no Python SDK).

Every request sends the API key as a Bearer token and the `cal-api-version` its endpoint needs
(without it Cal.com silently answers with an older version of the endpoint). `send` is one
attempt; `call` runs it under `Resilience` (retries, Retry-After, circuit breaker, deadline).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from integrations.calcom.errors import Subject, translate, translate_transport
from integrations.calcom.mappers import PROVIDER
from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault

__all__ = ["BOOKINGS_VERSION", "EVENT_TYPES_VERSION", "SLOTS_VERSION", "CalcomClient"]

SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"
EVENT_TYPES_VERSION = "2024-06-14"

Params = Mapping[str, str | int]


class CalcomClient:
    """One connection's Cal.com API: typed calls in, the `data` of Cal.com's answer out."""

    def __init__(self, base_url: str, vault: CredentialVault, resilience: Resilience) -> None:
        self._base_url = base_url
        self._vault = vault
        self.resilience = resilience

    # -- the endpoints -------------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/me/get-my-profile
        return dict(await self.call("GET", "/v2/me"))

    async def slots(self, params: Params) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/slots/get-available-time-slots-for-an-event-type
        return dict(await self.call("GET", "/v2/slots", version=SLOTS_VERSION, params=params))

    async def reserve_slot(self, body: dict[str, Any]) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/slots/reserve-a-slot
        return dict(await self.call("POST", "/v2/slots/reservations", version=SLOTS_VERSION, body=body))

    async def delete_reservation(self, uid: str) -> None:
        # https://cal.com/docs/api-reference/v2/slots/delete-a-reservation
        await self.call("DELETE", f"/v2/slots/reservations/{uid}", version=SLOTS_VERSION)

    async def booking(self, uid: str) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/bookings/get-a-booking
        return dict(
            await self.call("GET", f"/v2/bookings/{uid}", version=BOOKINGS_VERSION, subject=("appointment", uid))
        )

    async def bookings_page(self, params: Params) -> tuple[list[dict[str, Any]], bool]:
        """One page of bookings and whether another follows."""
        # https://cal.com/docs/api-reference/v2/bookings/get-all-bookings
        answer = await self.call("GET", "/v2/bookings", version=BOOKINGS_VERSION, params=params, whole=True)
        pagination = answer.get("pagination") or {}
        return [b for b in answer.get("data") or [] if isinstance(b, dict)], bool(pagination.get("hasNextPage"))

    async def create_booking_once(self, body: dict[str, Any]) -> dict[str, Any]:
        """One attempt, never retried here: the connector looks before it retries a create."""
        # https://cal.com/docs/api-reference/v2/bookings/create-a-booking
        return dict(await self.send("POST", "/v2/bookings", version=BOOKINGS_VERSION, body=body))

    async def reschedule(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/bookings/reschedule-a-booking
        path = f"/v2/bookings/{uid}/reschedule"
        return dict(await self.call("POST", path, version=BOOKINGS_VERSION, body=body, subject=("appointment", uid)))

    async def cancel(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        # https://cal.com/docs/api-reference/v2/bookings/cancel-a-booking
        path = f"/v2/bookings/{uid}/cancel"
        return dict(await self.call("POST", path, version=BOOKINGS_VERSION, body=body, subject=("appointment", uid)))

    # -- plumbing --------------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        version: str | None = None,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
        whole: bool = False,
    ) -> Any:
        """`send` under Resilience: only for reads and writes that are safe to repeat."""

        async def attempt() -> Any:
            return await self.send(
                method, path, version=version, params=params, body=body, subject=subject, whole=whole
            )

        return await self.resilience.call(attempt)

    async def send(
        self,
        method: str,
        path: str,
        *,
        version: str | None = None,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
        whole: bool = False,
    ) -> Any:
        """One attempt; the answer's `data` (or the whole answer), or an IntegrationError."""
        api_key = (await self._vault.load()).get("api_key")
        if not api_key:
            raise ProviderNotConnectedError("calendar", "the calcom connection has no API key")
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if version:
            headers["cal-api-version"] = version
        # A client per attempt: its timeout is what this tool call's deadline leaves now.
        timeout = self.resilience.attempt_timeout()
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=timeout, verify=tls_context()) as client:
                answer = await client.request(method, path, headers=headers, params=params, json=body)
        except httpx.HTTPError as error:
            # `from None`: httpx's text holds the URL, whose query may carry a caller's email.
            raise translate_transport(error) from None
        if answer.status_code >= 400:
            refused = translate(answer.status_code, answer.content, answer.headers, subject)
            if isinstance(refused, ProviderNotConnectedError):
                # The key was deleted or expired: the connection must be redone by a person.
                await self._vault.mark_expired(str(refused))
            raise refused
        try:
            decoded = answer.json()
        except ValueError:
            raise UpstreamError(PROVIDER, "unreadable answer from Cal.com", retryable=True) from None
        if not isinstance(decoded, dict) or decoded.get("status") != "success":
            raise UpstreamError(PROVIDER, "unexpected answer shape from Cal.com")
        return decoded if whole else (decoded.get("data") or {})
