"""The Square connector (accounting + payments) against its emulator on 127.0.0.1, checked against Square's spec.

Customers and payment links are checked against Square's OpenAPI document (tests/specs/square);
orders and invoices, which that trimmed document leaves out, against the SDK's own typed
request parameters (`square.requests.*Params`).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from square.requests.customer import CustomerParams
from square.requests.invoice import InvoiceParams
from square.requests.order import OrderParams
from typing_extensions import is_typeddict

from integrations.capabilities.accounting import AccountingProvider
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest, PaymentLinkRequest
from integrations.capabilities.payments import PaymentsProvider
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import (
    ConnectorEnv,
    PaymentEvent,
    SandboxConnection,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.square import SPEC
from integrations.square.connector import SquareConnector
from integrations.square.sandbox import SANDBOX_ACCESS_TOKEN
from integrations.square.sandbox_state import SquareCallback, SquareState, signed
from integrations.square.webhooks import handle
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
SQUARE = OpenApi("square/api.customers-paymentlinks.json")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"square": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_account(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> SquareState:
    assert isinstance(sandbox.state, SquareState)
    return sandbox.state


@pytest.fixture
def connection(served: ServedSandboxes) -> SandboxConnection:
    return SPEC.sandbox_connection(served.url("square"))


@pytest.fixture
def vault(connection: SandboxConnection) -> MemoryVault:
    return MemoryVault(connection.secrets)


@pytest.fixture
def connector(connection: SandboxConnection, vault: MemoryVault) -> SquareConnector:
    built = SPEC.build(
        SPEC.settings_model.model_validate(connection.settings),
        vault,
        ConnectorEnv(clock=lambda: NOW, connection_id="con_sq", public_url="http://127.0.0.1:9", timezone="UTC"),
    )
    assert isinstance(built, SquareConnector)
    return built


def bill(customer_id: str, key: str | None = "agt_1:call_1:create_invoice", **overrides: Any) -> InvoiceRequest:
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "lines": [
            InvoiceLine(description="Drain cleaning", quantity=1, unit_amount_minor=18000),
            InvoiceLine(description="Parts", quantity=2, unit_amount_minor=3000),
        ],
        "currency": "USD",
        "due_date": date(2026, 4, 1),
        "idempotency_key": key,
    }
    return InvoiceRequest(**{**fields, **overrides})


# -- spec checks --------------------------------------------------------------------------------------


def _typed_problems(hints_of: Any, body: Any, where: str) -> list[str]:
    """Fields of `body` that the SDK's TypedDict `hints_of` (recursively) does not declare."""
    if not (isinstance(hints_of, type) and is_typeddict(hints_of)) or not isinstance(body, dict):
        return []
    hints = typing.get_type_hints(hints_of)
    problems = []
    for name, value in body.items():
        if name not in hints:
            problems.append(f"{where}: {name!r} is not a field of {hints_of.__name__}")
            continue
        for candidate in _types_in(hints[name]):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    problems += _typed_problems(candidate, item, f"{where}.{name}[{index}]")
            else:
                problems += _typed_problems(candidate, value, f"{where}.{name}")
    return problems


def _types_in(hint: Any) -> list[Any]:
    found = [hint]
    for argument in typing.get_args(hint):
        found += _types_in(argument)
    return [item for item in found if isinstance(item, type) and is_typeddict(item)]


def spec_problems(requests: list[RecordedRequest]) -> list[str]:
    problems: list[str] = []
    for request in requests:
        if request.path.startswith(("/v2/customers", "/v2/online-checkout", "/v2/locations")):
            problems += SQUARE.check_request(request)
        elif request.method == "POST" and request.path == "/v2/orders":
            problems += _typed_problems(OrderParams, request.body["order"], "order")
            problems += [f"orders: {k!r}" for k in request.body if k not in {"order", "idempotency_key"}]
        elif request.method == "POST" and request.path == "/v2/invoices":
            problems += _typed_problems(InvoiceParams, request.body["invoice"], "invoice")
            problems += [f"invoices: {k!r}" for k in request.body if k not in {"invoice", "idempotency_key"}]
        elif request.path.endswith("/publish"):
            problems += [f"publish: {k!r}" for k in request.body if k not in {"version", "idempotency_key"}]
    return problems


def test_the_connector_serves_both_capability_protocols(connector: SquareConnector) -> None:
    assert isinstance(connector, AccountingProvider)
    assert isinstance(connector, PaymentsProvider)
    assert SPEC.capabilities == frozenset({"accounting", "payments"})


