"""Calendly (API v2, OAuth or personal access token): books callers into a Calendly event type."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.calendly.client import CalendlyClient, Credentials
from integrations.calendly.connector import CalendlyConnector
from integrations.calendly.errors import SchedulingLinkError
from integrations.calendly.mappers import PROVIDER
from integrations.calendly.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.calendly.sandbox_state import EVENT_TYPE_URI
from integrations.calendly.settings import CalendlySettings
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault

__all__ = [
    "SPEC",
    "CalendlyConnector",
    "CalendlySettings",
    "SchedulingLinkError",
    "build",
    "sandbox_connection",
]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> CalendlyConnector:
    """A connector for one connection: its own credentials, retry budget and circuit breaker."""
    if not isinstance(settings, CalendlySettings):
        settings = CalendlySettings.model_validate(settings.model_dump())
    tokens = TokenManager(PROVIDER, "calendar", vault, settings.token_url, clock=env.clock)
    client = CalendlyClient(
        settings.base_url,
        Credentials(vault, tokens),
        Resilience(PROVIDER),
        timeout_ceiling=settings.request_timeout_seconds,
    )
    return CalendlyConnector(settings, client, env.clock, env.timezone)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets (OAuth, so token refresh and revocation apply) for the emulator at `base_url`."""
    return SandboxConnection(
        settings={"base_url": base_url, "token_url": f"{base_url}/oauth/token", "event_type": EVENT_TYPE_URI},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name=PROVIDER,
    capabilities=frozenset({"calendar"}),
    description="Calendly: offers the event type's available times and books callers through the Scheduling API.",
    docs_url="https://developer.calendly.com/api-docs",
    settings_model=CalendlySettings,
    # Either a personal access token, or OAuth client id, secret and refresh token: neither set is
    # required on its own, so the connector says which is missing when it has neither.
    required_secrets=(),
    optional_secrets=(
        "personal_access_token",
        "client_id",
        "client_secret",
        "refresh_token",
        "access_token",
        "expires_at",
    ),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="oauth",
    # 500 per minute per user on paid plans (50 on Free).
    request_budget=RequestBudget(500, 60, source="https://developer.calendly.com/api-docs/overview/rate-limits"),
)
