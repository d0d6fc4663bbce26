"""Xero accounting: customers (contacts), ACCREC invoices, invoice emails and online links, with its emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.xero.connector import XeroConnector
from integrations.xero.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_TENANT_ID,
    SANDBOX_WEBHOOK_KEY,
    build_sandbox,
)
from integrations.xero.settings import XeroSettings
from integrations.xero.webhooks import WEBHOOK_KEY_SECRET, handle

__all__ = ["SPEC", "XeroConnector", "XeroSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> XeroConnector:
    if not isinstance(settings, XeroSettings):
        raise TypeError(f"xero needs XeroSettings, not {type(settings).__name__}")
    return XeroConnector(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={"base_url": base_url, "identity_url": base_url, "tenant_id": SANDBOX_TENANT_ID},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
            WEBHOOK_KEY_SECRET: SANDBOX_WEBHOOK_KEY,
        },
    )


SPEC = IntegrationSpec(
    name="xero",
    capabilities=frozenset({"accounting"}),
    description=(
        "Xero accounting: find customers by phone (any stored format) or email, create customers and "
        "invoices once per key, list open invoices and balances, email an invoice with its online pay link. "
        "OAuth 2 app connected to one organisation (tenant_id)."
    ),
    docs_url="https://developer.xero.com/documentation/api/accounting/overview",
    settings_model=XeroSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    # The app's webhook key (its Webhooks page): changed invoices reach the server as they happen.
    optional_secrets=("access_token", "expires_at", WEBHOOK_KEY_SECRET),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="oauth",
    webhook=handle,
    # 60 per minute per tenant.
    request_budget=RequestBudget(60, 60, source="https://developer.xero.com/documentation/guides/oauth2/limits/"),
)