async def test_every_request_the_connector_sends_matches_square_spec_and_sdk_types(
    connector: SquareConnector, sandbox: Sandbox, state: SquareState
) -> None:
    created = await connector.create_customer(
        CustomerDraft(name="Ada Lovelace", phone="+14155550123", email="ada@example.com", idempotency_key="k1")
    )
    await connector.find_customers(phone="+14155550123", email="ada@example.com")
    made = await connector.create_invoice(bill(created.id))
    await connector.send_invoice(made.id)
    await connector.create_payment_link(
        PaymentLinkRequest(amount_minor=4900, currency="USD", description="Deposit", customer_email="ada@example.com")
    )
    await connector.check_connection()
    requests = sandbox.provider_requests()
    assert {r.path for r in requests} >= {"/v2/customers", "/v2/orders", "/v2/invoices", "/v2/customers/search"}
    assert spec_problems(requests) == []
    assert _typed_problems(CustomerParams, {"nonsense": 1}, "x")  # the checker can fail
    assert all(r.headers.get("square-version") for r in requests)


def test_emulator_customers_validate_against_the_spec_schema(state: SquareState) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="(415) 555-0123", email="ada@example.com")
    assert SQUARE.validate("Customer", state.get_customer(customer_id)["customer"]) == []
    link = state.create_payment_link(
        {
            "quick_pay": {
                "name": "Deposit",
                "price_money": {"amount": 100, "currency": "USD"},
                "location_id": "LSANDBOX0MAIN",
            }
        }
    )
    assert SQUARE.validate("CreatePaymentLinkResponse", link) == []


# -- customers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["(415) 555-0123", "415.555.0123", "+1 415 555 0123", "+14155550123", "4155550123"])
async def test_a_customer_stored_in_any_phone_format_is_found_by_e164(
    connector: SquareConnector, state: SquareState, stored: str
) -> None:
    customer_id = state.seed_customer(name="Grace Hopper", phone=stored)
    state.seed_customer(name="One Digit Away", phone="(415) 555-0124")
    found = await connector.find_customers(phone="+14155550123")
    assert [c.id for c in found] == [customer_id]


async def test_two_customers_with_the_same_phone_are_both_returned(
    connector: SquareConnector, state: SquareState
) -> None:
    first = state.seed_customer(name="Sam One", phone="(415) 555-0123")
    second = state.seed_customer(name="Sam Two", phone="415-555-0123")
    found = await connector.find_customers(phone="+14155550123")
    assert {c.id for c in found} == {first, second}


async def test_email_search_ignores_case_and_a_quote_in_a_name_or_query_breaks_nothing(
    connector: SquareConnector, state: SquareState
) -> None:
    obrien = state.seed_customer(name="Pat O'Brien", email="Pat.OBrien@Example.com")
    found = await connector.find_customers(email="pat.obrien@example.com")
    assert [(c.id, c.name) for c in found] == [(obrien, "Pat O'Brien")]
    assert await connector.find_customers(email="' or 1=1") == []
    assert await connector.find_customers(phone="+14155550199", email="' or 1=1 --") == []


async def test_creating_a_customer_twice_with_one_key_makes_one(connector: SquareConnector, state: SquareState) -> None:
    draft = CustomerDraft(name="Ada Lovelace", phone="+14155550123", email="ada@example.com", idempotency_key="call-7")
    first = await connector.create_customer(draft)
    again = await connector.create_customer(draft)
    assert first.id == again.id
    assert len(state.dump()["customers"]) == 1
    assert first.name == "Ada Lovelace"
    assert first.email == "ada@example.com"


async def test_a_found_customer_carries_the_balance_of_open_invoices(
    connector: SquareConnector, state: SquareState
) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="+14155550123")
    await connector.create_invoice(bill(customer_id))
    [found] = await connector.find_customers(phone="+14155550123")
    assert (found.balance_minor, found.currency) == (24000, "USD")


# -- invoices -----------------------------------------------------------------------------------------


async def test_an_invoice_is_an_order_then_a_published_invoice_with_a_pay_page(
    connector: SquareConnector, state: SquareState
) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", email="ada@example.com")
    made = await connector.create_invoice(bill(customer_id, memo="Thanks"))
    assert (made.status, made.total_minor, made.balance_minor, made.currency) == ("open", 24000, 24000, "USD")
    assert made.due_date == date(2026, 4, 1)
    assert made.pay_url
    assert made.pay_url.startswith("https://")
    assert made.raw["status"] == "UNPAID"
    assert made.raw["delivery_method"] == "EMAIL"
    [order] = state.dump()["orders"]
    assert order["id"] == made.raw["order_id"]
    assert order["customer_id"] == customer_id


