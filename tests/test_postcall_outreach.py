"""The post-call follow-ups through the newer channels: the confirmation by email, the call's summary in
the team's Slack channel, and the call handed to the business's Zapier automation, each once per call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import AgentFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tests.test_postcall_sync import BUILTIN, call, headers, settled
from tool_server.agents import CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")
OUTREACH = ("sendgrid", "slack", "zapier")


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
    )


@pytest.fixture
async def created(make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    made = await agent_on_emulators(OUTREACH, make_agent, services, sandboxes, also=BUILTIN)
    await services.followups.set(
        made.agent.id, FollowUps(confirmation_email=True, team_summary=True, workflow_event=True)
    )
    return made


def state(sandboxes: ServedSandboxes, provider: str) -> dict[str, Any]:
    dumped: dict[str, Any] = sandboxes.sandboxes[provider].state.dump()
    return dumped


async def test_a_finished_call_is_emailed_posted_to_slack_and_handed_to_zapier_once(
    http: httpx.AsyncClient, created: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    for _ in range(2):  # the platform sends the call twice
        assert (await http.post("/v1/calls", json=call("call-5"), headers=headers(created))).status_code == 200
    record = await settled(http, created, "call-5")

    steps = {step["job"]: step["status"] for step in record["sync_steps"]}
    assert steps == {
        "crm": "done",
        "calendar": "done",
        "confirmation_email": "done",
        "team_summary": "done",
        "workflow_event": "done",
    }, record["sync_steps"]
    [mail] = state(sandboxes, "sendgrid")["mails"]
    assert mail["personalizations"][0]["to"][0]["email"] == "jane@example.com"
    assert "You're booked for" in str(mail["content"])
    [post] = state(sandboxes, "slack")["messages"]
    assert "Wants a cleaning on Monday morning." in str(post["blocks"])
    assert "Jane Doe" in str(post["blocks"])
    [delivery] = state(sandboxes, "zapier")["deliveries"]
    assert "call.completed" in str(delivery)
    assert "call-5" in str(delivery)
