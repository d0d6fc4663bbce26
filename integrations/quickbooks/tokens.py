"""OAuth tokens for QuickBooks: the shared `TokenManager`, sending client credentials Intuit's way.

Intuit's token endpoint wants the app's credentials as HTTP Basic (`client_id:client_secret`), not
in the form `TokenManager` posts. `IntuitBasicAuth` is the httpx transport `TokenManager` sends
through: it moves the two fields from the form into the `Authorization` header. Intuit answers
every refresh with a new `refresh_token` (the old one stops working some time later), and
`TokenManager` stores it in the vault, so the rotated token is the one used next time.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import httpx

from integrations.common.oauth import TokenManager
from integrations.common.vault import CredentialVault
from integrations.quickbooks.errors import PROVIDER

__all__ = ["IntuitBasicAuth", "token_manager"]


class IntuitBasicAuth(httpx.AsyncBaseTransport):
    """An httpx transport for Intuit's token endpoint: client credentials as Basic auth."""

    def __init__(self, inner: Callable[[], httpx.AsyncBaseTransport] = httpx.AsyncHTTPTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl((await request.aread()).decode()))
        client_id = form.pop("client_id", "")
        client_secret = form.pop("client_secret", "")
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in ("content-length",)]
        headers.append(("Authorization", f"Basic {basic}"))
        rewritten = httpx.Request(request.method, request.url, headers=headers, content=urlencode(form).encode())
        rewritten.extensions = request.extensions
        # A fresh inner transport per request: refreshes are rare, and httpx closes the transport
        # it was given when each TokenManager request's client exits.
        async with self._inner() as transport:
            response = await transport.handle_async_request(rewritten)
            content = await response.aread()
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding", "connection")
        ]
        return httpx.Response(response.status_code, headers=kept, content=content, request=request)


def token_manager(token_url: str, vault: CredentialVault, clock: Callable[[], datetime]) -> TokenManager:
    """The `TokenManager` for one QuickBooks connection."""
    # https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0#refresh-the-token
    return TokenManager(PROVIDER, "accounting", vault, token_url, clock=clock, transport=IntuitBasicAuth())
