"""Rotating bot tokens for Slack: the shared `TokenManager`, taught how `oauth.v2.access` says no.

With token rotation on, an install holds a 12-hour access token (`xoxe.xoxb-…`) and a refresh
token (`xoxe-1-…`). `POST oauth.v2.access` with `grant_type=refresh_token` answers a new access
token, `expires_in` (43200) and a new refresh token; the old refresh token is then revoked, so
`TokenManager` saves every answer's refresh token (https://docs.slack.dev/authentication/using-token-rotation).

Slack answers a refused refresh as it answers everything, HTTP 200 with `{"ok": false, "error":
"invalid_refresh_token"}` (or `invalid_client_id`, `bad_client_secret`), where `TokenManager`
expects OAuth's 400 `invalid_grant`/`invalid_client`. `SlackTokenDialect` is the httpx transport
the refreshes go through: it rewrites Slack's refusals into OAuth's answers, its failures into a
503 and its rate limit into a 429, so the shared code expires the connection (or retries) as it
does for every other provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import httpx

from integrations.common.oauth import TokenManager
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.slack.errors import PROVIDER

__all__ = ["SlackTokenDialect", "token_manager"]

# https://docs.slack.dev/reference/methods/oauth.v2.access#errors → the OAuth 2 answer (RFC 6749 §5.2).
_REFUSALS = {
    "invalid_refresh_token": (400, "invalid_grant"),
    "invalid_code": (400, "invalid_grant"),
    "invalid_client_id": (401, "invalid_client"),
    "bad_client_secret": (401, "invalid_client"),
    "invalid_grant_type": (400, "unsupported_grant_type"),
    "ratelimited": (429, "slow_down"),
    "fatal_error": (503, "temporarily_unavailable"),
    "internal_error": (503, "temporarily_unavailable"),
    "service_unavailable": (503, "temporarily_unavailable"),
}
# Hop-by-hop and encoding headers describe the bytes as received, not the body passed on.
_STALE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "content-type"})


class SlackTokenDialect(httpx.AsyncBaseTransport):
    """An httpx transport for `oauth.v2.access` that reports Slack's `ok: false` answers the OAuth way."""

    def __init__(self, inner: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        # The shared verifying TLS context: a client's `verify` does not reach a transport it is given.
        self._inner = inner or (lambda: httpx.AsyncHTTPTransport(verify=tls_context()))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A fresh inner transport per request: httpx closes the one it was given with each client.
        async with self._inner() as transport:
            response = await transport.handle_async_request(request)
            content = await response.aread()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _STALE_HEADERS]
        status = response.status_code
        code = _refused_code(status, content)
        if code is not None:
            status, oauth_error = _REFUSALS.get(code, (400, code))
            content = json.dumps({"error": oauth_error, "error_description": code}).encode()
        headers.append(("content-type", "application/json"))
        return httpx.Response(status, headers=headers, content=content, request=request)


def _refused_code(status: int, content: bytes) -> str | None:
    """Slack's error code when this is an `ok: false` answer, else None."""
    if status != 200:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("ok") is not False:
        return None
    return str(body.get("error") or "unknown_error")


def token_manager(
    base_url: str, vault: CredentialVault, clock: Callable[[], datetime], capability: str = "team"
) -> TokenManager:
    """The `TokenManager` for one Slack install, refreshing at `{base_url}oauth.v2.access`."""
    # https://docs.slack.dev/reference/methods/oauth.v2.access
    return TokenManager(
        PROVIDER,
        capability,
        vault,
        f"{base_url.rstrip('/')}/oauth.v2.access",
        clock=clock,
        transport=SlackTokenDialect(),
    )
