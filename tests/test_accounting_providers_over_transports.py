"""Each set of books, connected to its emulator, through the accounting tools over HTTP and MCP: a caller
whose phone was stored as "(415) 555-0123" is found, invoiced once however often the platform retries,
sent the invoice and told its status; a paid invoice reads as paid."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.registry import INTEGRATIONS
from tests.conftest import AgentFactory, CallerFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")
BOOKS = sorted(name for name, spec in INTEGRATIONS.items() if "accounting" in spec.capabilities)
LINES = [{"description": "Boiler service", "quantity": 1, "unit_amount": 24000}]


def seed(state: Any, name: str, phone: str, email: str) -> str:
    seeding = getattr(state, "seed_customer", None) or state.seed_contact
    return str(seeding(name=name, phone=phone, email=email))


@pytest.mark.parametrize("transport", ["http", "mcp"])
@pytest.mark.parametrize("provider", BOOKS)
async def test_a_caller_is_found_invoiced_once_sent_the_invoice_and_told_when_it_is_paid(
    provider: str,
    transport: str,
    make_agent: AgentFactory,
    services: Services,
    sandboxes: ServedSandboxes,
    make_caller: CallerFactory,
) -> None:
    outbox = Connection(capability="messaging", provider="outbox")
    agent = await agent_on_emulators([provider], make_agent, services, sandboxes, also=[outbox])
    state = sandboxes.sandboxes[provider].state
    customer_id = seed(state, "Ann O'Brien", "(415) 555-0123", "ann.obrien@example.com")
    caller = await make_caller(transport, agent)
    invoice = {"contact_phone": "+14155550123", "lines": LINES, "due_date": "2026-12-15"}

    found = (await caller.call("find_customer_account", {"contact_phone": "(415) 555-0123"})).unwrap()
    created = await caller.call("create_invoice", invoice, call_id="call-1")
    retried = await caller.call("create_invoice", invoice, call_id="call-1")
    invoice_id = created.unwrap()["invoice"]["invoice_id"]
    sent = await caller.call("send_invoice", {"invoice_id": invoice_id, "via": "email"}, call_id="call-1")
    owed = (await caller.call("find_customer_account", {"contact_phone": "+14155550123"})).unwrap()
    state.pay_invoice(invoice_id)
    status = (await caller.call("get_invoice_status", {"invoice_id": invoice_id})).unwrap()
    injected = (await caller.call("find_customer_account", {"contact_email": "x'or'1'='1@example.com"})).unwrap()

    assert found["customer"]["customer_id"] == customer_id
    assert found["customer"]["name"] == "Ann O'Brien"
    assert retried.unwrap() == created.unwrap()
    assert len(state.dump()["invoices"]) == 1
    assert created.unwrap()["invoice"]["customer_id"] == customer_id
    assert sent.ok, sent.error
    assert owed["balance_minor"] == 24000
    assert owed["speech"] == "You have one open invoice of $240, due Tuesday, December 15."
    assert status["invoice"]["status"] == "paid"
    assert injected["matches"] == 0


async def test_a_square_payment_link_lands_once_in_its_emulator(
    make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes, make_caller: CallerFactory
) -> None:
    agent = await agent_on_emulators(["square"], make_agent, services, sandboxes)
    assert agent.agent.connections["payments"].provider == "square"
    caller = await make_caller("http", agent)
    link = {"amount_minor": 4900, "description": "Deposit", "customer_phone": "+14155550123"}

    first = await caller.call("create_payment_link", link, call_id="call-2")
    again = await caller.call("create_payment_link", link, call_id="call-2")

    assert first.ok, first.error
    assert again.unwrap() == first.unwrap()
    assert len(sandboxes.sandboxes["square"].state.dump()["payment_links"]) == 1
