"""Stripe's payment webhook through the server: a signed `checkout.session.completed` becomes one
`payment.completed` for the agent's subscribers; a forged or unsigned one is refused and changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from integrations.common.sandbox import Fault
from tests.conftest import AgentFactory, CallerFactory
from tests.support.hook_subscriber import Subscriber, serve_subscriber
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
        hooks_allow_private_targets=True,
    )


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    with serve_subscriber() as served:
        yield served


@pytest.fixture
async def paying(make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    created: CreatedAgent = await agent_on_emulators(["stripe"], make_agent, services, sandboxes)
    connection_id = created.agent.connections["payments"].id
    stripe = sandboxes.sandboxes["stripe"].state
    stripe.webhook_url = f"{services.settings.public_url}/webhooks/stripe/{connection_id}/events"
    return created


def headers(created: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.api_key}"}


async def paid_link(caller: Any, sandboxes: ServedSandboxes) -> tuple[str, list[Any]]:
    link = await caller.call("create_payment_link", {"amount_minor": 4900, "description": "Deposit"}, call_id="c-1")
    link_id = link.unwrap()["payment_link"]["payment_link_id"]
    stripe = sandboxes.sandboxes["stripe"].state
    stripe.pay(link_id)
    return link_id, stripe.take_callbacks()


async def test_a_signed_payment_reaches_each_subscriber_once_as_payment_completed(
    paying: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
    subscriber: Subscriber,
) -> None:
    hook = await http.post(
        "/v1/hooks", json={"target_url": subscriber.url(), "event": "payment.completed"}, headers=headers(paying)
    )
    caller = await make_caller("http", paying)
    link_id, [callback] = await paid_link(caller, sandboxes)

    answers = [
        (await http.post(urlsplit(callback.url).path, content=callback.body, headers=callback.headers)).status_code
        for _ in range(2)  # Stripe re-delivers until it hears 2xx, sometimes twice anyway
    ]
    deadline = asyncio.get_running_loop().time() + 15
    while not subscriber.received:
        assert asyncio.get_running_loop().time() < deadline, "no payment.completed delivery"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    status = await caller.call("get_payment_status", {"payment_link_id": link_id})

    assert hook.status_code == 201
    assert answers == [200, 200]
    assert len(subscriber.received) == 1
    delivered = json.loads(subscriber.received[0].body)
    assert delivered["event"] == "payment.completed"
    assert delivered["data"]["payment_id"] == link_id
    assert delivered["data"]["amount_minor"] == 4900
    assert status.unwrap()["payment_link"]["status"] == "paid"


async def test_a_forged_or_unsigned_stripe_webhook_is_refused_and_delivers_nothing(
    paying: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    sandboxes: ServedSandboxes,
    subscriber: Subscriber,
) -> None:
    await http.post(
        "/v1/hooks", json={"target_url": subscriber.url(), "event": "payment.completed"}, headers=headers(paying)
    )
    caller = await make_caller("http", paying)
    _, [callback] = await paid_link(caller, sandboxes)
    path = urlsplit(callback.url).path

    altered = await http.post(path, content=callback.body.replace(b"4900", b"9900"), headers=callback.headers)
    unsigned = await http.post(path, content=callback.body, headers={"Content-Type": "application/json"})
    await asyncio.sleep(0.5)

    assert altered.status_code == 401
    assert unsigned.status_code == 401
    assert subscriber.received == []


async def test_a_paid_link_made_for_a_phone_gets_one_receipt_and_its_status_needs_no_stripe_round_trip(
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    created: CreatedAgent = await agent_on_emulators(["stripe", "twilio"], make_agent, services, sandboxes)
    connection_id = created.agent.connections["payments"].id
    stripe = sandboxes.sandboxes["stripe"].state
    stripe.webhook_url = f"{services.settings.public_url}/webhooks/stripe/{connection_id}/events"
    await services.followups.set(created.agent.id, FollowUps(payment_receipt=True))
    caller = await make_caller("http", created)
    link = await caller.call(
        "create_payment_link",
        {"amount_minor": 4900, "description": "Deposit", "customer_phone": "+14155550123"},
        call_id="c-2",
    )
    link_id = link.unwrap()["payment_link"]["payment_link_id"]
    stripe.pay(link_id)
    [callback] = stripe.take_callbacks()

    answers = await asyncio.gather(
        *(http.post(urlsplit(callback.url).path, content=callback.body, headers=callback.headers) for _ in range(3))
    )
    texts = sandboxes.sandboxes["twilio"].state.messages
    deadline = asyncio.get_running_loop().time() + 15
    while not any("received your payment" in str(text.get("body")) for text in texts):
        assert asyncio.get_running_loop().time() < deadline, "no receipt was texted"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    sandboxes.sandboxes["stripe"].inject(Fault(kind="server_error", status=503, times=0))
    status = await caller.call("get_payment_status", {"payment_link_id": link_id})

    assert {answer.status_code for answer in answers} == {200}
    [receipt] = [text for text in texts if "received your payment" in str(text.get("body"))]
    assert receipt["to"] == "+14155550123"
    assert "$49.00" in receipt["body"]
    assert status.unwrap()["payment_link"]["status"] == "paid"
