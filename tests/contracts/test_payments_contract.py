"""Every payments provider behaves the same: one link per idempotency key, status reported."""

from __future__ import annotations

import pytest

from integrations.capabilities import PaymentLinkRequest, PaymentsProvider
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services

PROVIDERS = providers_of("payments")


@pytest.fixture(params=PROVIDERS or [pytest.param(None, marks=pytest.mark.skip(reason="no payments provider"))])
async def payments(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> PaymentsProvider:
    created = await agent_with(make_agent, sandboxes, "payments", request.param)
    provider = build(services, created, "payments")
    assert isinstance(provider, PaymentsProvider)
    return provider


def deposit(key: str | None = "k-1") -> PaymentLinkRequest:
    return PaymentLinkRequest(
        amount_minor=4900,
        currency="USD",
        description="Consultation deposit",
        customer_name="Jane Doe",
        customer_email="jane@example.com",
        idempotency_key=key,
    )


async def test_a_link_carries_the_amount_currency_and_a_url(payments: PaymentsProvider) -> None:
    link = await payments.create_payment_link(deposit())

    assert link.amount_minor == 4900
    assert link.currency == "USD"
    assert link.url.startswith("https://")
    assert link.status == "open"


async def test_the_same_idempotency_key_never_makes_a_second_link(payments: PaymentsProvider) -> None:
    first = await payments.create_payment_link(deposit("k-1"))
    again = await payments.create_payment_link(deposit("k-1"))

    assert again.id == first.id
    assert again.url == first.url


async def test_the_status_of_a_new_link_is_open(payments: PaymentsProvider) -> None:
    link = await payments.create_payment_link(deposit())

    assert (await payments.payment_status(link.id)).status == "open"
