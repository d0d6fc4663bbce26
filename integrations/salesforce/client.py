"""Salesforce REST over httpx, against the `instance_url` of the org's OAuth token answer.

simple-salesforce (the community client; Salesforce publishes no Python SDK) is not in this
project's stack: it is synchronous `requests`, hard-codes `https://{instance}` and would need a
transport shim to reach the emulator. The handful of REST calls below are plain HTTP, so they go
over httpx like the other SDK-less providers (Cal.com, Calendly).

Requests are sent through an `httpx.AsyncHTTPTransport` directly rather than an `AsyncClient`:
the client logs every request URL at INFO, and here the URL holds the org's `instance_url` (kept
in the vault) and SOSL/SOQL text with a caller's phone or email in it.

OAuth: the web-server flow's refresh token is exchanged at `<login base>/services/oauth2/token`
(`SalesforceTokens`, the shared `TokenManager` taught to keep the answer's `instance_url`).
Salesforce's token answer carries no `expires_in` (sessions last the org's timeout, 2 hours by
default), so the shared default of an hour applies, and a 401 INVALID_SESSION_ID refreshes early.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.salesforce.errors import PROVIDER, ApiUsage, api_usage, translate, translate_transport

__all__ = ["SalesforceClient", "SalesforceTokens"]

logger = logging.getLogger(__name__)

# Warn once usage passes this share of the org's daily allocation.
_USAGE_WARNING = 0.9


class SalesforceTokens(TokenManager):
    """`TokenManager` for `<login base>/services/oauth2/token` that also stores the answer's `instance_url`."""

    def __init__(self, login_base: str, vault: CredentialVault, clock: Callable[[], datetime]) -> None:
        # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
        super().__init__(PROVIDER, "crm", vault, f"{login_base.rstrip('/')}/services/oauth2/token", clock=clock)
        self._vault_ref = vault

    async def _post(self, form: dict[str, str]) -> dict[str, object]:
        answer = await super()._post(form)
        instance_url = answer.get("instance_url")
        if not isinstance(instance_url, str) or not instance_url.startswith(("https://", "http://")):
            raise UpstreamError(PROVIDER, "token answer without an instance_url")
        # Saved before the access token: a token is never stored without the host it belongs to.
        await self._vault_ref.save({"instance_url": instance_url.rstrip("/")})
        return answer


class SalesforceClient:
    """One connection's REST API: `send` is one attempt; `call` runs it under `Resilience`."""

    def __init__(self, api_version: str, vault: CredentialVault, resilience: Resilience) -> None:
        self._prefix = f"/services/data/{api_version}"
        self._vault = vault
        self.resilience = resilience
        # The last `Sforce-Limit-Info: api-usage=n/m` seen, for operators and `check_connection`.
        self.api_usage: ApiUsage | None = None

    async def call(self, attempt: Callable[[], Any]) -> Any:
        return await self.resilience.call(attempt)

    async def send(
        self,
        token: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        record: tuple[str, str] | None = None,
    ) -> Any:
        """One request to `{instance_url}/services/data/vXX.X{path}` (or to `path` itself when it
        already starts with /services/, as `nextRecordsUrl` does). The decoded JSON, None for 204."""
        instance_url = (await self._vault.load()).get("instance_url")
        if not instance_url:
            raise ProviderNotConnectedError("crm", "the salesforce connection has no instance_url; reconnect it")
        full = path if path.startswith("/services/") else f"{self._prefix}{path}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode()
        timeout = self.resilience.attempt_timeout()
        request = httpx.Request(
            method,
            httpx.URL(instance_url + full, params=params),
            headers=headers,
            content=content,
            extensions={"timeout": httpx.Timeout(timeout).as_dict()},
        )
        try:
            async with httpx.AsyncHTTPTransport(verify=tls_context()) as transport:
                response = await transport.handle_async_request(request)
                raw = await response.aread()
        except httpx.HTTPError as error:
            # `from None`: httpx's text may hold the URL, which names the org and a caller's phone.
            raise translate_transport(error) from None
        self._note_usage(response.headers)
        if response.status_code >= 400:
            raise translate(response.status_code, raw, response.headers, record)
        if response.status_code == 204 or not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamError(PROVIDER, "unreadable answer from Salesforce", retryable=True) from None

    def _note_usage(self, headers: Mapping[str, str]) -> None:
        usage = api_usage(headers)
        if usage is None:
            return
        self.api_usage = usage
        used, allowed = usage
        if allowed and used >= allowed * _USAGE_WARNING:
            logger.warning("salesforce org has used %d of its %d daily API requests", used, allowed)
