"""Slack: messages to the business's team channel (Block Kit posts by the app's bot), with its sandbox emulator."""

from __future__ import annotations

from pydantic import BaseModel

from integrations.common.spec import ConnectorEnv, IntegrationSpec, RequestBudget, SandboxConnection
from integrations.common.vault import CredentialVault
from integrations.slack.connector import SlackTeam
from integrations.slack.sandbox import (
    FRONT_DESK,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    build_sandbox,
)
from integrations.slack.settings import SlackSettings

__all__ = ["SPEC", "SlackSettings", "SlackTeam"]


def _build(settings: BaseModel, vault: CredentialVault, env: ConnectorEnv) -> SlackTeam:
    if not isinstance(settings, SlackSettings):
        raise TypeError(f"slack needs SlackSettings, not {type(settings).__name__}")
    return SlackTeam(settings, vault, env)


def _sandbox_connection(base_url: str) -> SandboxConnection:
    return SandboxConnection(
        settings={"base_url": f"{base_url.rstrip('/')}/api/", "channel": FRONT_DESK},
        secrets={
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "refresh_token": SANDBOX_REFRESH_TOKEN,
        },
    )


SPEC = IntegrationSpec(
    name="slack",
    capabilities=frozenset({"team"}),
    description=(
        "Slack: post messages for the team to one channel (Block Kit: title, text, labelled fields), "
        "never twice for one call. OAuth v2 bot install with token rotation, or an xoxb- bot token "
        "stored alone as access_token; the app must be invited to the channel."
    ),
    docs_url="https://docs.slack.dev/reference/methods/chat.postMessage",
    settings_model=SlackSettings,
    required_secrets=("client_id", "client_secret", "refresh_token"),
    optional_secrets=("access_token", "expires_at"),
    build=_build,
    sandbox=build_sandbox,
    sandbox_connection=_sandbox_connection,
    auth="oauth",
    # chat.postMessage: about 1 per second per channel.
    request_budget=RequestBudget(1, 1, source="https://docs.slack.dev/apis/web-api/rate-limits"),
)
