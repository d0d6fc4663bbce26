"""create_payment_link and send_sms: declared now, NOT_CONNECTED until a provider serves them."""

from __future__ import annotations

from tests.conftest import AgentFactory, CallerFactory
from tests.support.callers import ToolCaller
from tool_server.agents import Connection
from tool_server.builtin import Outbox
from tool_server.services import Services


async def test_create_payment_link_without_a_payments_provider_is_not_connected(caller: ToolCaller) -> None:
    outcome = await caller.call("create_payment_link", {"amount_minor": 4900, "description": "Deposit"})

    assert outcome.code == "NOT_CONNECTED"
    assert outcome.status in (None, 424)
    assert outcome.error is not None
    assert outcome.error["speech"] == "I can't take payments on this call, but someone can send you a payment link."


async def test_send_sms_without_a_messaging_provider_is_not_connected(caller: ToolCaller) -> None:
    outcome = await caller.call("send_sms", {"to": "+12125550142", "body": "Hello"})

    assert outcome.code == "NOT_CONNECTED"
    assert outcome.error is not None
    assert outcome.error["speech"] == "I can't send texts from this line right now."


async def test_not_connected_is_not_remembered_so_connecting_a_provider_makes_the_retry_work(
    make_agent: AgentFactory, make_caller: CallerFactory, services: Services
) -> None:
    created = await make_agent()
    caller = await make_caller("direct", created)
    arguments = {"to": "+12125550142", "body": "Hello"}
    assert (await caller.call("send_sms", arguments, call_id="call-1")).code == "NOT_CONNECTED"

    updated = await services.agents.set_connection(
        created.agent.id, Connection(capability="messaging", provider="outbox")
    )
    caller = await make_caller("direct", type(created)(agent=updated, api_key=created.api_key))

    assert (await caller.call("send_sms", arguments, call_id="call-1")).ok


async def test_send_sms_through_the_outbox_records_one_message_however_often_it_is_retried(
    make_agent: AgentFactory, make_caller: CallerFactory, services: Services
) -> None:
    created = await make_agent(
        connections=[
            Connection(capability="calendar", provider="local_calendar"),
            Connection(capability="messaging", provider="outbox"),
        ]
    )
    for transport in ("direct", "http", "mcp"):
        caller = await make_caller(transport, created)
        result = (
            await caller.call("send_sms", {"to": "(212) 555-0142", "body": "See you Monday"}, call_id="call-9")
        ).unwrap()
        assert result["message"]["to"] == "+12125550142"
        assert result["message"]["status"] == "recorded"
        assert result["speech"] == "I've sent a text to the number ending in 42."

    messages = await Outbox(services.db, created.agent.id, services.clock).messages()
    assert [(m.to, m.body) for m in messages] == [("+12125550142", "See you Monday")]


async def test_the_same_text_in_another_call_is_sent_again(
    make_agent: AgentFactory, make_caller: CallerFactory, services: Services
) -> None:
    created = await make_agent(connections=[Connection(capability="messaging", provider="outbox")])
    caller = await make_caller("http", created)
    for call_id in ("call-1", "call-2"):
        (await caller.call("send_sms", {"to": "+12125550142", "body": "Reminder"}, call_id=call_id)).unwrap()

    assert len(await Outbox(services.db, created.agent.id, services.clock).messages()) == 2
