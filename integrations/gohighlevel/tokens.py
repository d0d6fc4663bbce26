"""Location access tokens for GoHighLevel: the shared `TokenManager`, taught GoHighLevel's refresh.

`POST /oauth/token` (form) with `grant_type=refresh_token`, `client_id`, `client_secret`,
`refresh_token` and `user_type=Location` (SPEC: apps/oauth.json GetAccessCodebodyDto) answers a
new access token (a day long) and a new refresh token. Refresh tokens are single-use (3P: the
OAuth FAQ of HighLevel's docs as quoted by developers; UNCONFIRMED in the spec): `TokenManager`
saves the `refresh_token` of every answer to the vault, so the next refresh uses the new one.

How GoHighLevel words a refused grant is UNCONFIRMED (OAuth's `invalid_grant`, or its NestJS
`{"statusCode": 401, "error": "Unauthorized"}`): any 400 or 401 from the token endpoint means the
stored grant no longer works, so both mark the connection expired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.common.oauth import TokenManager
from integrations.common.vault import CredentialVault
from integrations.gohighlevel.errors import PROVIDER

__all__ = ["LocationTokens"]


class LocationTokens(TokenManager):
    """`TokenManager` for one GoHighLevel location install, refreshing at `{base_url}/oauth/token`."""

    def __init__(self, base_url: str, vault: CredentialVault, clock: Callable[[], datetime], capability: str) -> None:
        # https://marketplace.gohighlevel.com/docs/ghl/oauth/get-access-token
        super().__init__(PROVIDER, capability, vault, f"{base_url.rstrip('/')}/oauth/token", clock=clock)
        self._owner_vault = vault

    async def _post(self, form: dict[str, str]) -> dict[str, object]:
        try:
            return await super()._post({**form, "user_type": "Location"})
        except UpstreamError as error:
            if error.retryable or error.status not in (400, 401):
                raise
            reason = "GoHighLevel refused the refresh token; reinstall the app on the location"
            await self._owner_vault.mark_expired(reason)
            raise ProviderNotConnectedError(self.capability, reason) from None
