"""Xero's webhook: the emulator's signed deliveries (payments, intent to receive) through the handler.

The handler is called directly with what the server would pass it, and through a loopback receiver
that answers as the server's route does, with the emulator posting to it (`/_callbacks/deliver`).
The emulator's payloads are checked against Xero's webhooks OpenAPI document.
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
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.capabilities.models import CustomerDraft, InvoiceLine, InvoiceRequest
from integrations.common.sandbox import Sandbox
from integrations.common.spec import (
    ConnectorEnv,
    InvoiceChangedEvent,
    WebhookEvent,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.xero import SPEC, XeroConnector
from integrations.xero.sandbox import SANDBOX_TENANT_ID, SANDBOX_WEBHOOK_KEY
from integrations.xero.sandbox_state import XeroCallback, XeroState, signed
from integrations.xero.webhooks import MAX_BODY_BYTES, SIGNATURE_HEADER, handle
from tests.support.loopback import serve_on_loopback
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import SPECS

HOOK_URL = "http://127.0.0.1:9/webhooks/xero/con_xero/events"
SECRETS = {"webhook_key": SANDBOX_WEBHOOK_KEY}


# -- fixtures and helpers -------------------------------------------------------------------------------


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
def secrets(base_url: str) -> dict[str, str]:
    """The sandbox connection's secrets, as the server passes them to the handler."""
    return dict(SPEC.sandbox_connection(base_url).secrets)


@pytest.fixture
def books(base_url: str, secrets: dict[str, str]) -> XeroConnector:
    conn = SPEC.sandbox_connection(base_url)
    env = ConnectorEnv(
        clock=lambda: datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
        connection_id="con_xero",
        public_url="http://127.0.0.1:9",
    )
    connector = SPEC.build(SPEC.settings_model.model_validate(conn.settings), MemoryVault(secrets), env)
    assert isinstance(connector, XeroConnector)
    return connector


async def unpaid_invoice(books: XeroConnector) -> str:
    """A customer and an approved invoice made through the connector; the invoice's id."""
    customer = await books.create_customer(
        CustomerDraft(name="Ann O'Brien", phone="+14155550123", email="ann@example.com", idempotency_key="c-1")
    )
    invoice = await books.create_invoice(
        InvoiceRequest(
            customer_id=customer.id,
            lines=[InvoiceLine(description="Boiler service", quantity=1, unit_amount_minor=24000)],
            currency="USD",
            due_date=date(2026, 12, 15),
            idempotency_key="i-1",
        )
    )
    return invoice.id


def received(callback: XeroCallback, **changes: Any) -> WebhookRequest:
    """The delivery as the server's route hands it over (header names lower-cased, as Starlette gives them)."""
    fields: dict[str, Any] = {
        "kind": "events",
        "url": callback.url,
        "headers": {k.lower(): v for k, v in callback.headers.items()},
        "body": callback.body,
        "form": {},
    }
    return WebhookRequest(**{**fields, **changes})


def payload(callback: XeroCallback) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(callback.body)
    return decoded


def xero_signature(key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def schema_problems(instance: Any) -> list[str]:
    """Where and which keyword a delivery body breaks in `WebhookEvent` (Xero's webhooks OpenAPI 3.1 document).

    Formats are not asserted: the document's own example writes `eventDateUtc` with no UTC offset
    ("2024-06-21T01:15:39.902"), which a strict RFC 3339 `date-time` check would refuse.
    """
    document = json.loads((SPECS / "xero" / "xero-webhooks.json").read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:xero-webhooks", resource)
    validator = OAS31Validator({"$ref": "urn:xero-webhooks#/components/schemas/WebhookEvent"}, registry=registry)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.validator}" for e in validator.iter_errors(instance))


# -- payments ------------------------------------------------------------------------------------------


async def test_a_paid_invoice_is_delivered_signed_and_becomes_an_invoice_changed_event(
    books: XeroConnector, state: XeroState, secrets: dict[str, str]
) -> None:
    invoice_id = await unpaid_invoice(books)
    state.subscribe(HOOK_URL)
    state.take_callbacks()  # intent to receive, checked below

    state.pay_invoice(invoice_id)
    [callback] = state.take_callbacks()
    assert SPEC.webhook is handle
    events, reply = SPEC.webhook(received(callback), secrets)

    assert [type(e) for e in events] == [InvoiceChangedEvent]
    assert isinstance(events[0], InvoiceChangedEvent)
    assert events[0].invoice_id == invoice_id
    # Xero requires 200 and nothing in the body.
    assert (reply.status, reply.body) == (200, b"")
    assert callback.url == HOOK_URL


async def test_the_payment_delivery_is_one_invoice_update_for_the_organisation(
    books: XeroConnector, state: XeroState
) -> None:
    invoice_id = await unpaid_invoice(books)
    state.subscribe(HOOK_URL)
    state.take_callbacks()

    state.pay_invoice(invoice_id)
    [callback] = state.take_callbacks()
    body = payload(callback)

    [event] = body["events"]
    assert (event["eventCategory"], event["eventType"], event["resourceId"]) == ("INVOICE", "UPDATE", invoice_id)
    assert (event["tenantId"], event["tenantType"]) == (SANDBOX_TENANT_ID, "ORGANISATION")
    assert event["resourceUrl"] == f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}"
    assert datetime.fromisoformat(event["eventDateUtc"]).tzinfo is None
    assert body["firstEventSequence"] == body["lastEventSequence"] == 1
    assert len(body["entropy"]) == 20
    assert callback.headers[SIGNATURE_HEADER] == xero_signature(SANDBOX_WEBHOOK_KEY.encode(), callback.body)


