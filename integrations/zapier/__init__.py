"""Zapier: the `automation` capability, through a Zap's catch hook URL (the connection's secret)."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.zapier.connector import ZapierAutomation
from integrations.zapier.sandbox import build_sandbox, hook_path
from integrations.zapier.settings import HOOK_URL, ZapierSettings

__all__ = ["SPEC", "ZapierAutomation", "ZapierSettings"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> ZapierAutomation:
    if not isinstance(settings, ZapierSettings):
        raise TypeError(f"zapier needs ZapierSettings, not {type(settings).__name__}")
    return ZapierAutomation(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    # Both the base URL and the hook point at the emulator, so the connector can reach nothing else.
    base = base_url.rstrip("/")
    return SandboxConnection(settings={"base_url": base}, secrets={HOOK_URL: f"{base}{hook_path()}"})


SPEC = IntegrationSpec(
    name="zapier",
    capabilities=frozenset({"automation"}),
    description="Zapier: hands events (a captured lead, a booked job) to a Zap through its catch hook.",
    docs_url="https://help.zapier.com/hc/en-us/articles/8496288690317-Trigger-Zaps-from-webhooks",
    settings_model=ZapierSettings,
    required_secrets=(HOOK_URL,),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="api_key",
)
