"""SendGrid v3 Mail Send: the `email` capability, authenticated with an API key, with the signed Event Webhook."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.sendgrid.connector import SendGridEmail
from integrations.sendgrid.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY,
    SANDBOX_FROM_EMAIL,
    build_sandbox,
)
from integrations.sendgrid.settings import SendGridSettings
from integrations.sendgrid.webhooks import PUBLIC_KEY_SECRET, handle

__all__ = ["SPEC", "SendGridEmail", "SendGridSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> SendGridEmail:
    if not isinstance(settings, SendGridSettings):
        raise TypeError(f"sendgrid needs SendGridSettings, not {type(settings).__name__}")
    return SendGridEmail(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    # The public key is derived from a fixed sandbox-only private key, so any process can hand it out.
    return SandboxConnection(
        settings={"base_url": base_url, "from_email": SANDBOX_FROM_EMAIL, "from_name": "Sandbox Front Desk"},
        secrets={"api_key": SANDBOX_API_KEY, PUBLIC_KEY_SECRET: SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY},
    )


SPEC = IntegrationSpec(
    name="sendgrid",
    capabilities=frozenset({"email"}),
    description="SendGrid: emails callers from a verified sender, as plain text or a dynamic template.",
    docs_url="https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send",
    settings_model=SendGridSettings,
    required_secrets=("api_key",),
    optional_secrets=(PUBLIC_KEY_SECRET,),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="api_key",
    webhook=handle,
)
