"""The Housecall Pro public API requests this integration makes, over httpx.

Housecall Pro publishes no Python SDK (PyPI holds only a third-party MCP server), so the
connector speaks its REST API with httpx. Every request sends the key as
`Authorization: Token <api_key>` and, for multi-location accounts, `X-Company-Id`. `send` is one
attempt; `call` runs it under `Resilience` (retries, Retry-After, circuit breaker, deadline).
Docs: https://docs.housecallpro.com (Stoplight; the spec copy is tests/specs/housecall_pro/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.resilience import Resilience
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.housecall_pro.errors import PROVIDER, Subject, translate, translate_transport

__all__ = ["HousecallClient", "Params"]

Params = Mapping[str, str | int | Sequence[str]]


class HousecallClient:
    """One connection's Housecall Pro API: typed calls in, decoded JSON out."""

    def __init__(
        self, base_url: str, vault: CredentialVault, resilience: Resilience, company_id: str | None = None
    ) -> None:
        self._base_url = base_url
        self._vault = vault
        self._company_id = company_id
        self.resilience = resilience

    async def call(
        self,
        method: str,
        path: str,
        *,
        capability: str,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        """`send` under Resilience: only for reads and writes that are safe to repeat."""

        async def attempt() -> dict[str, Any]:
            return await self.send(method, path, capability=capability, params=params, body=body, subject=subject)

        return await self.resilience.call(attempt)

    async def send(
        self,
        method: str,
        path: str,
        *,
        capability: str,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        subject: Subject | None = None,
    ) -> dict[str, Any]:
        """One attempt: the decoded answer, or an IntegrationError."""
        api_key = (await self._vault.load()).get("api_key")
        if not api_key:
            raise ProviderNotConnectedError(capability, "the housecall_pro connection has no API key")
        headers = {"Authorization": f"Token {api_key}", "Accept": "application/json"}
        if self._company_id:
            headers["X-Company-Id"] = self._company_id
        timeout = self.resilience.attempt_timeout()
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=timeout, verify=tls_context()) as client:
                answer = await client.request(method, path, headers=headers, params=_query(params), json=body)
        except httpx.HTTPError as error:
            # `from None`: httpx's text holds the URL, whose query may carry a caller's phone or email.
            raise translate_transport(error) from None
        if answer.status_code >= 400:
            refused = translate(
                answer.status_code, answer.content, answer.headers, capability=capability, subject=subject
            )
            if isinstance(refused, ProviderNotConnectedError):
                # The key was deleted, or the plan lost API access: a person must reconnect.
                await self._vault.mark_expired(str(refused))
            raise refused
        if not answer.content:
            return {}
        try:
            decoded = answer.json()
        except ValueError:
            raise UpstreamError(PROVIDER, "unreadable answer from Housecall Pro", retryable=True) from None
        if not isinstance(decoded, dict):
            raise UpstreamError(PROVIDER, "unexpected answer shape from Housecall Pro")
        return decoded


def _query(params: Params | None) -> list[tuple[str, str | int | float | bool | None]] | None:
    """Query pairs; lists go Rails-style as `name[]=value`, one pair per item (Housecall Pro's convention)."""
    if params is None:
        return None
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in params.items():
        if isinstance(value, str | int):
            pairs.append((name, value))
        else:
            pairs.extend((f"{name}[]", item) for item in value)
    return pairs
