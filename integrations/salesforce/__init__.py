"""Salesforce CRM: find callers among Contacts and Leads, create them, and log notes and calls as Tasks.

OAuth 2.0 web-server flow (refresh token) against the login host; REST over httpx against the
org's `instance_url`. See `connector.SalesforceConnector` and `client` for why not simple-salesforce.
"""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.salesforce.connector import SalesforceConnector
from integrations.salesforce.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.salesforce.settings import SalesforceSettings

__all__ = ["SPEC", "SalesforceConnector", "SalesforceSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> SalesforceConnector:
    if not isinstance(settings, SalesforceSettings):
        raise TypeError(f"salesforce needs SalesforceSettings, not {type(settings).__name__}")
    return SalesforceConnector(settings, vault, env)


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
    name="salesforce",
    capabilities=frozenset({"crm"}),
    description=(
        "Salesforce CRM: find callers among Contacts and Leads by phone (any stored format) or email, "
        "create a Contact or a Lead (setting create_as), add notes and log finished calls as Tasks. "
        "OAuth connected app (client_id, client_secret, refresh_token)."
    ),
    docs_url="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm",
    settings_model=SalesforceSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at", "instance_url"),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="oauth",
)
