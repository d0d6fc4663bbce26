"""Every email provider behaves the same: one email per idempotency key, text or template, an id to track."""

from __future__ import annotations

import pytest

from integrations.capabilities import EmailProvider, EmailRequest
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services


@pytest.fixture(params=providers_of("email"))
async def email(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> EmailProvider:
    created = await agent_with(make_agent, sandboxes, "email", request.param)
    provider = build(services, created, "email")
    assert isinstance(provider, EmailProvider)
    return provider


def text_mail(key: str) -> EmailRequest:
    return EmailRequest(
        to="jane@example.com", subject="Your appointment", text="See you Monday at 10 AM.", idempotency_key=key
    )


async def test_a_text_email_is_handed_over_with_its_recipient(email: EmailProvider) -> None:
    message = await email.send_email(text_mail("k-1"))

    assert message.channel == "email"
    assert message.to == "jane@example.com"
    assert message.id
    assert message.status
    assert message.provider == email.name


async def test_a_template_email_is_handed_over_with_its_data(email: EmailProvider) -> None:
    request = EmailRequest(
        to="jane@example.com",
        template_id="d-0123456789abcdef0123456789abcdef",
        template_data={"first_name": "Jane", "when": "Monday at 10 AM"},
        idempotency_key="k-t",
    )

    message = await email.send_email(request)

    assert message.channel == "email"
    assert message.id


async def test_the_same_idempotency_key_never_sends_a_second_email(email: EmailProvider) -> None:
    first = await email.send_email(text_mail("k-1"))
    again = await email.send_email(text_mail("k-1"))
    other = await email.send_email(text_mail("k-2"))

    assert again.id == first.id
    assert other.id != first.id
