"""Every messaging provider behaves the same: one message per idempotency key, E.164 recipients."""

from __future__ import annotations

import pytest

from integrations.capabilities import MessagingProvider
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services


@pytest.fixture(params=providers_of("messaging"))
async def messaging(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> MessagingProvider:
    created = await agent_with(make_agent, sandboxes, "messaging", request.param)
    provider = build(services, created, "messaging")
    assert isinstance(provider, MessagingProvider)
    return provider


async def test_a_text_is_handed_over_with_its_recipient_and_body(messaging: MessagingProvider) -> None:
    message = await messaging.send_sms("+12125550142", "See you Monday at 10 AM.", idempotency_key="k-1")

    assert message.to == "+12125550142"
    assert message.body == "See you Monday at 10 AM."
    assert message.channel == "sms"
    assert message.id
    assert message.status


async def test_the_same_idempotency_key_never_sends_twice(messaging: MessagingProvider) -> None:
    first = await messaging.send_sms("+12125550142", "Hello", idempotency_key="k-1")
    again = await messaging.send_sms("+12125550142", "Hello", idempotency_key="k-1")
    other = await messaging.send_sms("+12125550142", "Hello", idempotency_key="k-2")

    assert again.id == first.id
    assert other.id != first.id
