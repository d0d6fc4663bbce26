"""The Xero connector against its emulator on a real 127.0.0.1 socket, and the emulator against Xero's spec."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from integrations.capabilities.accounting import AccountingProvider
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.xero import SPEC, XeroConnector, mappers, sandbox_state
from integrations.xero.sandbox import SANDBOX_REFRESH_TOKEN, SANDBOX_TENANT_ID
from integrations.xero.sandbox_state import XeroState
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
PHONE = "+14155550123"
API = "/api.xro/2.0"
ACCOUNTING_SPEC = "xero/xero_accounting.contacts-invoices.json"


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"xero": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_organisation(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> XeroState:
    assert isinstance(sandbox.state, XeroState)
    return sandbox.state


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("xero")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


@pytest.fixture
def books(base_url: str, vault: MemoryVault) -> XeroConnector:
    return connect(base_url, vault)


def connect(base_url: str, vault: MemoryVault, **settings: str) -> XeroConnector:
    conn = SPEC.sandbox_connection(base_url)
    model = SPEC.settings_model.model_validate({**conn.settings, **settings})
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9")
    connector = SPEC.build(model, vault, env)
    assert isinstance(connector, XeroConnector)
    return connector


def api_requests(sandbox: Sandbox, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
    """Accounting API requests the emulator received (token requests excluded)."""
    return [
        r
        for r in sandbox.provider_requests()
        if r.path.startswith(API)
        and (method is None or r.method == method)
        and (path is None or r.path == f"{API}{path}")
    ]


def draft(key: str | None = "c-1", *, name: str = "Ann O'Brien", phone: str | None = PHONE) -> CustomerDraft:
    return CustomerDraft(name=name, phone=phone, email="ann.obrien@example.com", idempotency_key=key)


def invoice_request(customer_id: str, key: str | None = "i-1") -> InvoiceRequest:
    return InvoiceRequest(
        customer_id=customer_id,
        lines=[
            InvoiceLine(description="Boiler service", quantity=1, unit_amount_minor=20000),
            InvoiceLine(description="Filter", quantity=2, unit_amount_minor=2000),
        ],
        currency="USD",
        due_date=date(2026, 12, 15),
        memo="Job 42",
        idempotency_key=key,
    )


# -- the capability -------------------------------------------------------------------------------------


def test_the_connector_is_an_accounting_provider_that_can_check_itself(books: XeroConnector) -> None:
    assert isinstance(books, AccountingProvider)
    assert isinstance(books, Checkable)
    assert SPEC.capabilities == frozenset({"accounting"})


async def test_check_connection_reaches_the_organisation(books: XeroConnector) -> None:
    assert SANDBOX_TENANT_ID in await books.check_connection()


async def test_a_new_customer_is_stored_with_its_phone_split_into_xero_parts(
    books: XeroConnector, state: XeroState
) -> None:
    created = await books.create_customer(draft())

    stored = state.dump()["customers"]
    mobile = next(p for p in stored[0]["Phones"] if p["PhoneType"] == "MOBILE")
    assert created.phone == PHONE
    assert created.email == "ann.obrien@example.com"
    assert created.name == "Ann O'Brien"
    assert (mobile["PhoneCountryCode"], mobile["PhoneNumber"]) == ("1", "4155550123")


@pytest.mark.parametrize(
    "phone",
    [
        {"PhoneType": "DEFAULT", "PhoneNumber": "(415) 555-0123"},
        {"PhoneType": "DEFAULT", "PhoneNumber": "415.555.0123"},
        {"PhoneType": "MOBILE", "PhoneCountryCode": "1", "PhoneAreaCode": "415", "PhoneNumber": "555-0123"},
        {"PhoneType": "MOBILE", "PhoneCountryCode": "+1", "PhoneAreaCode": "(415)", "PhoneNumber": "555 0123"},
        {"PhoneType": "DEFAULT", "PhoneAreaCode": "415", "PhoneNumber": "5550123"},
    ],
)
async def test_a_customer_is_found_by_phone_however_its_parts_were_typed(
    books: XeroConnector, state: XeroState, phone: dict[str, str]
) -> None:
    state.create_contact({"Name": "Typed By Hand", "Phones": [phone]})

    found = await books.find_customers(phone=PHONE)

    assert [customer.name for customer in found] == ["Typed By Hand"]


async def test_a_phone_a_digit_away_finds_nobody(books: XeroConnector, state: XeroState) -> None:
    state.seed_contact(name="Near Miss", phone="(415) 555-0124")

    assert await books.find_customers(phone=PHONE) == []


async def test_two_customers_with_one_phone_are_both_returned(books: XeroConnector) -> None:
    await books.create_customer(draft("c-1", name="Ann O'Brien"))
    await books.create_customer(draft("c-2", name="Sean O'Brien"))

    found = await books.find_customers(phone=PHONE)

    assert sorted(customer.name for customer in found) == ["Ann O'Brien", "Sean O'Brien"]


async def test_a_customer_is_found_by_email_in_any_case_and_never_by_a_longer_address(
    books: XeroConnector, state: XeroState
) -> None:
    state.seed_contact(name="Ann O'Brien", email="Ann.OBrien@Example.com")
    state.seed_contact(name="Other Ann", email="xann.obrien@example.com")

    found = await books.find_customers(email="ann.obrien@example.com")

    assert [customer.name for customer in found] == ["Ann O'Brien"]
    assert found[0].email == "ann.obrien@example.com"


async def test_caller_text_never_reaches_a_where_filter_and_a_quote_finds_nothing(
    books: XeroConnector, sandbox: Sandbox
) -> None:
    await books.create_customer(draft())

    assert await books.find_customers(email="x' or 1=1 or 'x@example.com") == []
    assert await books.find_customers(email='x" or Name!=null or "x@example.com') == []
    assert [c.name for c in await books.find_customers(email="ann.obrien@example.com")] == ["Ann O'Brien"]
    assert all("where" not in r.query for r in api_requests(sandbox))
    assert any(r.query.get("searchTerm") == ["x' or 1=1 or 'x@example.com"] for r in api_requests(sandbox))


async def test_the_same_key_creates_one_customer_and_sends_it_as_idempotency_key(
    books: XeroConnector, state: XeroState, sandbox: Sandbox
) -> None:
    first = await books.create_customer(draft("c-1"))
    again = await books.create_customer(draft("c-1"))

    assert again.id == first.id
    assert len(state.dump()["customers"]) == 1
    assert [r.headers.get("idempotency-key") for r in api_requests(sandbox, "PUT", "/Contacts")] == ["c-1", "c-1"]


async def test_an_invoice_is_created_once_per_key_open_for_its_total_with_a_pay_link(
    books: XeroConnector, state: XeroState, sandbox: Sandbox
) -> None:
    customer = await books.create_customer(draft())

    first = await books.create_invoice(invoice_request(customer.id, "i-1"))
    again = await books.create_invoice(invoice_request(customer.id, "i-1"))

    assert again.id == first.id
    assert len(state.dump()["invoices"]) == 1
    assert (first.total_minor, first.balance_minor, first.currency) == (24000, 24000, "USD")
    assert first.status == "open"
    assert first.due_date == date(2026, 12, 15)
    assert first.number == "INV-0001"
    assert first.pay_url is not None
    assert first.pay_url.startswith("https://in.xero.com/")
    body = api_requests(sandbox, "PUT", "/Invoices")[0].body
    sent = body["Invoices"][0]
    assert (sent["Type"], sent["Status"], sent["Reference"]) == ("ACCREC", "AUTHORISED", "Job 42")
    assert [line["UnitAmount"] for line in sent["LineItems"]] == [200.0, 20.0]
    assert all(line["AccountCode"] == "200" for line in sent["LineItems"])


async def test_the_customer_balance_counts_its_open_invoices(books: XeroConnector) -> None:
    customer = await books.create_customer(draft())
    await books.create_invoice(invoice_request(customer.id))

    [found] = await books.find_customers(phone=PHONE)

    assert found.balance_minor == 24000


async def test_open_invoices_list_unpaid_ones_oldest_due_first_and_drop_paid_ones(
    books: XeroConnector, state: XeroState
) -> None:
    customer = await books.create_customer(draft())
    later = await books.create_invoice(invoice_request(customer.id, "i-1"))
    earlier_request = invoice_request(customer.id, "i-2").model_copy(update={"due_date": date(2026, 11, 1)})
    earlier = await books.create_invoice(earlier_request)
    paid = await books.create_invoice(invoice_request(customer.id, "i-3"))
    state.pay_invoice(paid.id)

    listed = await books.open_invoices(customer.id)
    fetched = await books.get_invoice(paid.id)

    assert [invoice.id for invoice in listed] == [earlier.id, later.id]
    assert (fetched.status, fetched.balance_minor, fetched.total_minor) == ("paid", 0, 24000)


async def test_sending_an_invoice_emails_it_with_204_and_keeps_it_open(
    books: XeroConnector, state: XeroState, sandbox: Sandbox
) -> None:
    customer = await books.create_customer(draft())
    invoice = await books.create_invoice(invoice_request(customer.id))

    sent = await books.send_invoice(invoice.id, idempotency_key="s-1")

    assert (sent.id, sent.status) == (invoice.id, "open")
    assert state.dump()["emails_sent"] == [{"InvoiceID": invoice.id, "To": "ann.obrien@example.com"}]
    [email] = api_requests(sandbox, "POST", f"/Invoices/{invoice.id}/Email")
    assert email.headers.get("idempotency-key") == "s-1"


async def test_sending_to_another_address_updates_the_contact_first(books: XeroConnector, state: XeroState) -> None:
    customer = await books.create_customer(draft())
    invoice = await books.create_invoice(invoice_request(customer.id))

    await books.send_invoice(invoice.id, email="accounts@example.com", idempotency_key="s-1")

    assert state.dump()["emails_sent"] == [{"InvoiceID": invoice.id, "To": "accounts@example.com"}]


async def test_an_unknown_invoice_is_not_found(books: XeroConnector) -> None:
    with pytest.raises(NotFoundError):
        await books.get_invoice("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFoundError):
        await books.send_invoice("00000000-0000-0000-0000-000000000000")


async def test_an_invoice_for_an_unknown_customer_is_refused_with_xeros_message(books: XeroConnector) -> None:
    with pytest.raises(UpstreamError) as caught:
        await books.create_invoice(invoice_request("00000000-0000-0000-0000-000000000000"))

    assert caught.value.status == 400
    assert "contact could not be found" in str(caught.value)


# -- tenant, limits, faults and tokens ---------------------------------------------------------------------------


async def test_every_request_names_the_tenant(books: XeroConnector, sandbox: Sandbox) -> None:
    await books.find_customers(phone=PHONE)

    assert {r.headers.get("xero-tenant-id") for r in api_requests(sandbox)} == {SANDBOX_TENANT_ID}


async def test_another_tenant_is_refused(base_url: str, vault: MemoryVault) -> None:
    stranger = connect(base_url, vault, tenant_id="11111111-1111-4111-8111-111111111111")

    with pytest.raises(UpstreamError) as caught:
        await stranger.find_customers(phone=PHONE)

    assert caught.value.status == 403


async def test_the_rate_limit_headers_are_read_from_every_answer(books: XeroConnector) -> None:
    await books.find_customers(phone=PHONE)

    assert set(books.limits) >= {"X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"}
    assert int(books.limits["X-MinLimit-Remaining"]) < sandbox_state.MINUTE_LIMIT


async def test_a_used_up_minute_limit_holds_off_instead_of_spending_a_request(
    books: XeroConnector, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_state, "MINUTE_LIMIT", 1)
    await books.find_customers(phone=PHONE)
    sent_before = len(api_requests(sandbox))

    with deadline_scope(2), pytest.raises(RateLimitedError) as caught:
        await books.find_customers(phone=PHONE)

    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 50
    assert len(api_requests(sandbox)) == sent_before


async def test_a_429_with_retry_after_is_waited_out_and_then_succeeds(books: XeroConnector, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=0, times=1, path=f"{API}/Contacts"))

    with deadline_scope(5):
        created = await books.create_customer(draft())

    assert created.name == "Ann O'Brien"
    assert len(api_requests(sandbox, "PUT", "/Contacts")) == 2


async def test_the_emulators_429_carries_xeros_rate_limit_headers(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=3, times=1, path=f"{API}/Contacts"))

    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}{API}/Contacts")

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.headers["X-Rate-Limit-Problem"] == "minute"


async def test_a_day_limit_429_without_retry_after_gives_up_at_once() -> None:
    from integrations.xero.client import _retry_after

    assert _retry_after({"X-Rate-Limit-Problem": "day"}) == 3600.0
    assert _retry_after({"Retry-After": "7", "X-Rate-Limit-Problem": "minute"}) == 7.0


async def test_a_server_that_keeps_failing_is_an_upstream_error_within_the_deadline(
    books: XeroConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0, path=f"{API}/Contacts"))

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await books.find_customers(phone=PHONE)

    assert caught.value.retryable


async def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_saved(
    books: XeroConnector, sandbox: Sandbox, vault: MemoryVault
) -> None:
    await books.find_customers(phone=PHONE)
    first_refresh = (await vault.load())["refresh_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    await books.find_customers(phone=PHONE)

    secrets = await vault.load()
    assert first_refresh != SANDBOX_REFRESH_TOKEN
    assert secrets["refresh_token"] not in (SANDBOX_REFRESH_TOKEN, first_refresh)
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    books: XeroConnector, sandbox: Sandbox, vault: MemoryVault
) -> None:
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await books.find_customers(phone=PHONE)

    assert vault.expired_reason is not None


async def test_the_token_endpoint_refuses_a_spent_refresh_token(base_url: str) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": SANDBOX_REFRESH_TOKEN,
        "client_id": sandbox_state.SANDBOX_CLIENT_ID,
        "client_secret": sandbox_state.SANDBOX_CLIENT_SECRET,
    }
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{base_url}/connect/token", data=form)
        again = await client.post(f"{base_url}/connect/token", data=form)

    assert first.status_code == 200
    assert first.json()["refresh_token"] != SANDBOX_REFRESH_TOKEN
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


async def test_the_api_answers_401_without_a_token(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}{API}/Contacts", headers={"xero-tenant-id": SANDBOX_TENANT_ID})

    assert answer.status_code == 401
    assert answer.json()["Title"] == "Unauthorized"


# -- the emulator against Xero's spec -------------------------------------------------------------------------------


async def test_every_request_the_connector_sends_is_in_xeros_spec(books: XeroConnector, sandbox: Sandbox) -> None:
    spec = OpenApi(ACCOUNTING_SPEC)
    customer = await books.create_customer(draft())
    await books.find_customers(phone=PHONE, email="ann.obrien@example.com")
    invoice = await books.create_invoice(invoice_request(customer.id))
    await books.open_invoices(customer.id)
    await books.send_invoice(invoice.id, email="accounts@example.com", idempotency_key="s-1")
    await books.check_connection()

    sent = api_requests(sandbox)
    problems = [
        problem
        for request in sent
        for problem in spec.check_request(dataclasses.replace(request, path=request.path[len(API) :]))
    ]
    # The Email body is Xero's `RequestEmpty`, an empty object, which the checker counts as no body.
    [email] = [r for r in sent if r.path.endswith("/Email")]
    assert email.body in ({}, None)
    assert email.headers.get("content-type") == "application/json"
    assert [p for p in problems if not p.endswith("/Email: missing required body")] == []
    assert {(r.method, r.path.split("/")[3]) for r in sent} >= {("PUT", "Contacts"), ("PUT", "Invoices")}
    assert all(r.headers.get("xero-tenant-id") for r in sent)


async def test_the_emulators_answers_match_xeros_schemas(
    base_url: str, books: XeroConnector, vault: MemoryVault
) -> None:
    spec = OpenApi(ACCOUNTING_SPEC)
    customer = await books.create_customer(draft())
    invoice = await books.create_invoice(invoice_request(customer.id))
    token = (await vault.load())["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": SANDBOX_TENANT_ID}

    async with httpx.AsyncClient(base_url=f"{base_url}{API}", headers=headers) as client:
        contacts = (await client.get("/Contacts", params={"page": 1})).json()
        invoices = (await client.get("/Invoices", params={"ContactIDs": customer.id})).json()
        online = (await client.get(f"/Invoices/{invoice.id}/OnlineInvoice")).json()
        refused = await client.put("/Contacts", json={"Contacts": [{"Name": ""}]})

    assert spec.validate("Contacts", contacts) == []
    assert spec.validate("Invoices", invoices) == []
    assert spec.validate("OnlineInvoices", online) == []
    assert refused.status_code == 400
    assert spec.validate("Error", refused.json()) == []


# -- the emulator's state -----------------------------------------------------------------------------------------


async def test_pay_invoice_marks_it_paid_in_state(books: XeroConnector, state: XeroState) -> None:
    customer = await books.create_customer(draft())
    invoice = await books.create_invoice(invoice_request(customer.id))

    state.pay_invoice(invoice.id)

    [stored] = state.dump()["invoices"]
    assert (stored["Status"], stored["AmountDue"], stored["AmountPaid"]) == ("PAID", 0.0, 240.0)


async def test_a_restarted_emulator_keeps_the_same_books(books: XeroConnector, state: XeroState) -> None:
    customer = await books.create_customer(draft())
    invoice = await books.create_invoice(invoice_request(customer.id))
    saved = state.snapshot()

    state.reset()
    state.restore(saved)

    assert [i.id for i in await books.open_invoices(customer.id)] == [invoice.id]
    assert state.snapshot() == saved | {"day_used": state.snapshot()["day_used"]}


def test_a_snapshot_it_did_not_write_is_refused(state: XeroState) -> None:
    with pytest.raises(ValueError, match="not a Xero sandbox snapshot"):
        state.restore({"version": 99})
    with pytest.raises(KeyError):
        state.restore({"version": 1})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/Date(1796083200000+0000)/", date(2026, 12, 1)), ("2026-12-01T00:00:00", date(2026, 12, 1)), (None, None)],
)
def test_xero_dates_are_read_in_both_of_their_forms(raw: Any, expected: date | None) -> None:
    assert mappers.parse_date(raw) == expected


def test_minor_units_follow_the_currency() -> None:
    assert mappers.to_minor(240.0, "USD") == 24000
    assert mappers.to_minor("0.1", "USD") == 10
    assert mappers.to_minor(5000, "JPY") == 5000
    assert mappers.from_minor(1999, "USD") == 19.99
