"""Outlook calendar (Microsoft Graph v1.0, OAuth): free/busy-aware booking into a business's Outlook calendar."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.outlook_calendar.client import OutlookCalendarClient
from integrations.outlook_calendar.connector import OutlookCalendarConnector
from integrations.outlook_calendar.mappers import PROVIDER
from integrations.outlook_calendar.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TENANT,
    build_sandbox,
)
from integrations.outlook_calendar.settings import GRAPH_SCOPES, OutlookCalendarSettings

__all__ = ["SPEC", "OutlookCalendarConnector", "OutlookCalendarSettings", "build", "sandbox_connection"]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> OutlookCalendarConnector:
    """A connector for one connection: its own token manager, retry budget and circuit breaker."""
    if not isinstance(settings, OutlookCalendarSettings):
        settings = OutlookCalendarSettings.model_validate(settings.model_dump())
    rules = settings.rules(env.timezone)
    tokens = TokenManager(PROVIDER, "calendar", vault, settings.token_url, clock=env.clock, scope=GRAPH_SCOPES)
    client = OutlookCalendarClient(settings.base_url, settings.user, rules.timezone, tokens, Resilience(PROVIDER))
    return OutlookCalendarConnector(settings, rules, client, env.clock)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets that connect to the emulator served at `base_url` (Graph and login alike)."""
    return SandboxConnection(
        settings={
            "base_url": base_url,
            "login_url": base_url,
            "tenant": SANDBOX_TENANT,
            "timezone": "America/New_York",
        },
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name=PROVIDER,
    capabilities=frozenset({"calendar"}),
    description="Outlook calendar (Microsoft 365): offers free slots from free/busy and books callers as events.",
    docs_url="https://learn.microsoft.com/graph/api/resources/calendar-overview",
    settings_model=OutlookCalendarSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at"),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="oauth",
    # 10,000 per 10 minutes per app per mailbox.
    request_budget=RequestBudget(
        10_000, 600, source="https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits"
    ),
)
