"""OAuth 2 access tokens that refresh themselves: before expiry, and once on a 401.

Google and HubSpot both refresh with a form POST of
`grant_type=refresh_token&client_id&client_secret&refresh_token` to their token endpoint and
answer `{access_token, expires_in, …}`; a revoked refresh token answers 400 `invalid_grant`.
A revoked grant marks the connection expired in the vault and raises
`ProviderNotConnectedError`, which tools turn into NOT_CONNECTED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from integrations.capabilities.errors import ProviderNotConnectedError, RateLimitedError, UpstreamError
from integrations.common.deadline import remaining
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault

__all__ = ["TokenManager"]

# Refresh this long before the token's stated expiry, so no request starts with a dying token.
_EARLY = timedelta(seconds=60)
# How often, and how far apart, a refused refresh token is checked for a replacement saved elsewhere.
_ROTATION_CHECKS = 3
_ROTATION_WAIT_SECONDS = 0.2


class TokenManager:
    """Hands out a valid access token for one OAuth connection.

    The vault holds `access_token`, `refresh_token`, `expires_at` (ISO 8601), `client_id` and
    `client_secret`. Refreshes are serialized per manager so concurrent calls refresh once.
    """

    def __init__(
        self,
        provider: str,
        capability: str,
        vault: CredentialVault,
        token_url: str,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        scope: str | None = None,
    ) -> None:
        self.provider = provider
        self.capability = capability
        self._vault = vault
        self._token_url = token_url
        self._clock = clock
        self._transport = transport
        self._lock = asyncio.Lock()
        # Microsoft's identity platform wants the scopes again on every refresh ("… offline_access").
        self._scope = scope

    async def token(self) -> str:
        """A token valid for at least a minute, refreshing first if needed."""
        secrets = await self._vault.load()
        if secrets.get("access_token") and not self._expiring(secrets):
            return secrets["access_token"]
        return await self.refresh(stale=secrets.get("access_token"))

    async def refresh(self, *, stale: str | None = None) -> str:
        """A new token. `stale` is the token that failed: if another call already replaced it,
        that replacement is returned instead of refreshing again."""
        async with self._lock:
            secrets = await self._vault.load()
            current = secrets.get("access_token")
            if current and current != stale and not self._expiring(secrets):
                return current
            refresh_token = secrets.get("refresh_token")
            if not refresh_token:
                await self._vault.mark_expired("no refresh token stored")
                raise ProviderNotConnectedError(self.capability, f"{self.provider} connection has no refresh token")
            form = {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": secrets.get("client_id", ""),
                "client_secret": secrets.get("client_secret", ""),
            }
            if self._scope:
                form["scope"] = self._scope
            try:
                answer = await self._post(form)
            except _GrantRefusedError as refused:
                rotated = await self._rotated_elsewhere(refresh_token)
                if rotated is None:
                    await self._vault.mark_expired(refused.reason)
                    raise ProviderNotConnectedError(self.capability, refused.reason) from None
                if rotated.get("access_token") and not self._expiring(rotated):
                    return rotated["access_token"]
                form["refresh_token"] = rotated["refresh_token"]
                answer = await self._post_or_expire(form)
            expires_at = self._clock() + timedelta(seconds=int(str(answer.get("expires_in", 3600))))
            updates = {"access_token": str(answer["access_token"]), "expires_at": expires_at.isoformat()}
            if answer.get("refresh_token"):
                updates["refresh_token"] = str(answer["refresh_token"])
            await self._vault.save(updates)
            return str(updates["access_token"])

    async def _rotated_elsewhere(self, used: str) -> dict[str, str] | None:
        """The secrets, if another process (or a connection sharing this grant) replaced the
        refresh token `used` since it was read; None when it is still the stored one.

        Providers whose refresh tokens are single-use (GoHighLevel) refuse a token another
        process has just spent. Its replacement reaches the vault once that process saves it, a
        moment after its own refresh answer: look a few times before calling the grant revoked.
        """
        for attempt in range(_ROTATION_CHECKS):
            if attempt:
                await asyncio.sleep(_ROTATION_WAIT_SECONDS)
            secrets = await self._vault.reload()
            if secrets.get("refresh_token") and secrets["refresh_token"] != used:
                return secrets
        return None

    async def _post_or_expire(self, form: dict[str, str]) -> dict[str, object]:
        try:
            return await self._post(form)
        except _GrantRefusedError as refused:
            await self._vault.mark_expired(refused.reason)
            raise ProviderNotConnectedError(self.capability, refused.reason) from None

    def _expiring(self, secrets: dict[str, str]) -> bool:
        raw = secrets.get("expires_at")
        if not raw:
            return False
        expires_at = datetime.fromisoformat(raw)
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return expires_at - _EARLY <= self._clock()

    async def _post(self, form: dict[str, str]) -> dict[str, object]:
        timeout = max(0.1, min(10.0, remaining()))
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=timeout, verify=tls_context()) as client:
                response = await client.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise UpstreamError(self.provider, "token endpoint timed out", retryable=True) from None
        except httpx.HTTPError as error:
            raise UpstreamError(
                self.provider, f"token endpoint unreachable ({type(error).__name__})", retryable=True
            ) from None
        if response.status_code == 429:
            raise RateLimitedError(self.provider, _retry_after(response))
        if response.status_code >= 500:
            raise UpstreamError(self.provider, "token endpoint failed", status=response.status_code, retryable=True)
        body = _json(response)
        if response.status_code in (400, 401) and body.get("error") == "invalid_client":
            reason = f"{self.provider} refused the OAuth client (invalid_client); reconnect the account"
            await self._vault.mark_expired(reason)
            raise ProviderNotConnectedError(self.capability, reason)
        if response.status_code in (400, 401) and body.get("error") == "invalid_grant":
            raise _GrantRefusedError(
                f"{self.provider} refused the refresh token (invalid_grant); reconnect the account"
            )
        if response.status_code != 200 or "access_token" not in body:
            raise UpstreamError(self.provider, "token refresh failed", status=response.status_code)
        return body


class _GrantRefusedError(Exception):
    """The token endpoint answered invalid_grant: revoked, or already spent by someone else."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None
