"""OAuth tokens for HubSpot: the shared `TokenManager`, taught HubSpot's way of refusing a grant.

HubSpot's token endpoint does not answer a revoked or unknown refresh token with OAuth's
`{"error": "invalid_grant"}` but with its own body, HTTP 400:
`{"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token", "correlationId": …}`
(likewise `BAD_CLIENT_ID` for an unknown app). `TokenManager` only recognises the OAuth codes,
so it would report a transient-looking "token refresh failed" and never mark the connection
expired. `HubSpotTokenDialect` is the httpx transport `TokenManager` sends through: it rewrites
exactly those refusals into the OAuth body, so the shared code marks the vault expired and
raises `ProviderNotConnectedError` as for any other provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import httpx

from integrations.common.oauth import TokenManager
from integrations.common.vault import CredentialVault
from integrations.hubspot.errors import PROVIDER

__all__ = ["HubSpotTokenDialect", "token_manager"]

# HubSpot refusal status → the OAuth 2 error (RFC 6749 §5.2) it means.
_REFUSALS = {
    "BAD_REFRESH_TOKEN": "invalid_grant",
    "BAD_CLIENT_ID": "invalid_client",
    "BAD_CLIENT_SECRET": "invalid_client",
}
# Hop-by-hop and encoding headers describe the bytes as received, not the decoded body we pass on.
_STALE_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class HubSpotTokenDialect(httpx.AsyncBaseTransport):
    """An httpx transport for HubSpot's token endpoint that reports refused grants the OAuth way."""

    def __init__(self, inner: Callable[[], httpx.AsyncBaseTransport] = httpx.AsyncHTTPTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A fresh inner transport per request: refreshes are rare, and httpx closes the transport
        # it was given when each TokenManager request's client exits.
        async with self._inner() as transport:
            response = await transport.handle_async_request(request)
            content = await response.aread()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _STALE_HEADERS]
        refusal = _refusal(response.status_code, content)
        if refusal is not None:
            content = json.dumps(refusal).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("content-type", "application/json"))
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def _refusal(status: int, content: bytes) -> dict[str, str] | None:
    if status not in (400, 401):
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = _REFUSALS.get(str(body.get("status", "")))
    if code is None:
        return None
    return {"error": code, "error_description": str(body.get("message", ""))}


def token_manager(base_url: str, vault: CredentialVault, clock: Callable[[], datetime]) -> TokenManager:
    """The `TokenManager` for one HubSpot connection, refreshing at `{base_url}/oauth/v1/token`."""
    # https://developers.hubspot.com/docs/api/oauth/tokens
    return TokenManager(
        PROVIDER,
        "crm",
        vault,
        f"{base_url.rstrip('/')}/oauth/v1/token",
        clock=clock,
        transport=HubSpotTokenDialect(),
    )
