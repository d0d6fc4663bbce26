"""Location access tokens for GoHighLevel: the shared `TokenManager`, taught GoHighLevel's refresh.

`POST /oauth/token` (form) with `grant_type=refresh_token`, `client_id`, `client_secret`,
`refresh_token` and `user_type=Location` (SPEC: apps/oauth.json GetAccessCodebodyDto) answers a
new access token (a day long) and a new refresh token. Refresh tokens are single-use (3P: the
OAuth FAQ of HighLevel's docs as quoted by developers; UNCONFIRMED in the spec): `TokenManager`
saves the `refresh_token` of every answer to the vault, so the next refresh uses the new one, and
reloads the vault when a spent token is refused (another process may have rotated it).

How GoHighLevel words a refused grant is UNCONFIRMED: OAuth's `{"error": "invalid_grant"}`, or
its NestJS `{"statusCode": 401, "message": …, "error": "Unauthorized"}`. `GrantDialect` is the
transport the token requests go through: it rewrites any other 400 or 401 answer of the token
endpoint into OAuth's `invalid_grant`, so the shared code treats both the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import httpx

from integrations.common.oauth import TokenManager
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.gohighlevel.errors import PROVIDER

__all__ = ["GrantDialect", "LocationTokens"]

_OAUTH_CODES = frozenset({"invalid_grant", "invalid_client"})
# Hop-by-hop and encoding headers describe the bytes as received, not the body passed on.
_STALE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "content-type"})


class GrantDialect(httpx.AsyncBaseTransport):
    """An httpx transport for the token endpoint that reports every refused grant the OAuth way."""

    def __init__(self, inner: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        # The shared verifying TLS context: a client's `verify` does not reach a transport it is given.
        self._inner = inner or (lambda: httpx.AsyncHTTPTransport(verify=tls_context()))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A fresh inner transport per request: httpx closes the one it was given with each client.
        async with self._inner() as transport:
            response = await transport.handle_async_request(request)
            content = await response.aread()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _STALE_HEADERS]
        if response.status_code in (400, 401) and _oauth_code(content) not in _OAUTH_CODES:
            content = json.dumps({"error": "invalid_grant", "error_description": "refresh refused"}).encode()
        headers.append(("content-type", response.headers.get("content-type", "application/json")))
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def _oauth_code(content: bytes) -> str | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) else None


class LocationTokens(TokenManager):
    """`TokenManager` for one GoHighLevel location install, refreshing at `{base_url}/oauth/token`."""

    def __init__(self, base_url: str, vault: CredentialVault, clock: Callable[[], datetime], capability: str) -> None:
        # https://marketplace.gohighlevel.com/docs/ghl/oauth/get-access-token
        super().__init__(
            PROVIDER,
            capability,
            vault,
            f"{base_url.rstrip('/')}/oauth/token",
            clock=clock,
            transport=GrantDialect(),
        )

    async def _post(self, form: dict[str, str]) -> dict[str, object]:
        # Location tokens: GoHighLevel issues Company tokens too, and takes the type on every grant.
        return await super()._post({**form, "user_type": "Location"})
