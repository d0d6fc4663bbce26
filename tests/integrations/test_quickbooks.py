"""The QuickBooks connector against its emulator on a real 127.0.0.1 socket, and both against Intuit's schema."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.capabilities.accounting import AccountingProvider
from integrations.capabilities.errors import NotFoundError, ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.quickbooks import SPEC, QuickBooksConnector, mappers
from integrations.quickbooks.connector import request_id
from integrations.quickbooks.sandbox import REALM_ID, TOKEN_PATH
from integrations.quickbooks.sandbox_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, QuickBooksState
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import SPECS

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
PHONE = "+14155550123"
COMPANY = f"/v3/company/{REALM_ID}"
TYPES_FILE = "quickbooks/qbo-v3.customer-invoice-payment.types.json"


# -- checking against the XSD-derived type map ------------------------------------------------------


@cache
def _types() -> dict[str, Any]:
    return dict(json.loads((SPECS / TYPES_FILE).read_text())["types"])


def _members(type_name: str) -> tuple[dict[str, str], set[str], bool]:
    """(element name → type, attribute names, simple content?) for a type, its bases included."""
    types = _types()
    elements: dict[str, str] = {}
    attributes: set[str] = set()
    simple = False
    name: str | None = type_name
    while name is not None and name in types:
        node = types[name]
        for element in node.get("elements", []):
            elements.setdefault(element["name"], element.get("type", ""))
        attributes |= {attribute["name"] for attribute in node.get("attributes", [])}
        base = node.get("base")
        if base is not None and (base not in types or types[base].get("kind") == "simple") and not elements:
            simple = True
        name = base
    return elements, attributes, simple


def schema_problems(value: Any, type_name: str, where: str = "") -> list[str]:
    """Keys the schema does not know, anywhere in `value` read as `type_name`."""
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in schema_problems(item, type_name, f"{where}[{index}]")]
    if not isinstance(value, dict) or type_name not in _types():
        return []
    elements, attributes, simple = _members(type_name)
    problems: list[str] = []
    for key, child in value.items():
        if simple and key == "value":
            continue
        if key in attributes:
            continue
        if key not in elements:
            problems.append(f"{where}.{key} is not in {type_name}")
            continue
        problems += schema_problems(child, elements[key], f"{where}.{key}")
    return problems


def check_request(request: RecordedRequest) -> list[str]:
    """What is wrong with a request the connector sent (empty when QuickBooks would take it)."""
    problems: list[str] = []
    if request.path == TOKEN_PATH:
        return problems
    minor = request.query.get("minorversion", ["0"])
    if int(minor[0]) < 75:
        problems.append(f"{request.method} {request.path}: minorversion {minor}")
    is_write = request.method == "POST" and not request.path.endswith("/query")
    if is_write and not request.query.get("requestid"):
        problems.append(f"{request.method} {request.path}: write without requestid")
    if request.path == f"{COMPANY}/customer" and request.method == "POST":
        problems += schema_problems(request.body, "Customer", "Customer")
    if request.path == f"{COMPANY}/invoice" and request.method == "POST":
        problems += schema_problems(request.body, "Invoice", "Invoice")
    return problems


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"quickbooks": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_company(sandbox: Sandbox) -> Iterator[None]:
    sandbox.reset()
    yield
    # Every request any test made must be one QuickBooks accepts.
    assert [p for r in sandbox.provider_requests() for p in check_request(r)] == []


@pytest.fixture
def state(sandbox: Sandbox) -> QuickBooksState:
    assert isinstance(sandbox.state, QuickBooksState)
    return sandbox.state


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("quickbooks")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


@pytest.fixture
def books(base_url: str, vault: MemoryVault) -> QuickBooksConnector:
    return connect(base_url, vault)


def connect(base_url: str, vault: MemoryVault) -> QuickBooksConnector:
    conn = SPEC.sandbox_connection(base_url)
    settings = SPEC.settings_model.model_validate(conn.settings)
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9")
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, QuickBooksConnector)
    return connector


def sent(sandbox: Sandbox, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == method and r.path == path]


def an_invoice(customer_id: str, **changes: Any) -> InvoiceRequest:
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "lines": [
            InvoiceLine(description="Drain cleaning", quantity=1, unit_amount_minor=18000),
            InvoiceLine(description="Call-out fee", quantity=2, unit_amount_minor=3000),
        ],
        "currency": "USD",
        "due_date": date(2026, 4, 3),
    }
    return InvoiceRequest(**{**fields, **changes})


# -- the integration as the registry sees it ----------------------------------------------------------


def test_the_spec_describes_an_oauth_accounting_provider_with_the_realm_as_a_setting(base_url: str) -> None:
    conn = SPEC.sandbox_connection(base_url)

    assert SPEC.name == "quickbooks"
    assert SPEC.capabilities == frozenset({"accounting"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert conn.settings["realm_id"] == REALM_ID
    assert conn.settings["token_url"] == f"{base_url}{TOKEN_PATH}"


def test_the_connector_is_an_accounting_provider_that_can_check_its_connection(books: QuickBooksConnector) -> None:
    assert isinstance(books, AccountingProvider)
    assert isinstance(books, Checkable)


def test_settings_refuse_unknown_fields_and_minor_versions_below_75() -> None:
    with pytest.raises(ValueError, match="extra"):
        SPEC.settings_model.model_validate({"realm_id": "1", "company": "x"})
    with pytest.raises(ValueError, match="75"):
        SPEC.settings_model.model_validate({"realm_id": "1", "minor_version": 65})


async def test_check_connection_names_the_company(books: QuickBooksConnector) -> None:
    assert await books.check_connection() == "QuickBooks company Sandbox Plumbing Co"


# -- finding customers --------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["(415) 555-0123", "415.555.0123", "+1 415 555 0123", "1-415-555-0123", PHONE])
async def test_a_customer_stored_in_any_phone_format_is_found_by_its_e164_number(
    books: QuickBooksConnector, state: QuickBooksState, stored: str
) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone=stored)

    found = await books.find_customers(phone=PHONE)

    assert [c.id for c in found] == [customer_id]
    assert found[0].phone == PHONE
    assert found[0].provider == "quickbooks"


async def test_a_number_one_digit_away_is_not_a_match(books: QuickBooksConnector, state: QuickBooksState) -> None:
    state.seed_customer(name="Near Miss", phone="(415) 555-0124")

    assert await books.find_customers(phone=PHONE) == []


async def test_every_customer_with_the_phone_is_returned_never_a_guess(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    first = state.seed_customer(name="Ada Lovelace", phone="(415) 555-0123")
    second = state.seed_customer(name="Ada L. (office)", phone="415-555-0123")

    assert sorted(c.id for c in await books.find_customers(phone=PHONE)) == sorted([first, second])


async def test_a_customer_is_found_by_email_in_any_case(books: QuickBooksConnector, state: QuickBooksState) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", email="Ada@Example.com")

    found = await books.find_customers(email="ada@example.com")

    assert [(c.id, c.email) for c in found] == [(customer_id, "ada@example.com")]


async def test_a_quote_in_an_email_reaches_the_query_escaped_and_finds_o_brien(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    customer_id = state.seed_customer(name="Pat O'Brien", email="pat.o'brien@example.com")

    found = await books.find_customers(email="pat.o'brien@example.com")

    assert [(c.id, c.name) for c in found] == [(customer_id, "Pat O'Brien")]
    (query,) = [r.body for r in sent(sandbox, "POST", f"{COMPANY}/query")]
    assert "PrimaryEmailAddr = 'pat.o\\'brien@example.com'" in query


async def test_an_injection_attempt_finds_nothing_and_breaks_nothing(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    state.seed_customer(name="Ada Lovelace", email="ada@example.com")

    assert await books.find_customers(email="' or 1=1") == []
    assert await books.find_customers(email="x\\' or Active = true or PrimaryEmailAddr = '") == []
    assert len(state.dump()["customers"]) == 1


def test_quote_escapes_backslashes_before_quotes() -> None:
    assert mappers.quote("O'Brien") == "'O\\'Brien'"
    assert mappers.quote("a\\'b") == "'a\\\\\\'b'"


async def test_phone_lookups_page_through_every_customer(books: QuickBooksConnector, state: QuickBooksState) -> None:
    for number in range(1005):
        state.seed_customer(name=f"Customer {number}", phone=f"(212) 555-{number:04d}")
    wanted = state.seed_customer(name="Late Customer", phone="(415) 555-0123")

    assert [c.id for c in await books.find_customers(phone=PHONE)] == [wanted]


# -- creating customers -------------------------------------------------------------------------------


async def test_create_customer_stores_phone_and_email_and_returns_the_record(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    created = await books.create_customer(CustomerDraft(name="Ada Lovelace", phone=PHONE, email="ada@example.com"))

    (stored,) = state.dump()["customers"]
    assert stored["PrimaryPhone"] == {"FreeFormNumber": PHONE}
    assert stored["PrimaryEmailAddr"] == {"Address": "ada@example.com"}
    assert (created.id, created.name, created.phone, created.balance_minor) == (stored["Id"], "Ada Lovelace", PHONE, 0)


async def test_a_retried_create_customer_with_the_same_key_creates_one_customer(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    draft = CustomerDraft(name="Ada Lovelace", phone=PHONE, idempotency_key="call-1:create_customer")

    first = await books.create_customer(draft)
    second = await books.create_customer(draft)

    assert first.id == second.id
    assert len(state.dump()["customers"]) == 1
    ids = {r.query["requestid"][0] for r in sent(sandbox, "POST", f"{COMPANY}/customer")}
    assert ids == {request_id("customer", "call-1:create_customer")}


async def test_a_create_that_timed_out_after_landing_is_not_booked_twice(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    # The first attempt lands, then its answer is lost; the retry carries the same requestid.
    sandbox.inject(Fault(kind="slow", seconds=1.5, times=1, path="/customer"))
    draft = CustomerDraft(name="Ada Lovelace", phone=PHONE, idempotency_key="k1")
    with deadline_scope(1.0), pytest.raises(UpstreamError):
        await books.create_customer(draft)
    await asyncio.sleep(1.0)  # the slow attempt lands after the connector stopped waiting
    assert len(state.dump()["customers"]) == 1

    created = await books.create_customer(draft)

    assert [c["Id"] for c in state.dump()["customers"]] == [created.id]


async def test_a_second_customer_with_a_taken_name_gets_a_distinct_display_name(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    state.seed_customer(name="John Smith", phone="(212) 555-0100")

    created = await books.create_customer(CustomerDraft(name="John Smith", phone=PHONE))

    assert created.name == f"John Smith ({PHONE})"
    assert len(state.dump()["customers"]) == 2


# -- invoices -----------------------------------------------------------------------------------------


async def test_create_invoice_books_the_lines_and_returns_totals_in_minor_units_with_a_pay_link(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ada Lovelace", email="ada@example.com")

    invoice = await books.create_invoice(an_invoice(customer, memo="Thanks!"))

    assert (invoice.total_minor, invoice.balance_minor, invoice.currency) == (24000, 24000, "USD")
    assert (invoice.status, invoice.customer_id, invoice.due_date) == ("open", customer, date(2026, 4, 3))
    assert invoice.number == "1001"
    assert invoice.pay_url is not None
    assert invoice.pay_url.startswith("https://")
    (posted,) = sent(sandbox, "POST", f"{COMPANY}/invoice")
    assert [line["Amount"] for line in posted.body["Line"]] == [180.0, 60.0]
    assert posted.body["Line"][1]["SalesItemLineDetail"] == {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 30.0}
    assert sent(sandbox, "GET", f"{COMPANY}/invoice/{invoice.id}")[0].query["include"] == ["invoiceLink"]
    assert state.customer(customer)["Balance"] == 240.0


async def test_a_retried_create_invoice_with_the_same_key_creates_one_invoice(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    request = an_invoice(customer, idempotency_key="call-1:create_invoice")

    first = await books.create_invoice(request)
    second = await books.create_invoice(request)

    assert first.id == second.id
    assert len(state.dump()["invoices"]) == 1


async def test_a_create_invoice_that_hit_a_5xx_then_retried_creates_one_invoice(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    sandbox.inject(Fault(kind="server_error", times=1, path="/invoice", method="POST"))

    invoice = await books.create_invoice(an_invoice(customer))

    assert [i["Id"] for i in state.dump()["invoices"]] == [invoice.id]
    ids = [r.query["requestid"][0] for r in sent(sandbox, "POST", f"{COMPANY}/invoice")]
    assert len(ids) == 2
    assert len(set(ids)) == 1


async def test_open_invoices_lists_unpaid_ones_oldest_due_first(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    other = state.seed_customer(name="Grace Hopper")
    later = await books.create_invoice(an_invoice(customer, due_date=date(2026, 5, 1)))
    sooner = await books.create_invoice(an_invoice(customer, due_date=date(2026, 4, 1)))
    paid = await books.create_invoice(an_invoice(customer, due_date=date(2026, 3, 1)))
    await books.create_invoice(an_invoice(other))
    state.pay_invoice(paid.id)

    assert [i.id for i in await books.open_invoices(customer)] == [sooner.id, later.id]
    assert await books.open_invoices("' or 1=1") == []


async def test_a_paid_invoice_reads_as_paid_with_no_balance_and_the_customer_owes_nothing(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace", phone=PHONE)
    invoice = await books.create_invoice(an_invoice(customer))
    assert (await books.find_customers(phone=PHONE))[0].balance_minor == 24000

    state.pay_invoice(invoice.id)

    again = await books.get_invoice(invoice.id)
    assert (again.status, again.balance_minor, again.total_minor) == ("paid", 0, 24000)
    assert (await books.find_customers(phone=PHONE))[0].balance_minor == 0
    assert state.dump()["payments"][0]["TotalAmt"] == 240.0


async def test_get_invoice_of_an_unknown_or_malformed_id_is_not_found(books: QuickBooksConnector) -> None:
    with pytest.raises(NotFoundError):
        await books.get_invoice("999")
    with pytest.raises(NotFoundError):
        await books.get_invoice("1/../customer")


async def test_send_invoice_posts_to_send_with_send_to_and_keeps_the_address_on_a_customer_without_one(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    invoice = await books.create_invoice(an_invoice(customer))

    sent_invoice = await books.send_invoice(invoice.id, email="ada@example.com", idempotency_key="k-send")
    await books.send_invoice(invoice.id, email="ada@example.com", idempotency_key="k-send")

    (posted, replay) = sent(sandbox, "POST", f"{COMPANY}/invoice/{invoice.id}/send")
    assert posted.query["sendTo"] == ["ada@example.com"]
    assert posted.query["requestid"] == replay.query["requestid"]
    assert sent_invoice.raw["EmailStatus"] == "EmailSent"
    assert state.dump()["sent_invoices"] == [
        {"invoice_id": invoice.id, "to": "ada@example.com", "at": state.dump()["sent_invoices"][0]["at"]}
    ]
    assert state.customer(customer)["PrimaryEmailAddr"] == {"Address": "ada@example.com"}


async def test_a_stale_sync_token_is_read_again_and_the_update_retried_once(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    invoice = await books.create_invoice(an_invoice(customer))
    state.stale_updates = 1

    await books.send_invoice(invoice.id, email="ada@example.com")

    assert state.customer(customer)["PrimaryEmailAddr"] == {"Address": "ada@example.com"}
    assert len(sent(sandbox, "GET", f"{COMPANY}/customer/{customer}")) == 2


async def test_a_second_stale_sync_token_is_reported_not_looped_on(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    invoice = await books.create_invoice(an_invoice(customer))
    state.stale_updates = 2

    with pytest.raises(UpstreamError, match="5010"):
        await books.send_invoice(invoice.id, email="ada@example.com")


async def test_sending_an_invoice_with_nowhere_to_send_it_is_an_error(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    invoice = await books.create_invoice(an_invoice(customer))

    with pytest.raises(UpstreamError, match="2020"):
        await books.send_invoice(invoice.id)


# -- faults -------------------------------------------------------------------------------------------


async def test_a_fault_inside_an_http_200_is_an_error_not_a_record(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = state.seed_customer(name="Ada Lovelace")
    await books.get_invoice((await books.create_invoice(an_invoice(customer))).id)
    state.fault_next_in_200("6000", "A business validation error has occurred while processing your request")

    with pytest.raises(UpstreamError, match="6000"):
        await books.find_customers(email="ada@example.com")


async def test_a_429_with_retry_after_is_waited_out_then_succeeds(
    books: QuickBooksConnector, state: QuickBooksState, sandbox: Sandbox
) -> None:
    state.seed_customer(name="Ada Lovelace", phone=PHONE)
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1, path="/query"))

    with deadline_scope(10):
        found = await books.find_customers(phone=PHONE)

    assert len(found) == 1
    assert len(sent(sandbox, "POST", f"{COMPANY}/query")) == 2


async def test_persistent_5xx_is_an_upstream_error_within_the_deadline(
    books: QuickBooksConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0, path="/query"))

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await books.find_customers(phone=PHONE)

    assert caught.value.retryable


async def test_a_slow_quickbooks_is_given_up_on_within_the_deadline(
    books: QuickBooksConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=1.5, times=0))

    with deadline_scope(0.8), pytest.raises(UpstreamError):
        await books.find_customers(phone=PHONE)


# -- OAuth --------------------------------------------------------------------------------------------


async def test_the_refresh_sends_basic_client_credentials_and_saves_the_rotated_refresh_token(
    books: QuickBooksConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    original = vault.secrets["refresh_token"]

    await books.find_customers(email="ada@example.com")

    (refresh,) = sent(sandbox, "POST", TOKEN_PATH)
    basic = base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
    assert refresh.headers["authorization"] == f"Basic {basic}"
    assert refresh.body == {"grant_type": "refresh_token", "refresh_token": original}
    assert vault.secrets["refresh_token"] != original
    assert vault.secrets["access_token"]


async def test_an_expired_access_token_is_refreshed_silently_with_the_rotated_refresh_token(
    books: QuickBooksConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await books.find_customers(email="ada@example.com")
    rotated = vault.secrets["refresh_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    assert await books.find_customers(email="ada@example.com") == []

    refreshes = sent(sandbox, "POST", TOKEN_PATH)
    assert len(refreshes) == 2
    assert refreshes[1].body["refresh_token"] == rotated


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    books: QuickBooksConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await books.find_customers(email="ada@example.com")

    assert vault.expired_reason is not None


async def test_the_emulator_answers_an_unknown_token_with_quickbooks_401(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{base_url}{COMPANY}/invoice/1", params={"minorversion": "75"}, headers={"Authorization": "Bearer nope"}
        )

    assert answer.status_code == 401
    assert answer.json()["fault"]["error"][0]["code"] == "3200"


# -- the emulator against the schema ------------------------------------------------------------------


async def test_the_emulator_answers_records_and_faults_the_schema_knows(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    customer = await books.create_customer(CustomerDraft(name="Ada Lovelace", phone=PHONE, email="a@example.com"))
    invoice = await books.create_invoice(an_invoice(customer.id, memo="Thanks"))
    await books.send_invoice(invoice.id)
    state.pay_invoice(invoice.id)

    assert schema_problems(state.customer(customer.id), "Customer", "Customer") == []
    assert schema_problems(state.invoice(invoice.id, with_link=True), "Invoice", "Invoice") == []
    assert schema_problems(state.dump()["payments"][0], "Payment", "Payment") == []
    with pytest.raises(NotFoundError):
        await books.get_invoice("424242")


def test_the_query_parser_refuses_unqueryable_fields_and_bad_syntax(state: QuickBooksState) -> None:
    from integrations.quickbooks import sandbox_query
    from integrations.quickbooks.sandbox import QUERY_FIELDS

    with pytest.raises(sandbox_query.QueryError) as unqueryable:
        sandbox_query.parse("select * from Customer where PrimaryPhone = '1'", QUERY_FIELDS)
    assert unqueryable.value.code == "4001"
    with pytest.raises(sandbox_query.QueryError) as unterminated:
        sandbox_query.parse("select * from Customer where DisplayName = 'O'Brien'", QUERY_FIELDS)
    assert unterminated.value.code == "4000"


# -- restarts -----------------------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("quickbooks", SPEC.sandbox, tmp_path / "quickbooks.json") as running:
        yield running


async def test_after_a_restart_the_connector_sees_the_same_books_and_requestids(restart: Restart) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    ada = await before.create_customer(CustomerDraft(name="Ada Lovelace", phone=PHONE, idempotency_key="c1"))
    invoice = await before.create_invoice(an_invoice(ada.id, idempotency_key="i1"))

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert [c.id for c in await after.find_customers(phone=PHONE)] == [ada.id]
    assert (await after.create_invoice(an_invoice(ada.id, idempotency_key="i1"))).id == invoice.id
    assert sent(restart.after, "POST", TOKEN_PATH) == []


def test_a_snapshot_it_did_not_write_is_refused(state: QuickBooksState) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        state.restore({"version": 99})
