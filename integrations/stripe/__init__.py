"""Stripe: payment links as hosted Checkout Sessions (payments), customers and emailed invoices (accounting),
with an offline emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.stripe.connector import StripeConnector
from integrations.stripe.sandbox import SANDBOX_API_KEY, build_sandbox
from integrations.stripe.sandbox_events import SANDBOX_WEBHOOK_SECRET
from integrations.stripe.settings import StripeSettings
from integrations.stripe.webhooks import handle

__all__ = ["SPEC", "StripeConnector", "StripeSettings"]

# Where the emulator's "payer" lands after paying; Stripe fills in {CHECKOUT_SESSION_ID}.
SANDBOX_SUCCESS_URL = "https://example.com/paid?session_id={CHECKOUT_SESSION_ID}"


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> StripeConnector:
    if not isinstance(settings, StripeSettings):
        raise TypeError(f"stripe needs StripeSettings, got {type(settings).__name__}")
    return StripeConnector(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={"base_url": base_url, "success_url": SANDBOX_SUCCESS_URL},
        secrets={"api_key": SANDBOX_API_KEY, "webhook_secret": SANDBOX_WEBHOOK_SECRET},
    )


SPEC = IntegrationSpec(
    name="stripe",
    capabilities=frozenset({"accounting", "payments"}),
    description=(
        "Stripe: hosted Checkout payment links, paid by card; customers and invoices emailed by Stripe, "
        "paid on Stripe's hosted invoice page."
    ),
    docs_url="https://docs.stripe.com/api/checkout/sessions",
    settings_model=StripeSettings,
    required_secrets=("api_key",),
    # The webhook endpoint's signing secret (whsec_…): paid links and paid invoices reach the server as they happen.
    optional_secrets=("webhook_secret",),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="api_key",
    webhook=handle,
    # 25 per second in test mode and sandboxes (100 live).
    request_budget=RequestBudget(25, 1, source="https://docs.stripe.com/rate-limits"),
)
