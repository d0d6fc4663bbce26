"""Connections that wire an agent to every provider's sandbox emulator on this server."""

from __future__ import annotations

from integrations.common.spec import Capability
from tool_server.agents.models import CAPABILITIES, Connection
from tool_server.providers import ProviderRegistry

__all__ = ["sandbox_connections"]


def sandbox_connections(registry: ProviderRegistry, public_url: str) -> list[tuple[Connection, dict[str, str]]]:
    """For each capability, the first integration serving it, connected to its emulator at
    `<public_url>/sandbox/<provider>` with the emulator's own sandbox credentials."""
    chosen: dict[Capability, tuple[Connection, dict[str, str]]] = {}
    for name, spec in registry.specs.items():
        integration = spec.integration
        if integration is None:
            continue
        sandbox = integration.sandbox_connection(f"{public_url.rstrip('/')}/sandbox/{name}")
        for capability in sorted(integration.capabilities):
            if capability not in chosen:
                connection = Connection(capability=capability, provider=name, settings=sandbox.settings)
                chosen[capability] = (registry.validate(connection, sandbox.secrets), dict(sandbox.secrets))
    return [chosen[capability] for capability in CAPABILITIES if capability in chosen]
