"""GoHighLevel (LeadConnector API v2): a sub-account's contacts, notes and calendar, with its emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.gohighlevel.client import GhlClient
from integrations.gohighlevel.connector import GoHighLevelConnector
from integrations.gohighlevel.errors import PROVIDER
from integrations.gohighlevel.sandbox import (
    CALENDAR_ID,
    LOCATION_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.gohighlevel.settings import GoHighLevelSettings
from integrations.gohighlevel.tokens import LocationTokens

__all__ = ["SPEC", "GoHighLevelConnector", "GoHighLevelSettings", "build", "sandbox_connection"]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> GoHighLevelConnector:
    """A connector for one connection: its own tokens, retry budget, circuit breaker and key locks."""
    if not isinstance(settings, GoHighLevelSettings):
        settings = GoHighLevelSettings.model_validate(settings.model_dump())
    # The server builds one connector per capability connection: token failures name that capability.
    tokens = LocationTokens(settings.base_url, vault, env.clock, env.capability or "crm")
    client = GhlClient(settings.base_url, vault, tokens, Resilience(PROVIDER))
    return GoHighLevelConnector(settings, settings.zone(env.timezone), client, env.clock)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets that connect to the emulator served at `base_url`."""
    return SandboxConnection(
        settings={
            "base_url": base_url,
            "location_id": LOCATION_ID,
            "calendar_id": CALENDAR_ID,
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
    capabilities=frozenset({"crm", "calendar"}),
    description=(
        "GoHighLevel (LeadConnector): find callers by phone (any typed format) or email, create and update "
        "contacts, add notes, and book, move and cancel appointments on one calendar of a sub-account. "
        "OAuth app installed on the location, or a Private Integration token stored alone as access_token."
    ),
    docs_url="https://marketplace.gohighlevel.com/docs/",
    settings_model=GoHighLevelSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at"),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="oauth",
    # Burst 100 per 10 s per app per location.
    request_budget=RequestBudget(100, 10, source="https://marketplace.gohighlevel.com/docs/other/rate-limits"),
)
