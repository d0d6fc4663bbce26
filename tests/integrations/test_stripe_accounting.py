"""Stripe as a set of books: the connector's customers and invoices against the emulator on 127.0.0.1,
every request checked against Stripe's 2023 spec and stripe-python's typed params, and a paid invoice's
signed `invoice.paid` event verified into a payment."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations.capabilities.accounting import AccountingProvider
from integrations.capabilities.errors import NotFoundError, ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest
from integrations.capabilities.payments import PaymentsProvider
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import (
    ConnectorEnv,
    PaymentEvent,
    SandboxConnection,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.stripe import SPEC
from integrations.stripe.connector import StripeConnector
from integrations.stripe.invoice_mappers import customer_phone_query, derived_key, invoice, search_literal
from integrations.stripe.sandbox import SANDBOX_API_KEY
from integrations.stripe.sandbox_events import SANDBOX_WEBHOOK_SECRET, StripeCallback, signed
from integrations.stripe.sandbox_state import StripeState
from integrations.stripe.sandbox_wire import parse_search
from integrations.stripe.webhooks import handle
from tests.integrations.test_stripe import (
    FIXTURES,
    STRIPE_2023,
    operation_2023,
    request_fields,
    schema_problems,
    typed_params_for,
    typed_problems,
)
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
HOOK_URL = "http://127.0.0.1:9/webhooks/stripe/con_books/events"
DUE = date(2026, 12, 15)


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"stripe": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_account(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> StripeState:
    assert isinstance(sandbox.state, StripeState)
    return sandbox.state


@pytest.fixture
def connection(served: ServedSandboxes) -> SandboxConnection:
    return SPEC.sandbox_connection(served.url("stripe"))


def build(connection: SandboxConnection, vault: MemoryVault) -> StripeConnector:
    connector = SPEC.build(
        SPEC.settings_model.model_validate(connection.settings),
        vault,
        ConnectorEnv(
            clock=lambda: NOW,
            connection_id="con_books",
            public_url="http://127.0.0.1:9",
            timezone="America/New_York",
            capability="accounting",
        ),
    )
    assert isinstance(connector, StripeConnector)
    return connector


@pytest.fixture
def books(connection: SandboxConnection) -> StripeConnector:
    return build(connection, MemoryVault(connection.secrets))


@pytest.fixture
async def http(connection: SandboxConnection) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to the emulator, authenticated like the SDK, for what the connector never sends."""
    base = str(connection.settings["base_url"])
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}) as client:
        yield client


def bill(customer_id: str, key: str | None = "agt_1:call_1:create_invoice", **changes: Any) -> InvoiceRequest:
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "lines": [
            InvoiceLine(description="Boiler service", quantity=1, unit_amount_minor=20000),
            InvoiceLine(description="Filter", quantity=2, unit_amount_minor=2000),
        ],
        "currency": "USD",
        "due_date": DUE,
        "idempotency_key": key,
    }
    return InvoiceRequest(**(fields | changes))


def posts(sandbox: Sandbox, path: str | None = None) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == "POST" and (path is None or r.path == path)]


def search_queries(sandbox: Sandbox) -> list[str]:
    return [r.query["query"][0] for r in sandbox.provider_requests() if r.path == "/v1/customers/search"]


def open_invoice(state: StripeState, customer_id: str, amount: int, due: date) -> str:
    """An open send_invoice invoice made straight in the emulator's books (no connector requests)."""
    due_at = int(datetime(due.year, due.month, due.day, 12, tzinfo=UTC).timestamp())
    params = {"customer": customer_id, "collection_method": "send_invoice", "currency": "usd", "due_date": due_at}
    made = state.books.create(params)
    state.books.add_item(
        {"customer": customer_id, "invoice": made["id"], "unit_amount_decimal": str(amount), "description": "Visit"}
    )
    return str(state.books.finalize(made["id"], {})["id"])


# -- the capability -------------------------------------------------------------------------------------


def test_one_connector_serves_the_accounting_and_payments_protocols(books: StripeConnector) -> None:
    assert isinstance(books, AccountingProvider)
    assert isinstance(books, PaymentsProvider)
    assert SPEC.capabilities == frozenset({"accounting", "payments"})


