"""The LeadConnector API v2 requests this integration makes, over httpx.

Why httpx and not the official SDK: GoHighLevel does publish one (`gohighlevel-api-client` 3.0.0
on PyPI), but it is not in this project's stack, and it always sends `Version: v3` (providers.md
§7, VERIFIED there), while the v2 endpoints used here document `2021-07-28` (contacts) and
`2021-04-15` (calendars). Its emulator hook is a class attribute (`HighLevel.BASE_URL`), shared
by every connection in the process. A thin httpx client sends exactly what the spec documents.

Every request sends the location's access token as a Bearer token and the `Version` its endpoint
documents. `send` is one attempt; `call` runs it under `Resilience` (retries, Retry-After, circuit
breaker, deadline), and both refresh the token once on a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.gohighlevel.errors import PROVIDER, Subject, translate, translate_transport
from integrations.gohighlevel.tokens import LocationTokens

__all__ = ["CALENDARS_VERSION", "CONTACTS_VERSION", "GhlClient"]

# SPEC: the `Version` header enum of each operation in apps/contacts.json and apps/calendars.json.
CONTACTS_VERSION = "2021-07-28"
CALENDARS_VERSION = "2021-04-15"

Params = Mapping[str, str | int]


class GhlClient:
    """One connection's LeadConnector API: method, path and body in, the decoded JSON answer out."""

    def __init__(self, base_url: str, vault: CredentialVault, tokens: LocationTokens, resilience: Resilience) -> None:
        self._base_url = base_url
        self._vault = vault
        self._tokens = tokens
        self.resilience = resilience

    async def call(
        self,
        method: str,
        path: str,
        *,
        version: str,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        """`send` under Resilience: only for reads and writes that are safe to repeat."""

        async def attempt() -> dict[str, Any]:
            return await self.send(method, path, version=version, params=params, body=body, subject=subject)

        return await self.resilience.call(attempt)

    async def send(
        self,
        method: str,
        path: str,
        *,
        version: str,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        """One attempt (plus one more with a refreshed token after a 401)."""
        token = await self._tokens.token()
        try:
            return await self._once(token, method, path, version, params, body, subject)
        except UpstreamError as error:
            if error.status != 401:
                raise
        fresh = await self._refresh(token)
        try:
            return await self._once(fresh, method, path, version, params, body, subject)
        except UpstreamError as error:
            if error.status != 401:
                raise
            raise UpstreamError(PROVIDER, "GoHighLevel refused a freshly issued access token", status=401) from None

    async def _refresh(self, stale: str) -> str:
        secrets = await self._vault.load()
        if not secrets.get("refresh_token"):
            # A Private Integration token: nothing to refresh it with, so the 401 means it was revoked.
            reason = "GoHighLevel refused the Private Integration token; store a new one"
            await self._vault.mark_expired(reason)
            raise ProviderNotConnectedError(self._tokens.capability, reason)
        return await self._tokens.refresh(stale=stale)

    async def _once(
        self,
        token: str,
        method: str,
        path: str,
        version: str,
        params: Params | None,
        body: dict[str, Any] | None,
        subject: Subject | None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", "Version": version, "Accept": "application/json"}
        # A client per attempt: its timeout is what this tool call's deadline leaves now.
        timeout = self.resilience.attempt_timeout()
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=timeout, verify=tls_context()) as client:
                answer = await client.request(method, path, headers=headers, params=params, json=body)
        except httpx.HTTPError as error:
            # `from None`: httpx's text holds the URL, whose query may carry a caller's email.
            raise translate_transport(error) from None
        if answer.status_code >= 400:
            raise translate(answer.status_code, answer.content, answer.headers, subject)
        try:
            decoded = answer.json()
        except ValueError:
            raise UpstreamError(PROVIDER, "unreadable answer from GoHighLevel", retryable=True) from None
        if not isinstance(decoded, dict):
            raise UpstreamError(PROVIDER, "unexpected answer shape from GoHighLevel")
        return decoded