async def test_the_emulators_deliveries_match_xeros_webhook_schema(books: XeroConnector, state: XeroState) -> None:
    invoice_id = await unpaid_invoice(books)
    state.subscribe(HOOK_URL)
    good_itr, bad_itr = state.take_callbacks()
    state.pay_invoice(invoice_id)
    [paid] = state.take_callbacks()

    assert schema_problems(payload(paid)) == []
    # Intent-to-receive payloads carry sequence 0 as Xero's docs show them, below the schema's minimum of 1.
    for itr in (good_itr, bad_itr):
        assert schema_problems(payload(itr)) == ["firstEventSequence: minimum", "lastEventSequence: minimum"]
    # The check can fail: a payload without its sequences, or with an unknown category, is refused.
    assert schema_problems({"events": [], "entropy": "X"}) == [": required", ": required"]
    wrong = payload(paid)
    wrong["events"][0]["eventCategory"] = "PAYMENT"
    assert schema_problems(wrong) == ["events/0/eventCategory: oneOf"]


async def test_the_event_id_names_tenant_invoice_time_and_type_and_is_the_same_on_redelivery(
    books: XeroConnector, state: XeroState, secrets: dict[str, str]
) -> None:
    invoice_id = await unpaid_invoice(books)
    state.subscribe(HOOK_URL)
    state.take_callbacks()
    state.pay_invoice(invoice_id)
    [callback] = state.take_callbacks()
    [event] = payload(callback)["events"]

    first, _ = handle(received(callback), secrets)
    again, _ = handle(received(callback), secrets)

    expected = f"{SANDBOX_TENANT_ID}:{invoice_id}:{event['eventDateUtc']}:UPDATE"
    assert [e.event_id for e in first if isinstance(e, InvoiceChangedEvent)] == [expected]
    assert first == again


async def test_nothing_is_delivered_while_no_url_is_subscribed(books: XeroConnector, state: XeroState) -> None:
    invoice_id = await unpaid_invoice(books)

    state.pay_invoice(invoice_id)
    state.send_intent_to_receive()

    assert state.take_callbacks() == []


def test_contact_events_produce_nothing(state: XeroState) -> None:
    state.subscribe(HOOK_URL)
    state.take_callbacks()
    contact_id = state.seed_contact(name="Bea Cole", phone="415 555 0199")
    state.queue_event("CONTACT", contact_id, "CREATE")
    [callback] = state.take_callbacks()

    events, reply = handle(received(callback), SECRETS)

    assert payload(callback)["events"][0]["eventCategory"] == "CONTACT"
    assert (events, reply.status, reply.body) == ([], 200, b"")


