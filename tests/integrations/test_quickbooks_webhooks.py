"""QuickBooks Online webhooks: `intuit-signature` verified on the raw body, both payload shapes read into
the invoices that changed, and the emulator sending what Intuit sends when an invoice is paid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest
from integrations.common.sandbox import Sandbox
from integrations.common.spec import (
    ConnectorEnv,
    InvoiceChangedEvent,
    SandboxConnection,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.quickbooks import SPEC, QuickBooksConnector
from integrations.quickbooks.sandbox import REALM_ID, SANDBOX_VERIFIER_TOKEN
from integrations.quickbooks.sandbox_state import QuickBooksCallback, QuickBooksState, notification, signed
from integrations.quickbooks.webhooks import MAX_BODY_BYTES, handle, invoice_changes
from tests.integrations.test_quickbooks import check_request
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
HOOK_URL = "http://127.0.0.1:9/webhooks/quickbooks/con_qb/events"
SECRETS = {"verifier_token": SANDBOX_VERIFIER_TOKEN}
OTHER_REALM = "4620816365171234567"


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
    # Every request the connector sent must be one QuickBooks accepts.
    assert [p for r in sandbox.provider_requests() for p in check_request(r)] == []


@pytest.fixture
def state(sandbox: Sandbox) -> QuickBooksState:
    assert isinstance(sandbox.state, QuickBooksState)
    return sandbox.state


@pytest.fixture
def connection(served: ServedSandboxes) -> SandboxConnection:
    return SPEC.sandbox_connection(served.url("quickbooks"))


@pytest.fixture
def books(connection: SandboxConnection) -> QuickBooksConnector:
    settings = SPEC.settings_model.model_validate(connection.settings)
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_qb", public_url="http://127.0.0.1:9")
    built = SPEC.build(settings, MemoryVault(connection.secrets), env)
    assert isinstance(built, QuickBooksConnector)
    return built


async def _invoice(books: QuickBooksConnector) -> str:
    """A customer and an invoice made through the connector, as the agent makes them; the invoice id."""
    customer = await books.create_customer(CustomerDraft(name="Ada Lovelace", phone="+14155550123"))
    request = InvoiceRequest(
        customer_id=customer.id,
        lines=[InvoiceLine(description="Drain cleaning", quantity=1, unit_amount_minor=18000)],
        currency="USD",
        due_date=date(2026, 4, 3),
    )
    return (await books.create_invoice(request)).id


def _received(callback: QuickBooksCallback, **changes: Any) -> WebhookRequest:
    fields: dict[str, Any] = {
        "kind": "events",
        "url": callback.url,
        "headers": dict(callback.headers),
        "body": callback.body,
        "form": {},
    }
    return WebhookRequest(**{**fields, **changes})


def _signature(body: bytes, token: str = SANDBOX_VERIFIER_TOKEN) -> str:
    """Intuit's scheme, computed here independently of the code under test."""
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def _delivery(payload: Any, token: str = SANDBOX_VERIFIER_TOKEN) -> WebhookRequest:
    body = json.dumps(payload).encode()
    headers = {"intuit-signature": _signature(body, token), "content-type": "application/json"}
    return WebhookRequest(kind="events", url=HOOK_URL, headers=headers, body=body, form={})


def _legacy(realm: str, *entities: dict[str, str]) -> dict[str, Any]:
    return {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": list(entities)}}]}


def _cloudevent(event_type: str, entity_id: str, event_id: str, realm: str = REALM_ID) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
        "type": event_type,
        "datacontenttype": "application/json",
        "time": "2026-03-04T15:00:01.123Z",
        "intuitentityid": entity_id,
        "intuitaccountid": realm,
        "data": {},
    }


# -- the integration as the registry sees it ----------------------------------------------------------


def test_the_spec_serves_the_webhook_and_the_sandbox_connection_keeps_the_token_the_emulator_signs_with(
    connection: SandboxConnection,
) -> None:
    assert SPEC.webhook is handle
    assert "verifier_token" in SPEC.optional_secrets
    assert "verifier_token" not in SPEC.required_secrets
    assert connection.secrets["verifier_token"] == SANDBOX_VERIFIER_TOKEN


# -- through the emulator -----------------------------------------------------------------------------


