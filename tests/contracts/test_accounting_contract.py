"""Every set of books behaves the same: customers found by phone or email however they were typed,
every match returned, invoices made once per key, balances in minor units, quotes harmless."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.capabilities import AccountingProvider, CustomerDraft, InvoiceLine, InvoiceRequest, NotFoundError
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services


@pytest.fixture(params=providers_of("accounting"))
async def books(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> AccountingProvider:
    created = await agent_with(make_agent, sandboxes, "accounting", request.param)
    provider = build(services, created, "accounting")
    assert isinstance(provider, AccountingProvider)
    return provider


def draft(key: str, *, name: str = "Ann O'Brien", phone: str | None = "+14155550123") -> CustomerDraft:
    return CustomerDraft(name=name, phone=phone, email="ann.obrien@example.com", idempotency_key=key)


def invoice_request(customer_id: str, key: str) -> InvoiceRequest:
    return InvoiceRequest(
        customer_id=customer_id,
        lines=[
            InvoiceLine(description="Boiler service", quantity=1, unit_amount_minor=20000),
            InvoiceLine(description="Filter", quantity=2, unit_amount_minor=2000),
        ],
        currency="USD",
        due_date=date(2026, 12, 15),
        idempotency_key=key,
    )


async def test_a_customer_is_found_by_phone_and_by_email_and_made_once_per_key(books: AccountingProvider) -> None:
    first = await books.create_customer(draft("c-1"))
    again = await books.create_customer(draft("c-1"))

    by_phone = await books.find_customers(phone="+14155550123")
    by_email = await books.find_customers(email="ann.obrien@example.com")

    assert again.id == first.id
    assert [customer.id for customer in by_phone] == [first.id]
    assert [customer.id for customer in by_email] == [first.id]
    assert by_phone[0].name == "Ann O'Brien"


async def test_two_customers_with_one_phone_are_both_returned(books: AccountingProvider) -> None:
    await books.create_customer(draft("c-1", name="Ann O'Brien"))
    await books.create_customer(draft("c-2", name="Sean O'Brien"))

    found = await books.find_customers(phone="+14155550123")

    assert sorted(customer.name for customer in found) == ["Ann O'Brien", "Sean O'Brien"]


async def test_a_quote_in_what_the_caller_said_finds_nothing_and_breaks_nothing(books: AccountingProvider) -> None:
    await books.create_customer(draft("c-1"))

    assert await books.find_customers(email="x' or 1=1 or 'x@example.com") == []
    assert await books.find_customers(email="ann.obrien@example.com")


async def test_an_invoice_is_created_once_per_key_and_is_open_for_its_total(books: AccountingProvider) -> None:
    customer = await books.create_customer(draft("c-1"))

    first = await books.create_invoice(invoice_request(customer.id, "i-1"))
    again = await books.create_invoice(invoice_request(customer.id, "i-1"))
    listed = await books.open_invoices(customer.id)
    fetched = await books.get_invoice(first.id)

    assert again.id == first.id
    assert first.total_minor == 24000
    assert first.balance_minor == 24000
    assert first.currency == "USD"
    assert first.status == "open"
    assert first.due_date == date(2026, 12, 15)
    assert [invoice.id for invoice in listed] == [first.id]
    assert fetched.id == first.id


async def test_sending_an_invoice_keeps_it_open_and_an_unknown_one_is_not_found(books: AccountingProvider) -> None:
    customer = await books.create_customer(draft("c-1"))
    invoice = await books.create_invoice(invoice_request(customer.id, "i-1"))

    sent = await books.send_invoice(invoice.id, email="ann.obrien@example.com", idempotency_key="s-1")

    assert sent.id == invoice.id
    assert sent.status == "open"
    with pytest.raises(NotFoundError):
        await books.get_invoice("no-such-invoice-123")