def test_only_the_invoice_events_of_a_batch_become_events_in_order() -> None:
    def event(category: str, resource_id: str, kind: str = "UPDATE") -> dict[str, str]:
        return {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/X/{resource_id}",
            "resourceId": resource_id,
            "eventDateUtc": "2026-03-04T15:00:00.123",
            "eventType": kind,
            "eventCategory": category,
            "tenantId": SANDBOX_TENANT_ID,
            "tenantType": "ORGANISATION",
        }

    batch = {
        "events": [
            event("INVOICE", "inv-1", "CREATE"),
            event("CONTACT", "con-1"),
            event("CREDITNOTE", "cn-1"),
            event("INVOICE", "inv-2"),
            {"eventCategory": "INVOICE"},  # no resourceId: nothing to read back
        ],
        "firstEventSequence": 5,
        "lastEventSequence": 9,
        "entropy": "ABCDEFGHIJKLMNOPQRST",
    }

    events, _ = handle(received(signed(HOOK_URL, batch)), SECRETS)

    assert [(e.invoice_id, e.event_id.rsplit(":", 1)[1]) for e in events if isinstance(e, InvoiceChangedEvent)] == [
        ("inv-1", "CREATE"),
        ("inv-2", "UPDATE"),
    ]
    assert len(events) == 2


# -- intent to receive -------------------------------------------------------------------------------


def test_subscribing_sends_intent_to_receive_answered_200_empty_then_refused(state: XeroState) -> None:
    state.subscribe(HOOK_URL)
    good, bad = state.take_callbacks()

    events, reply = handle(received(good), SECRETS)
    with pytest.raises(WebhookRejectedError) as refused:
        handle(received(bad), SECRETS)

    assert (events, reply.status, reply.body) == ([], 200, b"")
    assert refused.value.status == 401
    assert payload(good)["events"] == payload(bad)["events"] == []
    assert (payload(good)["firstEventSequence"], payload(good)["lastEventSequence"]) == (0, 0)


def test_intent_to_receive_can_be_sent_again_to_the_subscribed_url(state: XeroState) -> None:
    state.subscribe(HOOK_URL)
    state.take_callbacks()

    state.send_intent_to_receive()

    assert [c.url for c in state.take_callbacks()] == [HOOK_URL, HOOK_URL]


# -- refusals ------------------------------------------------------------------------------------------


def _good() -> XeroCallback:
    return signed(HOOK_URL, {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "A" * 20})


def _signed_body(body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: xero_signature(SANDBOX_WEBHOOK_KEY.encode(), body)}


@pytest.mark.parametrize(
    ("request_changes", "keys", "status"),
    [
        pytest.param({"body": _good().body.replace(b'"A', b'"B')}, SECRETS, 401, id="forged body"),
        pytest.param({"headers": {"content-type": "application/json"}}, SECRETS, 401, id="no signature header"),
        pytest.param({"headers": {SIGNATURE_HEADER: ""}}, SECRETS, 401, id="empty signature header"),
        pytest.param({}, {"webhook_key": "another-apps-webhook-key"}, 401, id="another key"),
        pytest.param({}, {"client_id": "x"}, 401, id="no key on the connection"),
        pytest.param({"kind": "status"}, SECRETS, 400, id="a kind xero never sends"),
        pytest.param({"body": b"not json", "headers": _signed_body(b"not json")}, SECRETS, 400, id="not json"),
        pytest.param({"body": b"[]", "headers": _signed_body(b"[]")}, SECRETS, 400, id="json but not an object"),
        pytest.param({"body": b"{}", "headers": _signed_body(b"{}")}, SECRETS, 400, id="an object without events"),
    ],
)
def test_the_webhook_refuses(request_changes: dict[str, Any], keys: dict[str, str], status: int) -> None:
    assert handle(received(_good()), SECRETS)[1].status == 200  # the unchanged delivery is accepted
    with pytest.raises(WebhookRejectedError) as refused:
        handle(received(_good(), **request_changes), keys)
    assert refused.value.status == status


def test_an_oversized_body_is_refused_before_its_signature_is_checked() -> None:
    big = {"events": [], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "A" * MAX_BODY_BYTES}
    callback = signed(HOOK_URL, big)

    with pytest.raises(WebhookRejectedError) as refused:
        handle(received(callback), SECRETS)
    assert refused.value.status == 400
    # Without the size check this delivery, correctly signed, would be accepted.
    assert len(callback.body) > MAX_BODY_BYTES


def test_the_key_is_used_as_its_text_not_base64_decoded() -> None:
    # Xero's keys look like base64 (88 characters); the HMAC key is the text itself.
    key = base64.b64encode(bytes(range(64))).decode()
    body = _good().body
    text_signed = {SIGNATURE_HEADER: xero_signature(key.encode(), body)}
    decoded_signed = {SIGNATURE_HEADER: xero_signature(base64.b64decode(key), body)}

    assert handle(received(_good(), headers=text_signed), {"webhook_key": key})[1].status == 200
    with pytest.raises(WebhookRejectedError):
        handle(received(_good(), headers=decoded_signed), {"webhook_key": key})


