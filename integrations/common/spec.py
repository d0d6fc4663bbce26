"""What each provider folder exports: one `IntegrationSpec`, the only thing the registry needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from integrations.common.sandbox import Sandbox
from integrations.common.vault import CredentialVault

__all__ = ["CAPABILITIES", "Capability", "Checkable", "ConnectorEnv", "IntegrationSpec", "SandboxConnection"]

Capability = Literal["calendar", "crm", "payments", "messaging"]
CAPABILITIES: tuple[Capability, ...] = ("calendar", "crm", "payments", "messaging")


@dataclass(frozen=True)
class ConnectorEnv:
    """What the server hands a connector when it builds one for a connection."""

    clock: Callable[[], datetime]
    connection_id: str
    # This server's public base URL (no trailing slash), for callbacks such as Twilio's StatusCallback.
    public_url: str
    # The agent's business timezone (IANA), for providers that need one (e.g. calendar rules).
    timezone: str = "UTC"


@dataclass(frozen=True)
class SandboxConnection:
    """Settings and secrets that connect a provider to its sandbox emulator at `base_url`."""

    settings: dict[str, Any]
    secrets: dict[str, str]


@runtime_checkable
class Checkable(Protocol):
    """A connector that can check its own connection (`tool-server connections test`)."""

    async def check_connection(self) -> str:
        """One short line on what was reached, e.g. "calendar primary (America/New_York)".

        Raises an `IntegrationError` when the connection does not work.
        """
        ...


@dataclass(frozen=True)
class IntegrationSpec:
    """A provider as the registry sees it. Each `integrations/<provider>/__init__.py` exports `SPEC`."""

    name: str
    capabilities: frozenset[Capability]
    description: str
    docs_url: str
    settings_model: type[BaseModel]
    # Secret names the connection must hold (API keys, OAuth client secret and tokens).
    required_secrets: tuple[str, ...]
    build: Callable[[BaseModel, CredentialVault, ConnectorEnv], object]
    sandbox: Callable[[], Sandbox]
    sandbox_connection: Callable[[str], SandboxConnection]
    optional_secrets: tuple[str, ...] = field(default_factory=tuple)
    auth: Literal["oauth", "api_key"] = "api_key"