async def test_a_retried_invoice_creates_one_order_and_one_invoice(
    connector: SquareConnector, state: SquareState
) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="+14155550123")
    first = await connector.create_invoice(bill(customer_id))
    again = await connector.create_invoice(bill(customer_id))
    assert first.id == again.id
    assert again.status == "open"
    assert len(state.dump()["orders"]) == 1
    assert len(state.dump()["invoices"]) == 1


async def test_open_invoices_lists_unpaid_ones_oldest_due_first_and_drops_paid_ones(
    connector: SquareConnector, state: SquareState
) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="+14155550123")
    later = await connector.create_invoice(bill(customer_id, key="a", due_date=date(2026, 5, 1)))
    sooner = await connector.create_invoice(bill(customer_id, key="b", due_date=date(2026, 3, 20)))
    paid = await connector.create_invoice(bill(customer_id, key="c"))
    state.pay_invoice(paid.id)
    assert [i.id for i in await connector.open_invoices(customer_id)] == [sooner.id, later.id]
    now = await connector.get_invoice(paid.id)
    assert (now.status, now.balance_minor, now.total_minor) == ("paid", 0, 24000)


async def test_open_invoices_follows_square_cursor_pages(connector: SquareConnector, state: SquareState) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="+14155550123")
    for index in range(3):
        await connector.create_invoice(bill(customer_id, key=f"k{index}"))
    assert state.search_invoices({"query": {"filter": {"location_ids": ["LSANDBOX0MAIN"]}}, "limit": 2}).get("cursor")
    import integrations.square.connector as module

    original = module._PAGE
    module._PAGE = 2
    try:
        assert len(await connector.open_invoices(customer_id)) == 3
    finally:
        module._PAGE = original


async def test_an_unknown_invoice_or_customer_is_not_found(connector: SquareConnector) -> None:
    with pytest.raises(NotFoundError):
        await connector.get_invoice("inv:0-nope")
    with pytest.raises(NotFoundError):
        await connector.create_invoice(bill("NOPE"))


async def test_send_invoice_confirms_square_emailed_it_and_refuses_what_square_cannot_do(
    connector: SquareConnector, state: SquareState
) -> None:
    emailed = await connector.create_invoice(bill(state.seed_customer(name="Ada L", email="ada@example.com")))
    assert (await connector.send_invoice(emailed.id, email="ADA@example.com")).id == emailed.id
    with pytest.raises(UpstreamError) as other_address:
        await connector.send_invoice(emailed.id, email="someone@else.com")
    assert other_address.value.retryable is False
    shared = await connector.create_invoice(bill(state.seed_customer(name="No Mail", phone="+14155550100"), key="x"))
    assert shared.raw["delivery_method"] == "SHARE_MANUALLY"
    with pytest.raises(UpstreamError):
        await connector.send_invoice(shared.id)


# -- payment links ------------------------------------------------------------------------------------


async def test_a_payment_link_is_a_quick_pay_link_and_a_retry_is_the_same_link(
    connector: SquareConnector, state: SquareState
) -> None:
    request = PaymentLinkRequest(
        amount_minor=4900, currency="usd", description="Deposit", customer_phone="+14155550123", idempotency_key="c:1"
    )
    link = await connector.create_payment_link(request)
    again = await connector.create_payment_link(request)
    assert link.id == again.id
    assert link.url == again.url
    assert (link.amount_minor, link.currency, link.status, link.description) == (4900, "USD", "open", "Deposit")
    assert len(state.dump()["payment_links"]) == 1
    state.pay_payment_link(link.id)
    assert (await connector.payment_status(link.id)).status == "paid"
    with pytest.raises(NotFoundError):
        await connector.payment_status("NOPE")


# -- faults and auth ----------------------------------------------------------------------------------


async def test_a_429_with_retry_after_is_retried_once(connector: SquareConnector, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", times=1, retry_after=0.1, path="/v2/customers/search"))
    assert await connector.find_customers(phone="+14155550123") == []
    assert [r.path for r in sandbox.provider_requests()].count("/v2/customers/search") == 2


async def test_persistent_rate_limiting_ends_in_rate_limited_within_the_deadline(
    connector: SquareConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="rate_limit", times=0, retry_after=0.2))
    with deadline_scope(2.0), pytest.raises(RateLimitedError):
        await connector.get_invoice("inv:0-x")


async def test_persistent_5xx_ends_in_a_retryable_upstream_error_within_the_deadline(
    connector: SquareConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0, status=503))
    with deadline_scope(2.0), pytest.raises(UpstreamError) as raised:
        await connector.check_connection()
    assert raised.value.retryable is True


