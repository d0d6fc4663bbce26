"""Every team channel behaves the same: one post per idempotency key, carrying the text it was given."""

from __future__ import annotations

import pytest

from integrations.capabilities import TeamMessage, TeamNotifier
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services


@pytest.fixture(params=providers_of("team"))
async def team(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> TeamNotifier:
    created = await agent_with(make_agent, sandboxes, "team", request.param)
    provider = build(services, created, "team")
    assert isinstance(provider, TeamNotifier)
    return provider


def message(key: str, text: str = "Jane Doe called about a leak.") -> TeamMessage:
    return TeamMessage(
        text=text, title="Test Dental", fields={"Caller": "Jane Doe", "Phone": "+12125550142"}, idempotency_key=key
    )


async def test_a_message_is_posted_with_its_text(team: TeamNotifier) -> None:
    post = await team.post_team_message(message("k-1"))

    assert post.id
    assert post.channel
    assert "Jane Doe called about a leak." in post.text
    assert post.provider == team.name


async def test_the_same_idempotency_key_never_posts_twice(team: TeamNotifier) -> None:
    first = await team.post_team_message(message("k-1"))
    again = await team.post_team_message(message("k-1"))
    other = await team.post_team_message(message("k-2", "Another caller."))

    assert again.id == first.id
    assert other.id != first.id
