"""REST hooks as Zapier, Make and n8n use them: subscribe, get each event once and signed, unsubscribe."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import AgentFactory, CallerFactory
from tests.support.hook_subscriber import Subscriber, serve_subscriber
from tests.test_postcall_sync import BUILTIN, call, headers, settled
from tool_server.agents import CreatedAgent
from tool_server.hooks.sender import verify
from tool_server.services import Services
from tool_server.settings import ServerSettings


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
async def created(make_agent: AgentFactory) -> CreatedAgent:
    return await make_agent(connections=BUILTIN)


async def subscribe(http: httpx.AsyncClient, created: CreatedAgent, url: str, event: str) -> dict[str, Any]:
    response = await http.post("/v1/hooks", json={"target_url": url, "event": event}, headers=headers(created))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def received(subscriber: Subscriber, count: int, within: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(subscriber.received) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(subscriber.received)} deliveries, expected {count}")
        await asyncio.sleep(0.05)


def signed_by(secret: str, services: Services, item: Any) -> bool:
    return verify(secret, item.headers["x-hook-signature"], item.body, int(services.clock().timestamp()))


async def test_each_call_record_reaches_the_subscriber_once_as_a_signed_call_completed(
    http: httpx.AsyncClient, created: CreatedAgent, subscriber: Subscriber, services: Services
) -> None:
    hook = await subscribe(http, created, subscriber.url(), "call.completed")

    for call_id in ("call-1", "call-1", "call-2"):  # the platform sends call-1 twice
        assert (await http.post("/v1/calls", json=call(call_id), headers=headers(created))).status_code == 200
    for call_id in ("call-1", "call-2"):
        record = await settled(http, created, call_id)
        assert record["sync_status"] == "synced", record["sync_steps"]

    assert len(subscriber.received) == 2
    deliveries = [json.loads(item.body) for item in subscriber.received]
    assert sorted(d["data"]["call_id"] for d in deliveries) == ["call-1", "call-2"]
    assert {d["event"] for d in deliveries} == {"call.completed"}
    assert len({d["id"] for d in deliveries}) == 2
    assert all(signed_by(hook["secret"], services, item) for item in subscriber.received)
    assert all(item.headers["x-hook-subscription"] == hook["id"] for item in subscriber.received)
    assert not signed_by("whsec_wrong", services, subscriber.received[0])


async def test_a_subscriber_that_answers_500_twice_gets_the_event_on_the_third_try_once(
    http: httpx.AsyncClient, created: CreatedAgent, subscriber: Subscriber
) -> None:
    hook = await subscribe(http, created, subscriber.url(), "call.completed")
    subscriber.script = [500, 500]

    await http.post("/v1/calls", json=call("call-1"), headers=headers(created))
    record = await settled(http, created, "call-1")

    step = next(s for s in record["sync_steps"] if s["job"] == f"hook:{hook['id']}")
    assert step["status"] == "done"
    assert step["attempts"] == 3
    assert [item.answered for item in subscriber.received] == [500, 500, 200]
    ids = {json.loads(item.body)["id"] for item in subscriber.received}
    assert len(ids) == 1  # the same event each time, so the subscriber can dedupe on it
    assert len(subscriber.accepted()) == 1


async def test_a_410_from_the_subscriber_removes_its_subscription(
    http: httpx.AsyncClient, created: CreatedAgent, subscriber: Subscriber
) -> None:
    await subscribe(http, created, subscriber.url(), "call.completed")
    subscriber.script = [410]

    await http.post("/v1/calls", json=call("call-1"), headers=headers(created))
    await settled(http, created, "call-1")
    listed = (await http.get("/v1/hooks", headers=headers(created))).json()
    await http.post("/v1/calls", json=call("call-2"), headers=headers(created))
    second = await settled(http, created, "call-2")

    assert listed == {"hooks": []}
    assert len(subscriber.received) == 1
    assert not any(step["job"].startswith("hook:") for step in second["sync_steps"])


async def test_unsubscribing_stops_deliveries_and_only_the_owner_can_unsubscribe(
    http: httpx.AsyncClient, created: CreatedAgent, make_agent: AgentFactory, subscriber: Subscriber
) -> None:
    hook = await subscribe(http, created, subscriber.url(), "call.completed")
    other = await make_agent(name="Other Dental", connections=BUILTIN)

    refused = await http.delete(f"/v1/hooks/{hook['id']}", headers=headers(other))
    removed = await http.delete(f"/v1/hooks/{hook['id']}", headers=headers(created))
    await http.post("/v1/calls", json=call("call-1"), headers=headers(created))
    await settled(http, created, "call-1")

    assert refused.status_code == 404
    assert removed.status_code == 204
    assert subscriber.received == []


async def test_a_booking_made_by_the_tool_is_delivered_as_appointment_booked(
    http: httpx.AsyncClient,
    created: CreatedAgent,
    subscriber: Subscriber,
    make_caller: CallerFactory,
    services: Services,
) -> None:
    hook = await subscribe(http, created, subscriber.url(), "appointment.booked")
    caller = await make_caller("http", created)
    arguments = {"start": "2026-03-09T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}

    first = await caller.call("book_appointment", arguments, call_id="call-9")
    again = await caller.call("book_appointment", arguments, call_id="call-9")
    await received(subscriber, 1)
    await asyncio.sleep(0.3)

    assert first.ok
    assert again.ok
    assert len(subscriber.received) == 1
    delivery = json.loads(subscriber.received[0].body)
    assert delivery["event"] == "appointment.booked"
    assert delivery["data"]["appointment_id"] == first.unwrap()["appointment"]["appointment_id"]
    assert delivery["data"]["call_id"] == "call-9"
    assert signed_by(hook["secret"], services, subscriber.received[0])


async def test_subscribing_and_unsubscribing_apply_to_the_very_next_booking(
    http: httpx.AsyncClient, created: CreatedAgent, subscriber: Subscriber, make_caller: CallerFactory
) -> None:
    # The first booking finds no subscriber (and remembers that); the subscription must still count at once.
    caller = await make_caller("http", created)
    before = await caller.call(
        "book_appointment",
        {"start": "2026-03-09T10:00", "caller_name": "Ann Lee", "caller_phone": "+12125550101"},
        call_id="call-1",
    )
    hook = await subscribe(http, created, subscriber.url(), "appointment.booked")
    during = await caller.call(
        "book_appointment",
        {"start": "2026-03-09T11:00", "caller_name": "Bo Chen", "caller_phone": "+12125550102"},
        call_id="call-2",
    )
    await received(subscriber, 1)
    await http.delete(f"/v1/hooks/{hook['id']}", headers=headers(created))
    after = await caller.call(
        "book_appointment",
        {"start": "2026-03-09T12:00", "caller_name": "Cy Diaz", "caller_phone": "+12125550103"},
        call_id="call-3",
    )
    await asyncio.sleep(0.5)

    assert before.ok
    assert during.ok
    assert after.ok
    [delivery] = [json.loads(item.body) for item in subscriber.received]
    assert delivery["data"]["appointment_id"] == during.unwrap()["appointment"]["appointment_id"]


async def test_samples_give_one_payload_per_event_and_unknown_events_are_refused(
    http: httpx.AsyncClient, created: CreatedAgent
) -> None:
    samples = await http.get("/v1/hooks/samples/call.completed", headers=headers(created))
    unknown = await http.get("/v1/hooks/samples/call.exploded", headers=headers(created))
    bad_event = await http.post(
        "/v1/hooks", json={"target_url": "https://example.com/h", "event": "nope"}, headers=headers(created)
    )
    unauthenticated = await http.get("/v1/hooks/samples/call.completed")

    assert samples.status_code == 200
    [sample] = samples.json()
    assert sample["event"] == "call.completed"
    assert sample["data"]["customer_phone"]
    assert unknown.status_code == 404
    assert bad_event.status_code == 400
    assert bad_event.json()["error"]["field"] == "event"
    assert unauthenticated.status_code == 401


def test_without_the_setting_a_subscriber_cannot_aim_deliveries_at_this_servers_network() -> None:
    from tool_server.errors import ToolError
    from tool_server.hooks.subscriptions import check_target

    for url in ("http://127.0.0.1:8000/x", "http://localhost/x", "http://10.0.0.5/x", "http://[::1]/x", "ftp://a/b"):
        with pytest.raises(ToolError):
            check_target(url, allow_private=False)
    assert check_target("https://hooks.zapier.com/hooks/standard/1/2/", allow_private=False)
