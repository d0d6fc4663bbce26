"""Every messaging provider behaves the same: one message per idempotency key, E.164 recipients."""

from __future__ import annotations

import pytest

from integrations.capabilities import MessagingProvider, WhatsAppSender, WhatsAppTemplate
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


@pytest.fixture(params=providers_of("messaging"))
async def sender(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> WhatsAppSender:
    created = await agent_with(make_agent, sandboxes, "messaging", request.param)
    provider = build(services, created, "messaging")
    if not isinstance(provider, WhatsAppSender):
        pytest.skip(f"{request.param} sends no WhatsApp")
    return provider


def any_template(sender: WhatsAppSender) -> WhatsAppTemplate:
    names = sender.whatsapp_templates()
    return WhatsAppTemplate(
        name=names[0] if names else "booking_confirmation", variables={"1": "Ann", "2": "Mon 10 AM"}
    )


async def test_a_whatsapp_text_and_a_template_are_handed_over_on_the_whatsapp_channel(sender: WhatsAppSender) -> None:
    text = await sender.send_whatsapp("+12125550142", body="Here's the address.", idempotency_key="w-1")
    template = await sender.send_whatsapp("+12125550142", template=any_template(sender), idempotency_key="w-2")

    assert text.channel == "whatsapp"
    assert text.to == "+12125550142"
    assert template.channel == "whatsapp"
    assert template.id != text.id


async def test_the_same_idempotency_key_never_sends_a_second_whatsapp_message(sender: WhatsAppSender) -> None:
    first = await sender.send_whatsapp("+12125550142", template=any_template(sender), idempotency_key="w-1")
    again = await sender.send_whatsapp("+12125550142", template=any_template(sender), idempotency_key="w-1")

    assert again.id == first.id