# -- the connection and the emulator's control routes ------------------------------------------------------


def test_the_sandbox_connection_keeps_the_key_the_emulator_signs_with(base_url: str) -> None:
    connection = SPEC.sandbox_connection(base_url)

    assert connection.secrets["webhook_key"] == SANDBOX_WEBHOOK_KEY
    assert "webhook_key" in SPEC.optional_secrets
    assert "webhook_key" not in SPEC.required_secrets


async def test_deliveries_reach_a_loopback_receiver_which_answers_as_xero_expects(
    books: XeroConnector, base_url: str, secrets: dict[str, str]
) -> None:
    answers: list[tuple[int, bytes]] = []
    applied: list[WebhookEvent] = []

    async def route(request: Request) -> Response:
        # What the server's webhook route does with the handler's answer.
        incoming = WebhookRequest(
            kind=request.path_params["kind"],
            url=str(request.url),
            headers=dict(request.headers),
            body=await request.body(),
            form={},
        )
        try:
            events, reply = handle(incoming, secrets)
        except WebhookRejectedError as rejected:
            answers.append((rejected.status, b""))
            return Response(status_code=rejected.status)
        applied.extend(events)
        answers.append((reply.status, reply.body))
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)

    receiver = Starlette(routes=[Route("/webhooks/xero/{connection_id}/{kind}", route, methods=["POST"])])
    invoice_id = await unpaid_invoice(books)
    with serve_on_loopback(receiver, "xero-webhook-receiver") as receiver_url:
        async with httpx.AsyncClient(base_url=base_url) as emulator:
            subscribed = await emulator.post(
                "/_webhook_endpoint", json={"url": f"{receiver_url}/webhooks/xero/c/events"}
            )
            itr = await emulator.post("/_callbacks/deliver")
            paid = await emulator.post(f"/_invoices/{invoice_id}/pay")
            payment = await emulator.post("/_callbacks/deliver")

    assert subscribed.json()["loopback"] is True
    assert itr.json() == {"delivered": 2, "skipped": 0}
    assert paid.json()["Invoices"][0]["Status"] == "PAID"
    assert payment.json() == {"delivered": 1, "skipped": 0}
    assert answers == [(200, b""), (401, b""), (200, b"")]
    assert [e.invoice_id for e in applied if isinstance(e, InvoiceChangedEvent)] == [invoice_id]


async def test_deliveries_to_hosts_off_this_machine_are_skipped(base_url: str, state: XeroState) -> None:
    async with httpx.AsyncClient(base_url=base_url) as emulator:
        subscribed = await emulator.post("/_webhook_endpoint", json={"url": "https://example.com/hook"})
        delivered = await emulator.post("/_callbacks/deliver")
        refused = await emulator.post("/_webhook_endpoint", json={"url": "ftp://127.0.0.1/hook"})

    assert subscribed.json() == {"url": "https://example.com/hook", "loopback": False}
    assert delivered.json() == {"delivered": 0, "skipped": 2}
    assert state.take_callbacks() == []
    assert refused.status_code == 400


async def test_paying_an_unknown_invoice_through_the_control_route_is_a_404(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as emulator:
        answer = await emulator.post("/_invoices/00000000-0000-4000-8000-000000000000/pay")
    assert answer.status_code == 404


async def test_a_restarted_emulator_keeps_its_subscription_and_undelivered_notifications(
    books: XeroConnector, state: XeroState
) -> None:
    invoice_id = await unpaid_invoice(books)
    state.subscribe(HOOK_URL)
    state.pay_invoice(invoice_id)
    saved = state.snapshot()

    state.reset()
    assert state.take_callbacks() == []
    state.restore(saved)

    assert state.webhook_url == HOOK_URL
    assert len(state.take_callbacks()) == 3
    state.pay_invoice(invoice_id)
    assert payload(state.take_callbacks()[0])["firstEventSequence"] == 2


def test_a_snapshot_saved_before_webhooks_restores_with_none(state: XeroState) -> None:
    older = {k: v for k, v in state.snapshot().items() if k not in ("webhook_url", "pending", "event_sequence")}

    state.restore(older)

    assert (state.webhook_url, state.take_callbacks(), state.event_sequence) == (None, [], 0)
