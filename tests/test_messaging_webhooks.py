"""Twilio's callbacks through the server: delivery receipts and STOP/START, signature checked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from integrations.twilio.sandbox import SANDBOX_AUTH_TOKEN
from integrations.twilio.webhooks import sign
from tests.conftest import AgentFactory, CallerFactory
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

CALLER = "+12125550142"


@pytest.fixture
async def texting(make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    sandbox = services.providers.specs["twilio"].integration
    assert sandbox is not None
    wiring = sandbox.sandbox_connection(sandboxes.url("twilio"))
    return await make_agent(
        connections=[Connection(capability="messaging", provider="twilio", settings=wiring.settings)],
        secrets={"messaging": wiring.secrets},
    )


def twilio_state(sandboxes: ServedSandboxes) -> Any:
    return sandboxes.sandboxes["twilio"].state


async def post_signed(
    http: httpx.AsyncClient, url: str, params: dict[str, str], *, token: str = SANDBOX_AUTH_TOKEN
) -> httpx.Response:
    """POST a form as Twilio would: X-Twilio-Signature over the public URL and the parameters."""
    return await http.post(urlsplit(url).path, data=params, headers={"X-Twilio-Signature": sign(url, params, token)})


def webhook_url(services: Services, created: CreatedAgent, kind: str) -> str:
    connection_id = created.agent.connections["messaging"].id
    return f"{services.settings.public_url}/webhooks/twilio/{connection_id}/{kind}"


async def test_a_delivery_receipt_updates_the_message_record(
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    sent = (await (await make_caller("http", texting)).call("send_sms", {"to": CALLER, "body": "Hi"})).unwrap()
    sid = sent["message"]["message_id"]
    assert await services.messages.status("twilio", sid) == ("queued", None)

    delivery = twilio_state(sandboxes).advance(sid, "delivered")
    assert delivery is not None
    assert delivery.url == webhook_url(services, texting, "status")
    response = await post_signed(http, delivery.url, delivery.params)

    assert response.status_code == 204
    assert await services.messages.status("twilio", sid) == ("delivered", None)


async def test_a_receipt_with_a_bad_signature_is_refused_and_changes_nothing(
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    sent = (await (await make_caller("http", texting)).call("send_sms", {"to": CALLER, "body": "Hi"})).unwrap()
    sid = sent["message"]["message_id"]
    delivery = twilio_state(sandboxes).advance(sid, "undelivered", error_code=30003)
    assert delivery is not None

    forged = await post_signed(http, delivery.url, delivery.params, token="f" * 32)

    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "UNAUTHORIZED"
    assert await services.messages.status("twilio", sid) == ("queued", None)


async def test_stop_opts_the_caller_out_and_start_opts_them_back_in(
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    caller = await make_caller("http", texting)
    inbound = webhook_url(services, texting, "inbound")

    stop = await post_signed(http, inbound, twilio_state(sandboxes).receive_inbound(CALLER, "Stop"))
    sent_before = len(twilio_state(sandboxes).dump()["messages"])
    refused = await caller.call("send_sms", {"to": CALLER, "body": "Reminder"})

    assert stop.status_code == 200
    assert stop.headers["content-type"].startswith("text/xml")
    assert await services.messages.is_opted_out(texting.agent.id, CALLER)
    assert refused.code == "OPTED_OUT"
    assert refused.status == 409
    assert refused.error is not None
    assert "opted out" in refused.error["speech"]
    assert len(twilio_state(sandboxes).dump()["messages"]) == sent_before  # nothing went to Twilio

    start = await post_signed(http, inbound, twilio_state(sandboxes).receive_inbound(CALLER, "START"))

    assert start.status_code == 200
    assert not await services.messages.is_opted_out(texting.agent.id, CALLER)
    assert (await caller.call("send_sms", {"to": CALLER, "body": "Reminder"}, call_id="c-2")).ok


async def test_an_unsubscribed_recipient_reported_by_twilio_is_opted_out_here_too(
    texting: CreatedAgent, make_caller: CallerFactory, services: Services, sandboxes: ServedSandboxes
) -> None:
    # The STOP reached Twilio but its webhook never reached us: Twilio answers 21610.
    twilio_state(sandboxes).receive_inbound(CALLER, "STOP")

    outcome = await (await make_caller("direct", texting)).call("send_sms", {"to": CALLER, "body": "Hi"})

    assert outcome.code == "OPTED_OUT"
    assert await services.messages.is_opted_out(texting.agent.id, CALLER)


async def test_an_ordinary_inbound_text_changes_no_opt_out(
    texting: CreatedAgent, http: httpx.AsyncClient, services: Services, sandboxes: ServedSandboxes
) -> None:
    response = await post_signed(
        http,
        webhook_url(services, texting, "inbound"),
        twilio_state(sandboxes).receive_inbound(CALLER, "stop by at 5?"),
    )

    assert response.status_code == 200
    assert not await services.messages.is_opted_out(texting.agent.id, CALLER)


async def test_a_webhook_for_an_unknown_connection_or_kind_is_refused(
    texting: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    unknown = f"{services.settings.public_url}/webhooks/twilio/con_missing/status"
    missing = await post_signed(http, unknown, {"MessageSid": "SM1", "MessageStatus": "sent"})
    odd_kind = await post_signed(http, webhook_url(services, texting, "voice"), {"CallSid": "CA1"})

    assert missing.status_code == 404
    assert odd_kind.status_code == 400
