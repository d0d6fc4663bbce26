"""Cal.com (API v2, API key): callers booked into a Cal.com event type, on Cal.com's own slots."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.calcom.client import CalcomClient
from integrations.calcom.connector import CalcomConnector
from integrations.calcom.mappers import PROVIDER
from integrations.calcom.sandbox import EVENT_TYPE_ID, SANDBOX_API_KEY, build_sandbox
from integrations.calcom.settings import CalcomSettings
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault

__all__ = ["SPEC", "CalcomConnector", "CalcomSettings", "build", "sandbox_connection"]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> CalcomConnector:
    """A connector for one connection: its own retry budget, circuit breaker and key locks."""
    if not isinstance(settings, CalcomSettings):
        settings = CalcomSettings.model_validate(settings.model_dump())
    client = CalcomClient(settings.base_url, vault, Resilience(PROVIDER))
    return CalcomConnector(settings, settings.zone(env.timezone), client, env.clock)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets that connect to the emulator served at `base_url`."""
    return SandboxConnection(
        settings={"base_url": base_url, "event_type_id": EVENT_TYPE_ID, "timezone": "America/New_York"},
        secrets={"api_key": SANDBOX_API_KEY},
    )


SPEC = IntegrationSpec(
    name=PROVIDER,
    capabilities=frozenset({"calendar"}),
    description="Cal.com: offers the slots of one Cal.com event type and books callers into it.",
    docs_url="https://cal.com/docs/api-reference/v2/introduction",
    settings_model=CalcomSettings,
    required_secrets=("api_key",),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="api_key",
    # 120 per minute per API key (unconfirmed: read on a mirror).
    request_budget=RequestBudget(120, 60, source="https://cal.com/docs/api-reference/v2/introduction"),
)
