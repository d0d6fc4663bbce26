"""HubSpot CRM: contacts, notes and call logs, over OAuth (or a private-app token), with its sandbox emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.hubspot.connector import HubSpotConnector
from integrations.hubspot.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.hubspot.settings import HubSpotSettings

__all__ = ["SPEC", "HubSpotConnector", "HubSpotSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> HubSpotConnector:
    if not isinstance(settings, HubSpotSettings):
        raise TypeError(f"hubspot needs HubSpotSettings, not {type(settings).__name__}")
    return HubSpotConnector(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={"base_url": base_url},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name="hubspot",
    capabilities=frozenset({"crm"}),
    description=(
        "HubSpot CRM: find callers by phone (any stored format) or email, create and update contacts, "
        "add notes, log finished calls. OAuth app install, or a private-app token stored alone as access_token."
    ),
    docs_url="https://developers.hubspot.com/docs/guides/api/crm/objects/contacts",
    settings_model=HubSpotSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at"),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="oauth",
    # Private apps on Free/Starter, 100 per 10 s.
    request_budget=RequestBudget(
        100, 10, source="https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details"
    ),
)
