"""QuickBooks Online accounting: customers, open invoices, balances and new invoices over OAuth 2, with an emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.quickbooks.connector import QuickBooksConnector
from integrations.quickbooks.sandbox import (
    REALM_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SANDBOX_VERIFIER_TOKEN,
    TOKEN_PATH,
    build_sandbox,
)
from integrations.quickbooks.settings import QuickBooksSettings
from integrations.quickbooks.webhooks import handle

__all__ = ["SPEC", "QuickBooksConnector", "QuickBooksSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> QuickBooksConnector:
    if not isinstance(settings, QuickBooksSettings):
        raise TypeError(f"quickbooks needs QuickBooksSettings, not {type(settings).__name__}")
    return QuickBooksConnector(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    base = base_url.rstrip("/")
    return SandboxConnection(
        settings={"base_url": base, "token_url": f"{base}{TOKEN_PATH}", "realm_id": REALM_ID},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
            "verifier_token": SANDBOX_VERIFIER_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name="quickbooks",
    capabilities=frozenset({"accounting"}),
    description=(
        "QuickBooks Online: find a caller's customer record by phone (any stored format) or email, read "
        "their open invoices and balance, create and email invoices with a pay link. OAuth 2 app install; "
        "the company's realm id is a setting."
    ),
    docs_url="https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice",
    settings_model=QuickBooksSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    # The app's webhook Verifier Token (Intuit developer portal → Webhooks → Show token): changed
    # invoices reach the server as they happen, at POST /webhooks/quickbooks/<connection_id>/events.
    optional_secrets=("access_token", "expires_at", "verifier_token"),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="oauth",
    webhook=handle,
    # 500 per minute per realm.
    request_budget=RequestBudget(
        500,
        60,
        source="https://developer.intuit.com/app/developer/qbo/docs/learn/rest-api-features#limits-and-throttles",
    ),
)
