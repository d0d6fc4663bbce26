"""A paid invoice, as each accounting provider's own signed webhook tells it, through the server.

Each emulator pays the invoice and queues the notification its vendor would send (signed its own
way: Square over URL + body, QuickBooks and Xero naming only the invoice, Stripe `invoice.paid`).
A correctly signed one marks the invoice paid here: `get_invoice_status` then answers paid even
while the provider itself is unreachable, and whoever the invoice was made for gets one receipt
text, however often the notification is delivered. A forged one is refused and marks nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from integrations.common.sandbox import Fault
from tests.conftest import AgentFactory, CallerFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

# Every accounting provider whose emulator sends a signed payment notification.
PROVIDERS = ["square", "quickbooks", "xero", "stripe"]
PHONE = "+14155550123"


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
    )


async def books_agent(
    provider: str, make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> CreatedAgent:
    """An agent keeping its books in `provider` and texting through Twilio, with receipts on, subscribed."""
    created: CreatedAgent = await agent_on_emulators([provider, "twilio"], make_agent, services, sandboxes)
    assert created.agent.connections["accounting"].provider == provider
    connection_id = created.agent.connections["accounting"].id
    emulator = sandboxes.sandboxes[provider].state
    emulator.webhook_url = f"{services.settings.public_url}/webhooks/{provider}/{connection_id}/events"
    await services.followups.set(created.agent.id, FollowUps(payment_receipt=True))
    return created


async def paid_invoice(caller: Any, provider: str, sandboxes: ServedSandboxes) -> tuple[str, list[Any]]:
    made = await caller.call(
        "create_invoice",
        {
            "contact_name": "Ann O'Brien",
            "contact_phone": PHONE,
            "lines": [{"description": "Boiler service", "quantity": 1, "unit_amount": 24000}],
        },
        call_id="call-pay-1",
    )
    invoice_id: str = made.unwrap()["invoice"]["invoice_id"]
    emulator = sandboxes.sandboxes[provider].state
    emulator.pay_invoice(invoice_id)
    return invoice_id, emulator.take_callbacks()


async def post(http: httpx.AsyncClient, callback: Any, body: bytes | None = None) -> int:
    response = await http.post(
        urlsplit(callback.url).path, content=callback.body if body is None else body, headers=callback.headers
    )
    return response.status_code


def receipts(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    sent = sandboxes.sandboxes["twilio"].state.messages
    return [message for message in sent if "received your payment" in str(message.get("body"))]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_signed_paid_invoice_webhook_makes_the_status_paid_even_while_the_provider_is_down(
    provider: str,
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    services: Services,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
) -> None:
    created = await books_agent(provider, make_agent, services, sandboxes)
    caller = await make_caller("http", created)
    invoice_id, callbacks = await paid_invoice(caller, provider, sandboxes)

    answers = [await post(http, callback) for callback in callbacks for _ in range(2)]
    sandboxes.sandboxes[provider].inject(Fault(kind="server_error", status=503, times=0))
    status = await caller.call("get_invoice_status", {"invoice_id": invoice_id})
    over_mcp = await (await make_caller("mcp", created)).call("get_invoice_status", {"invoice_id": invoice_id})

    assert callbacks, f"the {provider} emulator queued no notification"
    assert set(answers) == {200}
    assert status.unwrap()["invoice"]["status"] == "paid"
    assert status.unwrap()["invoice"]["balance_minor"] == 0
    assert status.unwrap()["speech"] == "That invoice is paid in full. Thank you!"
    assert over_mcp.unwrap()["invoice"]["status"] == "paid"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_forged_paid_invoice_webhook_is_refused_and_marks_nothing(
    provider: str,
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    services: Services,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
) -> None:
    created = await books_agent(provider, make_agent, services, sandboxes)
    caller = await make_caller("http", created)
    invoice_id, callbacks = await paid_invoice(caller, provider, sandboxes)
    callback = callbacks[0]

    # The same notification with one byte changed, and with no signature at all.
    forged = await post(http, callback, callback.body.replace(b"}", b" }", 1))
    unsigned = (
        await http.post(
            urlsplit(callback.url).path, content=callback.body, headers={"Content-Type": "application/json"}
        )
    ).status_code
    sandboxes.sandboxes[provider].inject(Fault(kind="server_error", status=503, times=0))
    status = await caller.call("get_invoice_status", {"invoice_id": invoice_id})
    record = await services.payments.get(created.agent.id, provider, invoice_id)

    assert forged == 401
    assert unsigned == 401
    # Nothing here says paid: the tool had to ask the (unreachable) provider.
    assert status.error is not None
    assert record is not None
    assert record.status == "open"
    assert receipts(sandboxes) == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_whoever_the_invoice_was_made_for_gets_one_receipt_however_often_the_webhook_comes(
    provider: str,
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    services: Services,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
) -> None:
    created = await books_agent(provider, make_agent, services, sandboxes)
    caller = await make_caller("http", created)
    _, callbacks = await paid_invoice(caller, provider, sandboxes)

    answers = await asyncio.gather(*(post(http, callback) for callback in callbacks for _ in range(3)))
    deadline = asyncio.get_running_loop().time() + 15
    while not receipts(sandboxes):
        assert asyncio.get_running_loop().time() < deadline, "no receipt was texted"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)

    assert set(answers) == {200}
    [receipt] = receipts(sandboxes)
    assert receipt["to"] == PHONE
    assert "$240.00" in receipt["body"]


@pytest.mark.parametrize("provider", ["quickbooks", "xero"])
async def test_a_notification_that_cannot_be_read_back_is_answered_502_and_counts_when_delivered_again(
    provider: str,
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    services: Services,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
) -> None:
    created = await books_agent(provider, make_agent, services, sandboxes)
    caller = await make_caller("http", created)
    invoice_id, [callback] = await paid_invoice(caller, provider, sandboxes)

    sandboxes.sandboxes[provider].inject(Fault(kind="server_error", status=503, times=0))
    while_down = await http.post(urlsplit(callback.url).path, content=callback.body, headers=callback.headers)
    marked_while_down = await services.payments.get(created.agent.id, provider, invoice_id)
    sandboxes.sandboxes[provider].faults.clear()
    again = await post(http, callback)
    marked = await services.payments.get(created.agent.id, provider, invoice_id)

    # The provider delivers again on any non-2xx; nothing was marked from a read that failed.
    assert while_down.status_code == 502
    assert while_down.json()["error"]["retryable"] is True
    assert marked_while_down is not None
    assert marked_while_down.status == "open"
    assert again == 200
    assert marked is not None
    assert marked.status == "paid"


async def test_a_signed_notification_for_an_invoice_not_in_these_books_is_acknowledged_and_ignored(
    make_agent: AgentFactory, services: Services, http: httpx.AsyncClient, sandboxes: ServedSandboxes
) -> None:
    created = await books_agent("xero", make_agent, services, sandboxes)
    xero = sandboxes.sandboxes["xero"].state
    xero.queue_event("INVOICE", "0b6c8f3e-0000-4000-8000-000000000000", "UPDATE")
    [callback] = xero.take_callbacks()

    answer = await post(http, callback)

    assert answer == 200
    assert await services.payments.get(created.agent.id, "xero", "0b6c8f3e-0000-4000-8000-000000000000") is None


async def test_a_webhook_path_with_an_over_long_connection_id_or_kind_is_a_404_without_a_lookup(
    http: httpx.AsyncClient, services: Services
) -> None:
    looked_up: list[str] = []
    original = services.agents.connection

    async def spy(connection_id: str) -> Any:
        looked_up.append(connection_id)
        return await original(connection_id)

    services.agents.connection = spy  # type: ignore[method-assign]
    long_id = await http.post(f"/webhooks/square/{'c' * 5000}/events", content=b"{}")
    long_kind = await http.post(f"/webhooks/square/con_1/{'k' * 5000}", content=b"{}")
    unknown = await http.post("/webhooks/nosuch/con_1/events", content=b"{}")

    assert [long_id.status_code, long_kind.status_code, unknown.status_code] == [404, 404, 404]
    assert looked_up == []
