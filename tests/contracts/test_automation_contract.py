"""Every automation behaves the same: an event and its data accepted once per idempotency key."""

from __future__ import annotations

import pytest

from integrations.capabilities import AutomationProvider
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services


@pytest.fixture(params=providers_of("automation"))
async def automation(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> AutomationProvider:
    created = await agent_with(make_agent, sandboxes, "automation", request.param)
    provider = build(services, created, "automation")
    assert isinstance(provider, AutomationProvider)
    return provider


async def test_an_event_is_accepted_with_its_name(automation: AutomationProvider) -> None:
    run = await automation.trigger_workflow(
        "lead.captured", {"name": "Jane Doe", "urgent": True}, idempotency_key="k-1"
    )

    assert run.event == "lead.captured"
    assert run.id
    assert run.status
    assert run.provider == automation.name


async def test_the_same_idempotency_key_never_triggers_twice(automation: AutomationProvider) -> None:
    first = await automation.trigger_workflow("lead.captured", {"name": "Jane"}, idempotency_key="k-1")
    again = await automation.trigger_workflow("lead.captured", {"name": "Jane"}, idempotency_key="k-1")
    other = await automation.trigger_workflow("lead.captured", {"name": "Jane"}, idempotency_key="k-2")

    assert again.id == first.id
    assert other.id != first.id
