"""Square: customers, invoices and balances (accounting) and quick-pay payment links (payments), with an emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.square.connector import SquareConnector
from integrations.square.sandbox import SANDBOX_ACCESS_TOKEN, SANDBOX_LOCATION_ID, SANDBOX_SIGNATURE_KEY, build_sandbox
from integrations.square.settings import SquareSettings
from integrations.square.webhooks import handle

__all__ = ["SPEC", "SquareConnector", "SquareSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> SquareConnector:
    if not isinstance(settings, SquareSettings):
        raise TypeError(f"square needs SquareSettings, got {type(settings).__name__}")
    return SquareConnector(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={"base_url": base_url, "location_id": SANDBOX_LOCATION_ID},
        secrets={"access_token": SANDBOX_ACCESS_TOKEN, "webhook_signature_key": SANDBOX_SIGNATURE_KEY},
    )


SPEC = IntegrationSpec(
    name="square",
    capabilities=frozenset({"accounting", "payments"}),
    description="Square: customers, invoices (order → invoice → publish, paid on Square's page) and quick-pay links.",
    docs_url="https://developer.squareup.com/reference/square",
    settings_model=SquareSettings,
    required_secrets=("access_token",),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="api_key",
    # The webhook subscription's signature key: paid invoices reach the server as they happen.
    optional_secrets=("webhook_signature_key",),
    webhook=handle,
)
