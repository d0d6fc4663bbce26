"""Twilio Programmable Messaging: the `messaging` capability (SMS, and WhatsApp when the connection
has a WhatsApp sender), authenticated with an auth token."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.twilio.connector import TwilioMessaging
from integrations.twilio.sandbox import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FROM_NUMBER,
    SANDBOX_TEMPLATE_SIDS,
    SANDBOX_WHATSAPP_NUMBER,
    build_sandbox,
)
from integrations.twilio.settings import TwilioSettings
from integrations.twilio.webhooks import handle

__all__ = ["SPEC", "TwilioMessaging", "TwilioSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> TwilioMessaging:
    if not isinstance(settings, TwilioSettings):
        raise TypeError(f"twilio needs TwilioSettings, not {type(settings).__name__}")
    return TwilioMessaging(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={
            "base_url": base_url,
            "account_sid": SANDBOX_ACCOUNT_SID,
            "from_number": SANDBOX_FROM_NUMBER,
            "whatsapp_from": SANDBOX_WHATSAPP_NUMBER,
            "whatsapp_templates": dict(SANDBOX_TEMPLATE_SIDS),
        },
        secrets={"auth_token": SANDBOX_AUTH_TOKEN},
    )


SPEC = IntegrationSpec(
    name="twilio",
    capabilities=frozenset({"messaging"}),
    description="Twilio Programmable Messaging: texts callers from a Twilio number or Messaging Service, "
    "and sends WhatsApp messages (free text in the 24-hour window, approved templates outside it).",
    docs_url="https://www.twilio.com/docs/messaging/api/message-resource",
    settings_model=TwilioSettings,
    required_secrets=("auth_token",),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="api_key",
    webhook=handle,
)
