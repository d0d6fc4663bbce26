"""The contract suites: the same behaviour tests against every provider of a capability.

Built-in providers run on the test database; each integration runs its real connector (through
the server's registry, vault and settings) against its sandbox emulator on a real socket.
Adding a provider to `integrations/registry.py` adds it here: no table to edit.
"""

from __future__ import annotations

import pytest

from integrations.common.spec import Capability
from integrations.registry import INTEGRATIONS
from tests.conftest import AgentFactory
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.services import Services


@pytest.fixture(autouse=True)
def _fresh(fresh_sandboxes: None) -> None:
    """Every contract test starts from empty emulators."""


BUILTINS: dict[Capability, list[str]] = {
    "calendar": ["local_calendar"],
    "crm": ["contact_book"],
    "payments": [],
    "messaging": ["outbox"],
    "email": ["outbox"],
    "team": ["outbox"],
    "automation": ["outbox"],
    "accounting": ["ledger"],
}


def providers_of(capability: Capability) -> list[str]:
    """Every provider serving `capability`: the built-ins, then each registered integration."""
    return BUILTINS[capability] + sorted(n for n, spec in INTEGRATIONS.items() if capability in spec.capabilities)


async def agent_with(
    make_agent: AgentFactory, sandboxes: ServedSandboxes, capability: Capability, provider: str
) -> CreatedAgent:
    """An agent whose `capability` is served by `provider` (on its emulator when it is an integration)."""
    if provider not in INTEGRATIONS:
        return await make_agent(connections=[Connection(capability=capability, provider=provider)])
    sandbox = INTEGRATIONS[provider].sandbox_connection(sandboxes.url(provider))
    return await make_agent(
        connections=[Connection(capability=capability, provider=provider, settings=sandbox.settings)],
        secrets={capability: sandbox.secrets},
    )


def build(services: Services, created: CreatedAgent, capability: Capability) -> object:
    return services.providers.build(created.agent, capability)
