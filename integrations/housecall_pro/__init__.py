"""Housecall Pro (public API v1, API key): customers as a CRM; jobs or estimates on its booking windows
as a calendar."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.housecall_pro.client import HousecallClient
from integrations.housecall_pro.connector import HousecallProConnector
from integrations.housecall_pro.errors import PROVIDER
from integrations.housecall_pro.sandbox import SANDBOX_API_KEY, build_sandbox
from integrations.housecall_pro.settings import HousecallProSettings

__all__ = ["SPEC", "HousecallProConnector", "HousecallProSettings", "build", "sandbox_connection"]


def build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> HousecallProConnector:
    """A connector for one connection: its own retry budget, circuit breaker and key locks."""
    if not isinstance(settings, HousecallProSettings):
        settings = HousecallProSettings.model_validate(settings.model_dump())
    client = HousecallClient(settings.base_url, vault, Resilience(PROVIDER), settings.company_id)
    return HousecallProConnector(settings, settings.zone(env.timezone), client, env.clock)


def sandbox_connection(base_url: str) -> SandboxConnection:
    """Settings and secrets that connect to the emulator served at `base_url`."""
    return SandboxConnection(
        settings={"base_url": base_url, "timezone": "America/New_York"},
        secrets={"api_key": SANDBOX_API_KEY},
    )


SPEC = IntegrationSpec(
    name=PROVIDER,
    capabilities=frozenset({"crm", "calendar"}),
    description=(
        "Housecall Pro: finds and creates customers (with notes), offers the company's online booking "
        "windows and books callers as jobs or estimates at their address."
    ),
    docs_url="https://docs.housecallpro.com/docs/housecall-public-api/",
    settings_model=HousecallProSettings,
    required_secrets=("api_key",),
    build=build,
    sandbox=build_sandbox,
    sandbox_connection=sandbox_connection,
    auth="api_key",
)
