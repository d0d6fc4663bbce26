"""Email, the team channel and automations, each connected to its own emulator, through the tools over
HTTP and MCP: what the caller asked for lands in the emulator once, however often the platform retries it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AgentFactory, CallerFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")


def sent_mails(state: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state["mails"])


def posts(state: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state["messages"])


def deliveries(state: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state["deliveries"])


# provider -> (tool, arguments, what it created in the emulator's _state)
CASES: dict[str, tuple[str, dict[str, Any], Any]] = {
    "sendgrid": (
        "send_email",
        {"to": "jane@example.com", "subject": "Your appointment", "text": "See you Monday at 10 AM."},
        sent_mails,
    ),
    "slack": ("notify_team", {"text": "Jane Doe needs a call back about a leak.", "urgent": True}, posts),
    "zapier": (
        "trigger_workflow",
        {"event": "lead.captured", "data": {"name": "Jane Doe", "need": "leak"}},
        deliveries,
    ),
}


@pytest.mark.parametrize("transport", ["http", "mcp"])
@pytest.mark.parametrize("provider", sorted(CASES))
async def test_each_outbound_tool_reaches_its_emulator_once_when_retried_with_the_same_call_id(
    provider: str,
    transport: str,
    make_agent: AgentFactory,
    services: Services,
    sandboxes: ServedSandboxes,
    make_caller: CallerFactory,
) -> None:
    tool, arguments, created_in = CASES[provider]
    agent = await agent_on_emulators([provider], make_agent, services, sandboxes)
    caller = await make_caller(transport, agent)

    first = await caller.call(tool, arguments, call_id="call-7")
    retried = await caller.call(tool, arguments, call_id="call-7")

    assert first.ok, first.error
    assert retried.unwrap() == first.unwrap()
    assert first.unwrap()["speech"]
    assert len(created_in(sandboxes.sandboxes[provider].state.dump())) == 1


async def test_the_slack_post_carries_the_callers_details_as_block_kit(
    make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes, make_caller: CallerFactory
) -> None:
    agent = await agent_on_emulators(["slack"], make_agent, services, sandboxes)
    caller = await make_caller("http", agent)

    outcome = await caller.call(
        "notify_team",
        {"text": "Wants a quote <@channel>", "caller_name": "Jane Doe", "caller_phone": "(212) 555-0142"},
        call_id="call-8",
    )

    assert outcome.ok, outcome.error
    [posted] = posts(sandboxes.sandboxes["slack"].state.dump())
    blocks = str(posted.get("blocks"))
    assert "Jane Doe" in blocks
    assert "+12125550142" in blocks
    assert "<@channel>" not in blocks  # caller text cannot ping the whole channel
