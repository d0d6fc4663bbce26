"""Connections that wire an agent to every provider's sandbox emulator on this server."""

from __future__ import annotations

from collections.abc import Collection

from integrations.common.spec import Capability
from tool_server.agents.models import CAPABILITIES, Connection
from tool_server.providers import ProviderRegistry

__all__ = ["sandbox_connections"]


def sandbox_connections(
    registry: ProviderRegistry, public_url: str, *, prefer: Collection[str] = ()
) -> list[tuple[Connection, dict[str, str]]]:
    """For each capability, the first integration serving it (or the one named in `prefer`),
    connected to its emulator at `<public_url>/sandbox/<provider>` with the emulator's own
    sandbox credentials."""
    chosen: dict[Capability, tuple[Connection, dict[str, str]]] = {}
    preferred = [name for name in registry.specs if name in prefer]
    for name in preferred + [name for name in registry.specs if name not in prefer]:
        spec = registry.specs[name]
        integration = spec.integration
        if integration is None:
            continue
        sandbox = integration.sandbox_connection(f"{public_url.rstrip('/')}/sandbox/{name}")
        for capability in sorted(integration.capabilities):
            if capability not in chosen:
                connection = Connection(capability=capability, provider=name, settings=sandbox.settings)
                chosen[capability] = (registry.validate(connection, sandbox.secrets), dict(sandbox.secrets))
    return [chosen[capability] for capability in CAPABILITIES if capability in chosen]