async def test_a_paid_invoice_sends_one_signed_cloudevents_delivery_that_verifies_into_its_invoice_change(
    books: QuickBooksConnector, state: QuickBooksState, connection: SandboxConnection
) -> None:
    state.subscribe(HOOK_URL)
    invoice_id = await _invoice(books)
    assert state.take_callbacks() == []

    payment = state.pay_invoice(invoice_id)

    [callback] = state.take_callbacks()
    assert callback.url == HOOK_URL
    assert callback.headers["intuit-signature"] == _signature(callback.body)
    sent = json.loads(callback.body)
    assert [(e["type"], e["intuitentityid"], e["intuitaccountid"]) for e in sent] == [
        ("qbo.payment.created.v1", payment["Id"], REALM_ID),
        ("qbo.invoice.updated.v1", invoice_id, REALM_ID),
    ]
    assert SPEC.webhook is not None
    events, reply = SPEC.webhook(_received(callback), connection.secrets)
    assert reply.status == 200
    assert events == [InvoiceChangedEvent(invoice_id, sent[1]["id"])]
    assert (await books.get_invoice(invoice_id)).status == "paid"


async def test_a_paid_invoice_in_the_legacy_format_verifies_into_its_invoice_change_with_a_stable_event_id(
    books: QuickBooksConnector, state: QuickBooksState, served: ServedSandboxes
) -> None:
    async with httpx.AsyncClient(base_url=served.url("quickbooks")) as client:
        chosen = await client.post("/_webhook_endpoint", json={"url": HOOK_URL, "format": "legacy"})
        assert chosen.json() == {"url": HOOK_URL, "format": "legacy", "loopback": True}
        invoice_id = await _invoice(books)
        paid = await client.post(f"/_invoices/{invoice_id}/pay")
        assert paid.status_code == 200

    [callback] = state.take_callbacks()
    [notified] = json.loads(callback.body)["eventNotifications"]
    assert notified["realmId"] == REALM_ID
    entities = notified["dataChangeEvent"]["entities"]
    assert [(e["name"], e["operation"]) for e in entities] == [("Payment", "Create"), ("Invoice", "Update")]
    events, _ = handle(_received(callback), SECRETS)
    assert events == [InvoiceChangedEvent(invoice_id, f"{REALM_ID}:Invoice:{invoice_id}:{entities[1]['lastUpdated']}")]
    # Intuit re-delivering the same notification names the same change.
    assert handle(_received(callback), SECRETS)[0] == events


async def test_no_endpoint_subscribed_means_no_notification(books: QuickBooksConnector, state: QuickBooksState) -> None:
    state.pay_invoice(await _invoice(books))

    assert state.take_callbacks() == []


# -- refusals -----------------------------------------------------------------------------------------


def _paid_delivery() -> QuickBooksCallback:
    changed = [("Payment", "7", "Create"), ("Invoice", "130", "Update")]
    return signed(HOOK_URL, notification("cloudevents", REALM_ID, changed, NOW))


def test_a_good_delivery_is_accepted_as_the_baseline_for_the_refusals() -> None:
    events, reply = handle(_received(_paid_delivery()), SECRETS)

    assert [e.invoice_id for e in events if isinstance(e, InvoiceChangedEvent)] == ["130"]
    assert reply.status == 200


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("tampered body", 401),
        ("forged signature", 401),
        ("missing header", 401),
        ("signed with another token", 401),
        ("signature not base64", 401),
        ("no verifier token stored", 401),
        ("oversized body", 400),
        ("not JSON", 400),
        ("JSON of neither shape", 400),
        ("another kind", 400),
    ],
)
def test_a_delivery_that_fails_verification_or_is_not_a_notification_is_refused(case: str, status: int) -> None:
    good = _paid_delivery()
    request, secrets = _received(good), SECRETS
    if case == "tampered body":
        request = _received(good, body=good.body.replace(b'"130"', b'"131"'))
    elif case == "forged signature":
        request = _received(good, headers={"intuit-signature": _signature(b"something else")})
    elif case == "missing header":
        request = _received(good, headers={"content-type": "application/json"})
    elif case == "signed with another token":
        request = _received(good, headers={"intuit-signature": _signature(good.body, "another-apps-token")})
    elif case == "signature not base64":
        request = _received(good, headers={"intuit-signature": "not base64!"})
    elif case == "no verifier token stored":
        secrets = {"client_id": "x"}
    elif case == "oversized body":
        padded = b"[" + b" " * MAX_BODY_BYTES + b"]"
        request = _received(good, body=padded, headers={"intuit-signature": _signature(padded)})
    elif case == "not JSON":
        request = _received(good, body=b"{broken", headers={"intuit-signature": _signature(b"{broken")})
    elif case == "JSON of neither shape":
        odd = b'{"event": "invoice.paid"}'
        request = _received(good, body=odd, headers={"intuit-signature": _signature(odd)})
    elif case == "another kind":
        request = _received(good, kind="status")

    with pytest.raises(WebhookRejectedError) as refused:
        handle(request, secrets)

    assert refused.value.status == status