async def test_a_revoked_token_marks_the_connection_expired(
    connector: SquareConnector, sandbox: Sandbox, vault: MemoryVault
) -> None:
    sandbox.inject(Fault(kind="expire_access_tokens"))
    with pytest.raises(ProviderNotConnectedError):
        await connector.check_connection()
    assert vault.expired_reason is not None


async def test_the_emulator_answers_401_in_square_format(served: ServedSandboxes) -> None:
    async with httpx.AsyncClient(base_url=served.url("square")) as client:
        response = await client.get("/v2/locations/LSANDBOX0MAIN", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["category"] == "AUTHENTICATION_ERROR"


async def test_a_reused_idempotency_key_with_another_body_is_refused(served: ServedSandboxes) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_ACCESS_TOKEN}"}
    async with httpx.AsyncClient(base_url=served.url("square"), headers=headers) as client:
        first = await client.post("/v2/customers", json={"idempotency_key": "k", "given_name": "A"})
        second = await client.post("/v2/customers", json={"idempotency_key": "k", "given_name": "B"})
    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_check_connection_names_the_location(connector: SquareConnector) -> None:
    assert "Sandbox Main Street" in await connector.check_connection()


# -- snapshots ----------------------------------------------------------------------------------------


async def test_the_state_survives_a_snapshot_and_restore(connector: SquareConnector, state: SquareState) -> None:
    customer_id = state.seed_customer(name="Ada Lovelace", phone="+14155550123")
    made = await connector.create_invoice(bill(customer_id))
    saved = state.snapshot()
    state.reset()
    state.restore(saved)
    assert (await connector.get_invoice(made.id)).id == made.id
    again = await connector.create_invoice(bill(customer_id))
    assert again.id == made.id
    assert len(state.dump()["invoices"]) == 1
    with pytest.raises(ValueError, match="not a square emulator snapshot"):
        state.restore({"version": 99})


# -- payment webhook ----------------------------------------------------------------------------------

HOOK_URL = "http://127.0.0.1:9/webhooks/square/con_sq/events"


def _received(callback: SquareCallback, url: str | None = None) -> WebhookRequest:
    return WebhookRequest(
        kind="events", url=url or callback.url, headers=dict(callback.headers), body=callback.body, form={}
    )


async def test_a_paid_invoice_sends_a_signed_notification_the_webhook_turns_into_a_payment(
    connector: SquareConnector, state: SquareState, connection: SandboxConnection
) -> None:
    state.webhook_url = HOOK_URL
    made = await connector.create_invoice(bill(state.seed_customer(name="Ada L", phone="+14155550123")))
    assert state.take_callbacks() == []
    state.pay_invoice(made.id)
    [callback] = state.take_callbacks()
    assert SPEC.webhook is not None
    events, reply = SPEC.webhook(_received(callback), connection.secrets)
    assert reply.status == 200
    [event] = events
    assert isinstance(event, PaymentEvent)
    assert (event.object_id, event.kind, event.amount_minor, event.currency) == (made.id, "invoice", 24000, "USD")


async def test_the_webhook_refuses_a_tampered_body_another_url_or_no_key(
    connector: SquareConnector, state: SquareState, connection: SandboxConnection
) -> None:
    state.webhook_url = HOOK_URL
    made = await connector.create_invoice(bill(state.seed_customer(name="Ada L", phone="+14155550123")))
    state.pay_invoice(made.id)
    [callback] = state.take_callbacks()
    tampered = SquareCallback(callback.url, callback.body.replace(b"24000", b"1"), callback.headers)
    with pytest.raises(WebhookRejectedError):
        handle(_received(tampered), connection.secrets)
    with pytest.raises(WebhookRejectedError):
        handle(_received(callback, url="http://127.0.0.1:9/elsewhere"), connection.secrets)
    with pytest.raises(WebhookRejectedError):
        handle(_received(callback), {"access_token": "x"})
    other = signed(HOOK_URL, {"type": "customer.created", "event_id": "e1", "data": {}})
    assert handle(_received(other), connection.secrets)[0] == []


async def test_callbacks_are_delivered_only_to_loopback_addresses(served: ServedSandboxes, state: SquareState) -> None:
    base = served.url("square")
    async with httpx.AsyncClient(base_url=base) as client:
        state.webhook_url = "https://example.com/hook"
        state.pending.append(signed(state.webhook_url, {"type": "x"}))
        assert (await client.post("/_callbacks/deliver")).json() == {"delivered": 0, "skipped": 1}
        subscribed = await client.post("/_webhook_endpoint", json={"url": f"{base}/_state"})
        assert subscribed.json()["loopback"] is True
        state.pending.append(signed(f"{base}/_state", {"type": "x"}))
        assert (await client.post("/_callbacks/deliver")).json() == {"delivered": 1, "skipped": 0}
