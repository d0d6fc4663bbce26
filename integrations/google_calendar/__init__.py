"""Google Calendar (API v3, OAuth): free/busy-aware booking into a business's Google calendar."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.google_calendar.client import GoogleCalendarClient
from integrations.google_calendar.connector import GoogleCalendarConnector
from integrations.google_calendar.mappers import PROVIDER
from integrations.google_calendar.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.google_calendar.settings import GoogleCalendarSettings

__all__ = ["SPEC", "GoogleCalendarConnector", "GoogleCalendarSettings", "build", "sandbox_connection"]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> GoogleCalendarConnector:
    """A connector for one connection: its own token manager, retry budget and circuit breaker."""
    if not isinstance(settings, GoogleCalendarSettings):
        settings = GoogleCalendarSettings.model_validate(settings.model_dump())
    tokens = TokenManager(PROVIDER, "calendar", vault, settings.token_url, clock=env.clock)
    client = GoogleCalendarClient(settings.base_url, tokens, Resilience(PROVIDER))
    return GoogleCalendarConnector(settings, settings.rules(env.timezone), client, env.clock)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets that connect to the emulator served at `base_url`."""
    return SandboxConnection(
        settings={"base_url": base_url, "token_url": f"{base_url}/token", "calendar_ids": ["primary"]},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name=PROVIDER,
    capabilities=frozenset({"calendar"}),
    description="Google Calendar: offers free slots from free/busy and books callers as calendar events.",
    docs_url="https://developers.google.com/workspace/calendar/api/v3/reference",
    settings_model=GoogleCalendarSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at"),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="oauth",
    # 600 per minute per user per project.
    request_budget=RequestBudget(600, 60, source="https://developers.google.com/workspace/calendar/api/guides/quota"),
)
