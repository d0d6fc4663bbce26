"""The accounting tools over HTTP and MCP on the built-in ledger: what a caller owes, said the way people
say it; an invoice made once however often it is retried; several matching accounts never guessed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from integrations.capabilities import CustomerDraft
from tests.conftest import AgentFactory, CallerFactory
from tool_server.agents import Connection, CreatedAgent
from tool_server.builtin import Ledger
from tool_server.services import Services
from tool_server.store.tables import LedgerInvoiceRow

LINES = [
    {"description": "Boiler service", "quantity": 1, "unit_amount": 20000},
    {"description": "Filter", "quantity": 2, "unit_amount": 2000},
]


@pytest.fixture
async def keeping_books(make_agent: AgentFactory) -> CreatedAgent:
    return await make_agent(
        connections=[
            Connection(capability="accounting", provider="ledger"),
            Connection(capability="messaging", provider="outbox"),
        ]
    )


def ledger(services: Services, created: CreatedAgent) -> Ledger:
    books = services.providers.build(created.agent, "accounting")
    assert isinstance(books, Ledger)
    return books


async def invoices(services: Services) -> int:
    query = select(func.count()).select_from(LedgerInvoiceRow)
    return int(await services.db.run(lambda session: session.execute(query).scalar_one()))


@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_a_caller_hears_what_they_owe_and_an_invoice_is_made_once(
    transport: str, keeping_books: CreatedAgent, make_caller: CallerFactory, services: Services
) -> None:
    caller = await make_caller(transport, keeping_books)
    invoice = {
        "contact_name": "Ann O'Brien",
        "contact_phone": "(415) 555-0123",
        "lines": LINES,
        "due_date": "2026-12-15",
    }

    created = await caller.call("create_invoice", invoice, call_id="call-1")
    retried = await caller.call("create_invoice", invoice, call_id="call-1")
    account = await caller.call("find_customer_account", {"contact_phone": "(415) 555-0123"})

    assert created.ok, created.error
    assert retried.unwrap() == created.unwrap()
    assert await invoices(services) == 1
    assert created.unwrap()["invoice"]["total_minor"] == 24000
    found = account.unwrap()
    assert found["customer"]["name"] == "Ann O'Brien"
    assert found["balance_minor"] == 24000
    assert found["speech"] == "You have one open invoice of $240, due Tuesday, December 15."


async def test_a_paid_invoice_is_said_to_be_paid_and_nothing_is_owed(
    keeping_books: CreatedAgent, make_caller: CallerFactory, services: Services
) -> None:
    caller = await make_caller("http", keeping_books)
    made = (await caller.call("create_invoice", {"contact_phone": "+14155550123", "lines": LINES})).unwrap()
    invoice_id = made["invoice"]["invoice_id"]

    before = (await caller.call("get_invoice_status", {"invoice_id": invoice_id})).unwrap()
    await ledger(services, keeping_books).record_payment(invoice_id)
    after = (await caller.call("get_invoice_status", {"invoice_id": invoice_id})).unwrap()
    account = (await caller.call("find_customer_account", {"contact_phone": "+14155550123"})).unwrap()

    assert before["speech"] == "There's $240 left to pay on that invoice."
    assert after["invoice"]["status"] == "paid"
    assert after["speech"] == "That invoice is paid in full. Thank you!"
    assert account["speech"] == "You don't owe anything right now."


async def test_two_accounts_with_the_callers_number_are_reported_never_guessed(
    keeping_books: CreatedAgent, make_caller: CallerFactory, services: Services
) -> None:
    books = ledger(services, keeping_books)
    await books.create_customer(CustomerDraft(name="Ann O'Brien", phone="+14155550123"))
    await books.create_customer(CustomerDraft(name="Sean O'Brien", phone="+14155550123"))
    caller = await make_caller("http", keeping_books)

    account = (await caller.call("find_customer_account", {"contact_phone": "+14155550123"})).unwrap()
    invoice = await caller.call("create_invoice", {"contact_phone": "+14155550123", "lines": LINES})

    assert account["customer"] is None
    assert account["matches"] == 2
    assert "more than one account" in account["speech"]
    assert invoice.code == "VALIDATION_ERROR"
    assert await invoices(services) == 0


async def test_sending_an_invoice_by_email_works_and_by_sms_needs_a_pay_link(
    keeping_books: CreatedAgent, make_caller: CallerFactory
) -> None:
    caller = await make_caller("http", keeping_books)
    made = (await caller.call("create_invoice", {"contact_email": "ann@example.com", "lines": LINES})).unwrap()
    invoice_id = made["invoice"]["invoice_id"]

    emailed = await caller.call("send_invoice", {"invoice_id": invoice_id, "via": "email"})
    texted = await caller.call("send_invoice", {"invoice_id": invoice_id, "via": "sms", "to": "+14155550123"})

    assert emailed.unwrap()["speech"] == "I've emailed you the invoice."
    assert texted.code == "NOT_CONNECTED"  # the built-in ledger has no pay page
    assert texted.error is not None
    assert "email" in texted.error["speech"]


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([{"description": "x", "unit_amount": 100, "discount": 5}], "not a property"),
        ([{"description": {"nested": 1}, "unit_amount": 100}], "not nested data"),
        ([{"description": "x" * 201, "unit_amount": 100}], "at most 200"),
        ([{"description": "x", "unit_amount": 100}] * 21, "at most 20"),
        (["a line"], "must be an object"),
    ],
    ids=["unknown-property", "nested", "long-description", "too-many", "not-an-object"],
)
async def test_invoice_lines_that_are_not_small_flat_objects_are_refused_by_name(
    lines: list[object], reason: str, keeping_books: CreatedAgent, make_caller: CallerFactory
) -> None:
    caller = await make_caller("http", keeping_books)

    outcome = await caller.call("create_invoice", {"contact_phone": "+14155550123", "lines": lines})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "lines"
    assert reason in str(outcome.error)