def test_the_signature_header_is_found_whatever_its_case() -> None:
    good = _paid_delivery()

    events, _ = handle(_received(good, headers={"Intuit-Signature": good.headers["intuit-signature"]}), SECRETS)

    assert [e.invoice_id for e in events if isinstance(e, InvoiceChangedEvent)] == ["130"]


# -- mapping ------------------------------------------------------------------------------------------


def test_entities_other_than_created_or_updated_invoices_produce_no_event() -> None:
    legacy = _legacy(
        REALM_ID,
        {"name": "Payment", "id": "7", "operation": "Create", "lastUpdated": "2026-03-04T15:00:01.123Z"},
        {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-03-04T15:00:01.123Z"},
        {"name": "Invoice", "id": "130", "operation": "Delete", "lastUpdated": "2026-03-04T15:00:01.123Z"},
        {"name": "Invoice", "id": "131", "operation": "Emailed", "lastUpdated": "2026-03-04T15:00:01.123Z"},
    )
    cloudevents = [
        _cloudevent("qbo.payment.created.v1", "7", "e1"),
        _cloudevent("qbo.customer.updated.v1", "1", "e2"),
        _cloudevent("qbo.invoice.deleted.v1", "130", "e3"),
        _cloudevent("qbo.estimate.updated.v1", "132", "e4"),
        _cloudevent("not.a.qbo.type", "133", "e5"),
    ]

    assert handle(_delivery(legacy), SECRETS)[0] == []
    assert handle(_delivery(cloudevents), SECRETS)[0] == []
    assert handle(_delivery([]), SECRETS)[0] == []


def test_created_and_updated_invoices_each_become_one_change_in_both_formats() -> None:
    legacy = _legacy(
        REALM_ID,
        {"name": "Invoice", "id": "130", "operation": "Create", "lastUpdated": "2026-03-04T15:00:00.000Z"},
        {"name": "Invoice", "id": "130", "operation": "Update", "lastUpdated": "2026-03-04T15:00:05.000Z"},
        {"name": "Invoice", "id": "140", "operation": "Update", "lastUpdated": "2026-03-04T15:00:06.000Z"},
    )
    cloudevents = [
        _cloudevent("qbo.invoice.created.v1", "130", "e1"),
        _cloudevent("qbo.invoice.updated.v1", "140", "e2"),
        _cloudevent("qbo.invoice.updated.v1", "140", "e3"),
    ]

    assert handle(_delivery(legacy), SECRETS)[0] == [
        InvoiceChangedEvent("130", f"{REALM_ID}:Invoice:130:2026-03-04T15:00:00.000Z"),
        InvoiceChangedEvent("140", f"{REALM_ID}:Invoice:140:2026-03-04T15:00:06.000Z"),
    ]
    assert handle(_delivery(cloudevents), SECRETS)[0] == [
        InvoiceChangedEvent("130", "e1"),
        InvoiceChangedEvent("140", "e2"),
    ]


def test_an_unreadable_event_in_a_signed_batch_is_skipped_not_the_whole_batch() -> None:
    broken = _cloudevent("qbo.invoice.updated.v1", "130", "e1")
    del broken["intuitentityid"]
    batch = [broken, "not an event", _cloudevent("qbo.invoice.updated.v1", "140", "e2")]

    assert handle(_delivery(batch), SECRETS)[0] == [InvoiceChangedEvent("140", "e2")]


def test_given_the_connections_realm_changes_of_other_companies_are_dropped() -> None:
    legacy = {
        "eventNotifications": [
            _legacy(OTHER_REALM, {"name": "Invoice", "id": "130", "operation": "Update", "lastUpdated": "t1"})[
                "eventNotifications"
            ][0],
            _legacy(REALM_ID, {"name": "Invoice", "id": "140", "operation": "Update", "lastUpdated": "t2"})[
                "eventNotifications"
            ][0],
        ]
    }
    cloudevents = [
        _cloudevent("qbo.invoice.updated.v1", "130", "e1", realm=OTHER_REALM),
        _cloudevent("qbo.invoice.updated.v1", "140", "e2"),
    ]

    assert [c.invoice_id for c in invoice_changes(legacy, REALM_ID)] == ["140"]
    assert [c.invoice_id for c in invoice_changes(cloudevents, REALM_ID)] == ["140"]
    # The server's hook gets secrets only, not the realm setting, so it keeps both (see the module doc).
    assert [c.invoice_id for c in invoice_changes(cloudevents)] == ["130", "140"]


# -- the emulator's control routes and persistence -----------------------------------------------------


async def test_the_endpoint_route_refuses_a_bad_url_or_format_and_defaults_to_cloudevents(
    served: ServedSandboxes, state: QuickBooksState
) -> None:
    async with httpx.AsyncClient(base_url=served.url("quickbooks")) as client:
        assert (await client.post("/_webhook_endpoint", json={"url": "ftp://x"})).status_code == 400
        assert (await client.post("/_webhook_endpoint", json={"url": HOOK_URL, "format": "xml"})).status_code == 400
        assert (await client.post("/_invoices/999/pay")).status_code == 404
        answer = await client.post("/_webhook_endpoint", json={"url": HOOK_URL})

    assert answer.json()["format"] == "cloudevents"
    assert (state.webhook_url, state.webhook_format) == (HOOK_URL, "cloudevents")


async def test_callbacks_are_delivered_only_to_loopback_addresses(
    served: ServedSandboxes, state: QuickBooksState
) -> None:
    base = served.url("quickbooks")
    async with httpx.AsyncClient(base_url=base) as client:
        state.pending.append(signed("https://example.com/hook", []))
        assert (await client.post("/_callbacks/deliver")).json() == {"delivered": 0, "skipped": 1}
        state.pending.append(signed(f"{base}/_state", []))
        assert (await client.post("/_callbacks/deliver")).json() == {"delivered": 1, "skipped": 0}
    assert state.take_callbacks() == []


async def test_the_subscription_and_undelivered_notifications_survive_a_snapshot(
    books: QuickBooksConnector, state: QuickBooksState
) -> None:
    state.subscribe(HOOK_URL, "legacy")
    state.pay_invoice(await _invoice(books))
    saved = json.loads(json.dumps(state.snapshot()))

    state.reset()
    state.restore(saved)

    assert (state.webhook_url, state.webhook_format) == (HOOK_URL, "legacy")
    [callback] = state.take_callbacks()
    assert handle(_received(callback), SECRETS)[0] != []


def test_a_snapshot_from_before_webhooks_restores_with_no_subscription(state: QuickBooksState) -> None:
    older = {k: v for k, v in state.snapshot().items() if k not in {"webhook_url", "webhook_format", "pending"}}

    state.restore(older)

    assert (state.webhook_url, state.webhook_format, state.take_callbacks()) == (None, "cloudevents", [])


# -- the emulator's payloads against Intuit's own models ----------------------------------------------

# The fields of Intuit's Java SDK `com.intuit.ipp.data.WebhooksCloudEvents` (all strings but `data`,
# a map), and of the legacy entity in Intuit's "Managing webhooks notifications" sample.
CLOUDEVENT_FIELDS = {
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "time",
    "intuitentityid",
    "intuitaccountid",
    "data",
}
LEGACY_ENTITY_FIELDS = {"name", "id", "operation", "lastUpdated"}


@pytest.mark.parametrize("webhook_format", ["cloudevents", "legacy"])
def test_the_emulators_notifications_carry_the_fields_intuits_models_have_and_no_others(
    webhook_format: Any,
) -> None:
    payload = notification(webhook_format, REALM_ID, [("Invoice", "130", "Update")], NOW)

    if webhook_format == "cloudevents":
        [event] = payload
        assert set(event) == CLOUDEVENT_FIELDS
        assert all(isinstance(value, str) for key, value in event.items() if key != "data")
        assert isinstance(event["data"], dict)
        assert event["specversion"] == "1.0"
        assert event["time"] == "2026-03-04T15:00:00.000Z"
    else:
        [notified] = payload["eventNotifications"]
        assert set(notified) == {"realmId", "dataChangeEvent"}
        [entity] = notified["dataChangeEvent"]["entities"]
        assert set(entity) == LEGACY_ENTITY_FIELDS