async def test_a_customer_stored_in_any_phone_format_is_found_by_its_e164_number(
    books: StripeConnector, state: StripeState
) -> None:
    typed = [state.seed_customer(name=f"Ann {n}", phone=phone) for n, phone in enumerate(PHONE_FORMATS)]

    found = await books.find_customers(phone="+14155550123")

    assert sorted(customer.id for customer in found) == sorted(typed)
    assert {customer.phone for customer in found} == set(PHONE_FORMATS)


PHONE_FORMATS = ["(415) 555-0123", "+14155550123", "415.555.0123", "+1 415 555 0123", "4155550123"]


async def test_a_number_that_only_shares_the_last_four_digits_is_not_a_match(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    state.seed_customer(name="Someone Else", phone="(212) 555-0123")

    assert await books.find_customers(phone="+14155550123") == []
    assert search_queries(sandbox) == ["phone:'+14155550123' OR phone~'0123'"]


async def test_every_customer_with_the_phone_is_returned_never_a_guess(
    books: StripeConnector, state: StripeState
) -> None:
    ann = state.seed_customer(name="Ann O'Brien", phone="(415) 555-0123")
    sean = state.seed_customer(name="Sean O'Brien", phone="415-555-0123")

    found = await books.find_customers(phone="+14155550123")

    assert sorted(customer.id for customer in found) == sorted([ann, sean])


async def test_phone_search_follows_stripes_search_pages(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    ann = state.seed_customer(name="Ann O'Brien", phone="(415) 555-0123")
    for n in range(110):
        state.seed_customer(name=f"Stranger {n}", phone=f"(646) {n:03d}-0123")

    found = await books.find_customers(phone="+14155550123")

    # Newest first: the 110 strangers fill page one, Ann is on page two.
    assert [customer.id for customer in found] == [ann]
    pages = [r.query.get("page") for r in sandbox.provider_requests() if r.path == "/v1/customers/search"]
    assert len(pages) == 2
    assert pages[0] is None
    assert pages[1] is not None


async def test_email_lookup_ignores_case_and_finds_a_customer_created_moments_ago(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    seeded = state.seed_customer(name="Dan O'Brien", email="Dan.OBrien@Example.com")
    made = await books.create_customer(CustomerDraft(name="Ann", email="ann@example.com", idempotency_key="c-1"))

    by_seeded = await books.find_customers(email="dan.obrien@example.com")
    by_made = await books.find_customers(email="ann@example.com")

    assert [customer.id for customer in by_seeded] == [seeded]
    assert [customer.id for customer in by_made] == [made.id]
    # Search (case-insensitive) and the list filter (which reads its own writes) are both asked.
    paths = {(r.method, r.path) for r in sandbox.provider_requests()}
    assert {("GET", "/v1/customers"), ("GET", "/v1/customers/search")} <= paths


async def test_a_quote_reaches_the_search_escaped_finds_o_brien_and_an_injection_finds_nothing(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    obrien = state.seed_customer(name="Ann O'Brien", email="o'brien@example.com")
    state.seed_customer(name="Bob", email="bob@example.com")

    found = await books.find_customers(email="o'brien@example.com")
    injected = await books.find_customers(email="x' OR email~'example.com")
    backslashed = await books.find_customers(email="x\\' OR email~'example.com")

    assert [customer.id for customer in found] == [obrien]
    assert injected == []
    assert backslashed == []
    assert search_queries(sandbox) == [
        "email:'o\\'brien@example.com'",
        "email:'x\\' or email~\\'example.com'",
        "email:'x\\\\\\' or email~\\'example.com'",
    ]


def test_search_literals_escape_backslashes_before_quotes_and_the_emulator_reads_them_back() -> None:
    assert search_literal("O'Brien") == "'O\\'Brien'"
    assert search_literal("a\\'b") == "'a\\\\\\'b'"
    customer = {"email": "a\\'b", "name": "x"}
    assert parse_search(f"email:{search_literal(customer['email'])}")(customer) is True
    assert customer_phone_query("+12") == "phone:'+12'"


async def test_creating_a_customer_twice_with_one_key_makes_one(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    draft = CustomerDraft(name="Ann O'Brien", phone="+14155550123", email="ann@example.com", idempotency_key="c-1")

    first = await books.create_customer(draft)
    again = await books.create_customer(draft)

    assert again.id == first.id
    assert (first.name, first.phone, first.email, first.provider) == (
        "Ann O'Brien",
        "+14155550123",
        "ann@example.com",
        "stripe",
    )
    assert len(state.customers) == 1
    assert {r.headers["idempotency-key"] for r in posts(sandbox)} == {"c-1:customer"}


async def test_a_found_customer_carries_what_their_open_invoices_still_ask_for(
    books: StripeConnector, state: StripeState
) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    open_invoice(state, customer, 12000, DUE)
    open_invoice(state, customer, 3000, DUE + timedelta(days=1))
    state.pay_invoice(open_invoice(state, customer, 9900, DUE))

    [found] = await books.find_customers(phone="+14155550123")

    assert (found.balance_minor, found.currency) == (15000, "USD")


# -- invoices -------------------------------------------------------------------------------------------


async def test_an_invoice_is_a_finalized_emailed_invoice_with_its_lines_number_and_hosted_page(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")

    made = await books.create_invoice(bill(customer, memo="Thanks for your business"))

    stored = state.books.invoices[made.id]
    assert (made.status, made.total_minor, made.balance_minor, made.currency) == ("open", 24000, 24000, "USD")
    assert (made.customer_id, made.due_date, made.provider) == (customer, DUE, "stripe")
    assert made.number == stored["number"]
    assert made.number is not None
    assert made.pay_url == stored["hosted_invoice_url"]
    assert made.pay_url is not None
    assert made.pay_url.startswith("https://invoice.stripe.com/i/")
    assert (stored["collection_method"], stored["auto_advance"], stored["description"]) == (
        "send_invoice",
        False,
        "Thanks for your business",
    )
    assert [(line["description"], line["quantity"], line["amount"]) for line in stored["lines"]["data"]] == [
        ("Boiler service", 1, 20000),
        ("Filter", 2, 4000),
    ]
    [created] = posts(sandbox, "/v1/invoices")
    assert created.body is not None
    assert (created.body["pending_invoice_items_behavior"], created.body["currency"]) == ("exclude", "usd")
    assert state.books.emails == []


async def test_a_retried_invoice_replays_every_step_and_makes_one_invoice(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")

    first = await books.create_invoice(bill(customer))
    again = await books.create_invoice(bill(customer))

    assert again.model_dump(exclude={"raw"}) == first.model_dump(exclude={"raw"})
    assert (len(state.books.invoices), len(state.books.items)) == (1, 2)
    keys = [r.headers["idempotency-key"] for r in posts(sandbox)]
    base = "agt_1:call_1:create_invoice"
    steps = [f"{base}:invoice", f"{base}:line-0", f"{base}:line-1", f"{base}:finalize"]
    assert keys == steps + steps


async def test_a_create_cut_off_after_its_first_line_is_finished_by_the_retry(
    books: StripeConnector, state: StripeState, http: httpx.AsyncClient
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    base = "agt_1:call_1:create_invoice"
    # What the first attempt got through before it died: the draft and its first line.
    draft = await http.post(
        "/v1/invoices",
        data={
            "customer": customer,
            "collection_method": "send_invoice",
            "currency": "usd",
            "pending_invoice_items_behavior": "exclude",
            "auto_advance": "false",
            "due_date": "1797336000",
        },
        headers={"Idempotency-Key": derived_key(base, "invoice")},
    )
    line = {
        "customer": customer,
        "invoice": draft.json()["id"],
        "description": "Boiler service",
        "quantity": "1",
        "unit_amount_decimal": "20000",
    }
    assert (await http.post("/v1/invoiceitems", data=line, headers={"Idempotency-Key": f"{base}:line-0"})).is_success

    made = await books.create_invoice(bill(customer))

    assert made.id == draft.json()["id"]
    assert (made.status, made.total_minor, len(state.books.invoices), len(state.books.items)) == ("open", 24000, 1, 2)


async def test_without_a_due_date_the_invoice_is_due_in_thirty_days(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")

    made = await books.create_invoice(bill(customer, due_date=None))

    [created] = posts(sandbox, "/v1/invoices")
    assert created.body is not None
    assert created.body["days_until_due"] == "30"
    assert "due_date" not in created.body
    stored = state.books.invoices[made.id]
    assert stored["due_date"] == stored["created"] + 30 * 86400


async def test_an_invoice_for_an_unknown_customer_or_an_unknown_invoice_is_not_found(books: StripeConnector) -> None:
    with pytest.raises(NotFoundError) as customer:
        await books.create_invoice(bill("cus_nobody"))
    with pytest.raises(NotFoundError) as unknown:
        await books.get_invoice("in_nothing")

    assert (customer.value.kind, customer.value.identifier) == ("customer", "cus_nobody")
    assert (unknown.value.kind, unknown.value.identifier) == ("invoice", "in_nothing")


async def test_open_invoices_are_the_unpaid_ones_oldest_due_first(books: StripeConnector, state: StripeState) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    late = open_invoice(state, customer, 1000, DUE + timedelta(days=20))
    soon = open_invoice(state, customer, 2000, DUE)
    state.pay_invoice(open_invoice(state, customer, 3000, DUE - timedelta(days=5)))
    state.books.void(open_invoice(state, customer, 4000, DUE - timedelta(days=6)))
    draft = state.books.create({"customer": customer, "collection_method": "send_invoice", "currency": "usd"})

    listed = await books.open_invoices(customer)

    assert [item.id for item in listed] == [soon, late]
    assert draft["id"] not in {item.id for item in listed}


async def test_open_invoices_follow_stripes_list_cursor(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    made = [open_invoice(state, customer, 100, DUE) for _ in range(130)]

    listed = await books.open_invoices(customer)

    assert sorted(item.id for item in listed) == sorted(made)
    pages = [r.query for r in sandbox.provider_requests() if r.path == "/v1/invoices"]
    assert len(pages) == 2
    assert "starting_after" not in pages[0]
    assert pages[1]["starting_after"][0] in made


async def test_sending_emails_the_address_on_file_and_another_address_is_refused(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    made = await books.create_invoice(bill(customer))

    sent = await books.send_invoice(made.id, email="ANN@example.com", idempotency_key="s-1")
    with pytest.raises(UpstreamError) as elsewhere:
        await books.send_invoice(made.id, email="someone@else.example", idempotency_key="s-2")

    assert (sent.id, sent.status) == (made.id, "open")
    assert [(email["invoice"], email["to"]) for email in state.books.emails] == [(made.id, "ann@example.com")]
    assert elsewhere.value.retryable is False
    [send] = posts(sandbox, f"/v1/invoices/{made.id}/send")
    assert send.headers["idempotency-key"] == "s-1:send"


async def test_sending_to_a_customer_without_an_email_is_an_upstream_error(
    books: StripeConnector, state: StripeState
) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    made = await books.create_invoice(bill(customer))

    with pytest.raises(UpstreamError) as raised:
        await books.send_invoice(made.id)

    assert (raised.value.status, raised.value.retryable) == (400, False)


async def test_a_paid_invoice_reads_paid_with_nothing_left_and_a_void_one_void(
    books: StripeConnector, state: StripeState
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    paid = await books.create_invoice(bill(customer))
    voided = await books.create_invoice(bill(customer, key="k-2"))
    state.pay_invoice(paid.id)
    state.books.void(voided.id)

    now_paid = await books.get_invoice(paid.id)
    now_void = await books.get_invoice(voided.id)

    assert (now_paid.status, now_paid.balance_minor, now_paid.total_minor) == ("paid", 0, 24000)
    assert (now_void.status, now_void.balance_minor) == ("void", 0)
    assert await books.open_invoices(customer) == []


def test_an_uncollectible_invoice_is_still_open_with_its_balance() -> None:
    raw = {"id": "in_1", "customer": "cus_1", "status": "uncollectible", "total": 500, "amount_remaining": 500}

    mapped = invoice({**raw, "currency": "usd"})

    assert (mapped.status, mapped.balance_minor, mapped.currency, mapped.pay_url) == ("open", 500, "USD", None)


async def test_a_wrong_key_says_the_accounting_connection_must_be_redone(connection: SandboxConnection) -> None:
    vault = MemoryVault({"api_key": "sk_test_wrong_key_000000000000"})
    books = build(connection, vault)

    with pytest.raises(ProviderNotConnectedError) as raised:
        await books.find_customers(email="ann@example.com")

    assert raised.value.capability == "accounting"


async def test_a_rate_limit_during_create_is_waited_out_and_the_step_replays_safely(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1, path="/v1/invoiceitems"))

    started = time.monotonic()
    made = await books.create_invoice(bill(customer))

    assert time.monotonic() - started >= 1.0
    assert (made.total_minor, len(state.books.items)) == (24000, 2)
    assert len(posts(sandbox, "/v1/invoiceitems")) == 3


# -- against Stripe's specs -------------------------------------------------------------------------------


async def accounting_flow(books: StripeConnector, state: StripeState) -> None:
    """Every kind of request the accounting side makes."""
    made = await books.create_customer(
        CustomerDraft(name="Ann", phone="+14155550123", email="ann@example.com", idempotency_key="c-1")
    )
    await books.find_customers(phone="+14155550123", email="ann@example.com")
    created = await books.create_invoice(bill(made.id))
    await books.create_invoice(bill(made.id, key=None, due_date=None, memo="Memo"))
    await books.send_invoice(created.id, idempotency_key="s-1")
    await books.get_invoice(created.id)
    await books.open_invoices(made.id)


async def test_every_accounting_request_is_a_2023_operation_with_declared_and_required_parameters(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    await accounting_flow(books, state)

    requests = sandbox.provider_requests()
    assert {(r.method, operation_2023(r)[0]) for r in requests} == {
        ("POST", "/v1/customers"),
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/search"),
        ("GET", "/v1/invoices"),
        ("POST", "/v1/invoices"),
        ("POST", "/v1/invoiceitems"),
        ("POST", "/v1/invoices/{invoice}/finalize"),
        ("POST", "/v1/invoices/{invoice}/send"),
        ("GET", "/v1/invoices/{invoice}"),
    }
    assert [p for r in requests for p in STRIPE_2023.check_request(r, form_nesting=True)] == []
    for request in requests:
        operation = operation_2023(request)[1]
        if request.method == "GET":
            parameters = [STRIPE_2023.resolve(p) for p in operation.get("parameters", [])]
            declared = {p["name"] for p in parameters if p["in"] == "query"}
            assert set(request_fields(request)) <= declared, request.path
            continue
        body = STRIPE_2023.resolve(operation.get("requestBody", {}))
        schema = body.get("content", {}).get("application/x-www-form-urlencoded", {}).get("schema", {})
        assert set(schema.get("required", [])) <= set(request_fields(request)), request.path
    # Every write carries an Idempotency-Key, with or without the caller's key.
    assert all(r.headers.get("idempotency-key") for r in requests if r.method == "POST")


async def test_every_accounting_parameter_is_declared_by_stripe_pythons_typed_params(
    books: StripeConnector, state: StripeState, sandbox: Sandbox
) -> None:
    await accounting_flow(books, state)

    problems = [
        f"{r.method} {r.path}: {p}"
        for r in sandbox.provider_requests()
        for p in typed_problems(typed_params_for(r), request_fields(r))
    ]

    assert problems == []


async def test_emulator_invoices_and_items_carry_the_2026_fixture_fields_and_2023_types(
    books: StripeConnector, state: StripeState, http: httpx.AsyncClient
) -> None:
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    made = await books.create_invoice(bill(customer))
    fetched = (await http.get(f"/v1/invoices/{made.id}")).json()
    item = next(iter(state.books.items.values()))
    missing = await http.get("/v1/invoices/in_nope")

    assert set(FIXTURES["invoice"]) == set(fetched)
    assert set(FIXTURES["invoiceitem"]) == set(item)
    assert set(FIXTURES["invoice"]["lines"]["data"][0]) == set(fetched["lines"]["data"][0])
    # The 2023 schema: the same types for every field both versions have (fields removed since,
    # such as `paid` and `charge`, are not asked for).
    typed = [p for p in schema_problems("invoice", fetched) if "is a required property" not in p]
    assert typed == []
    assert schema_problems("invoice", {**fetched, "total": "lots"}) != schema_problems("invoice", fetched)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "resource_missing")
    assert schema_problems("error", missing.json()) == []


# -- the emulator ------------------------------------------------------------------------------------------


async def test_the_emulator_refuses_what_stripe_refuses_on_invoices(
    state: StripeState, http: httpx.AsyncClient
) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    made = open_invoice(state, customer, 100, DUE)
    base = {"customer": customer, "collection_method": "send_invoice"}

    both = await http.post("/v1/invoices", data={**base, "days_until_due": "3", "due_date": "1797336000"})
    unknown = await http.post("/v1/invoices", data={**base, "colour": "red"})
    again = await http.post(f"/v1/invoices/{made}/finalize")
    late_item = await http.post(
        "/v1/invoiceitems", data={"customer": customer, "invoice": made, "unit_amount_decimal": "5"}
    )
    no_email = await http.post(f"/v1/invoices/{made}/send")
    no_card = await http.post(f"/v1/invoices/{made}/pay")
    no_customer = await http.post("/v1/invoiceitems", data={"invoice": made, "amount": "5"})

    for answer in (both, unknown, again, late_item, no_email, no_card, no_customer):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["type"] == "invalid_request_error"
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert no_customer.json()["error"]["code"] == "parameter_missing"


async def test_the_emulator_pays_out_of_band_and_voids_only_open_invoices(
    state: StripeState, http: httpx.AsyncClient
) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    paid, voided = open_invoice(state, customer, 100, DUE), open_invoice(state, customer, 200, DUE)

    paying = await http.post(f"/v1/invoices/{paid}/pay", data={"paid_out_of_band": "true"})
    voiding = await http.post(f"/v1/invoices/{voided}/void")
    void_paid = await http.post(f"/v1/invoices/{paid}/void")

    assert (paying.json()["status"], paying.json()["amount_remaining"], paying.json()["amount_paid"]) == (
        "paid",
        0,
        100,
    )
    assert voiding.json()["status"] == "void"
    assert voiding.json()["status_transitions"]["voided_at"] is not None
    assert void_paid.status_code == 400


async def test_the_emulator_lists_invoices_newest_first_with_cursors_and_filters(
    state: StripeState, http: httpx.AsyncClient
) -> None:
    ann = state.seed_customer(name="Ann", phone="+14155550123")
    bob = state.seed_customer(name="Bob", phone="+14155550124")
    made = [open_invoice(state, ann, 100, DUE) for _ in range(3)]
    open_invoice(state, bob, 100, DUE)

    first = (await http.get("/v1/invoices", params={"customer": ann, "limit": 2})).json()
    rest = (await http.get("/v1/invoices", params={"customer": ann, "limit": 2, "starting_after": made[1]})).json()
    unknown = await http.get("/v1/invoices", params={"customer": "cus_nobody"})

    assert ([i["id"] for i in first["data"]], first["has_more"]) == ([made[2], made[1]], True)
    assert ([i["id"] for i in rest["data"]], rest["has_more"]) == ([made[0]], False)
    assert (first["object"], first["url"]) == ("list", "/v1/invoices")
    assert unknown.status_code == 404


async def test_a_finalized_invoice_for_nothing_is_paid_at_once(state: StripeState) -> None:
    customer = state.seed_customer(name="Ann", phone="+14155550123")
    draft = state.books.create({"customer": customer, "collection_method": "send_invoice", "currency": "usd"})

    assert state.books.finalize(draft["id"], {})["status"] == "paid"


def test_a_snapshot_keeps_invoices_items_and_numbers_and_an_old_one_without_them_restores() -> None:
    state = StripeState(clock=lambda: NOW.timestamp())
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    made = open_invoice(state, customer, 100, DUE)
    state.books.send(made)
    restored = StripeState(clock=lambda: NOW.timestamp())

    restored.restore(json.loads(json.dumps(state.snapshot())))
    second = open_invoice(restored, customer, 100, DUE)
    legacy = {
        key: value
        for key, value in state.snapshot().items()
        if key not in {"invoices", "invoice_items", "invoice_emails", "invoice_sequences"}
    }
    StripeState().restore(legacy)

    assert restored.books.invoices[made] == state.books.invoices[made]
    assert restored.books.emails == state.books.emails
    assert restored.books.invoices[second]["number"].endswith("-0002")


# -- the paid invoice's webhook ---------------------------------------------------------------------------------


def received(callback: StripeCallback) -> WebhookRequest:
    """The callback as the server's route hands it over: header names lower-cased, as Starlette gives them."""
    headers = {name.lower(): value for name, value in callback.headers.items()}
    return WebhookRequest(kind="events", url=callback.url, headers=headers, body=callback.body, form={})


async def test_a_paid_invoice_queues_a_signed_invoice_paid_the_webhook_turns_into_a_payment(
    books: StripeConnector, state: StripeState, connection: SandboxConnection
) -> None:
    state.webhook_url = HOOK_URL
    customer = await books.create_customer(CustomerDraft(name="Ann", email="ann@example.com", idempotency_key="c-1"))
    made = await books.create_invoice(bill(customer.id))
    assert state.take_callbacks() == []

    state.pay_invoice(made.id)
    [callback] = state.take_callbacks()
    assert SPEC.webhook is not None
    events, reply = SPEC.webhook(received(callback), connection.secrets)

    assert connection.secrets["webhook_secret"] == SANDBOX_WEBHOOK_SECRET
    assert (callback.url, json.loads(callback.body)["type"]) == (HOOK_URL, "invoice.paid")
    assert reply.status == 200
    [event] = events
    assert isinstance(event, PaymentEvent)
    assert (event.object_id, event.kind, event.amount_minor) == (made.id, "invoice", 24000)
    assert event.currency is not None
    assert event.currency.upper() == "USD"
    assert event.event_id == json.loads(callback.body)["id"]


async def test_a_tampered_or_wrongly_keyed_invoice_paid_is_refused(
    books: StripeConnector, state: StripeState, connection: SandboxConnection
) -> None:
    state.webhook_url = HOOK_URL
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    made = await books.create_invoice(bill(customer))
    state.pay_invoice(made.id)
    [callback] = state.take_callbacks()
    tampered = StripeCallback(
        callback.url, callback.body.replace(b'"amount_paid":24000', b'"amount_paid":1'), callback.headers
    )
    forged = signed(HOOK_URL, json.loads(callback.body), secret="whsec_someone_else")

    for bad in (tampered, forged):
        with pytest.raises(WebhookRejectedError) as raised:
            handle(received(bad), connection.secrets)
        assert raised.value.status == 401
    with pytest.raises(WebhookRejectedError):
        handle(received(callback), {"api_key": SANDBOX_API_KEY})


async def test_paying_on_the_hosted_page_route_queues_the_event_and_unknown_or_paid_invoices_are_refused(
    books: StripeConnector, state: StripeState, connection: SandboxConnection
) -> None:
    state.webhook_url = HOOK_URL
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    made = await books.create_invoice(bill(customer))
    base = str(connection.settings["base_url"])

    async with httpx.AsyncClient(base_url=base) as client:
        paid = await client.post(f"/_invoices/{made.id}/pay")
        twice = await client.post(f"/_invoices/{made.id}/pay")
        unknown = await client.post("/_invoices/in_nope/pay")

    assert paid.json()["status"] == "paid"
    assert (twice.status_code, unknown.status_code) == (400, 404)
    assert len(state.take_callbacks()) == 1


def test_an_invoice_paid_without_a_webhook_endpoint_queues_nothing() -> None:
    state = StripeState(clock=lambda: NOW.timestamp())
    customer = state.seed_customer(name="Ann", email="ann@example.com")

    state.pay_invoice(open_invoice(state, customer, 100, DUE))

    assert state.take_callbacks() == []


def test_the_hosted_invoice_url_carries_no_secret_and_parses_as_https() -> None:
    state = StripeState(clock=lambda: NOW.timestamp())
    customer = state.seed_customer(name="Ann", email="ann@example.com")
    url = state.books.invoices[open_invoice(state, customer, 100, DUE)]["hosted_invoice_url"]

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parse_qs(parts.query)) == ("https", "invoice.stripe.com", {})
    assert SANDBOX_API_KEY not in url
    assert SANDBOX_WEBHOOK_SECRET not in url
