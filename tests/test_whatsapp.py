"""WhatsApp through Twilio, end to end: the 24-hour window the caller's own message opens, templates
outside it, 63016 arriving late in a status callback and the follow-up falling back to SMS once, and STOP
on either channel stopping both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import AgentFactory, CallerFactory
from tests.support.sandbox_server import ServedSandboxes
from tests.test_postcall_sync import call, headers, settled
from tool_server.agents import Connection, CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

CALLER = "+12125550142"


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
        # The pinned test clock reads 10:00 in New York; no follow-up here waits for quiet hours.
    )


@pytest.fixture
async def texting(make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    twilio = services.providers.specs["twilio"].integration
    assert twilio is not None
    wiring = twilio.sandbox_connection(sandboxes.url("twilio"))
    return await make_agent(
        connections=[
            Connection(capability="calendar", provider="local_calendar"),
            Connection(capability="crm", provider="contact_book"),
            Connection(capability="messaging", provider="twilio", settings=wiring.settings),
        ],
        secrets={"messaging": wiring.secrets},
    )


def twilio(sandboxes: ServedSandboxes) -> Any:
    return sandboxes.sandboxes["twilio"].state


def inbound_url(services: Services, created: CreatedAgent) -> str:
    return f"{services.settings.public_url}/webhooks/twilio/{created.agent.connections['messaging'].id}/inbound"


async def deliver_callbacks(http: httpx.AsyncClient, sandboxes: ServedSandboxes) -> list[int]:
    """Post what the emulator would send (status callbacks, inbound messages) into the app."""
    answers = []
    for callback in twilio(sandboxes).take_callbacks():
        response = await http.post(urlsplit(callback.url).path, data=callback.params, headers=callback.headers)
        answers.append(response.status_code)
    return answers


def whatsapp_sent(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    messages = twilio(sandboxes).dump()["messages"]
    return [m for m in messages if m["direction"] == "outbound-api" and str(m["to"]).startswith("whatsapp:")]


def sms_sent(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    messages = twilio(sandboxes).dump()["messages"]
    return [m for m in messages if m["direction"] == "outbound-api" and str(m["to"]).startswith("+")]


@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_free_text_goes_only_inside_the_window_and_a_template_goes_outside_it(
    transport: str,
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    caller = await make_caller(transport, texting)
    text = {"to": CALLER, "body": "Here's our address: 12 High St."}

    closed = await caller.call("send_whatsapp", text, call_id="c-1")
    templated = await caller.call(
        "send_whatsapp", {**text, "template": "booking_confirmation", "variables": {"1": "Ann"}}, call_id="c-1"
    )
    twilio(sandboxes).receive_inbound(f"whatsapp:{CALLER}", "Hi, where are you?", url=inbound_url(services, texting))
    assert await deliver_callbacks(http, sandboxes) == [200]
    opened = await caller.call("send_whatsapp", text, call_id="c-2")
    retried = await caller.call("send_whatsapp", text, call_id="c-2")

    assert closed.code == "WHATSAPP_WINDOW_CLOSED"
    assert closed.error is not None
    assert "text message" in closed.error["speech"]
    assert "booking_confirmation" in closed.error["details"]["templates"]
    assert templated.unwrap()["sent_as"] == "template"
    assert opened.unwrap()["sent_as"] == "text"
    assert retried.unwrap() == opened.unwrap()
    sent = whatsapp_sent(sandboxes)
    assert len(sent) == 2
    assert sent[0]["body"] != text["body"]  # the template's own text, not the free text
    assert sent[1]["body"] == text["body"]


async def test_a_63016_callback_fails_the_whatsapp_follow_up_and_it_falls_back_to_sms_once(
    texting: CreatedAgent, http: httpx.AsyncClient, services: Services, sandboxes: ServedSandboxes
) -> None:
    await services.followups.set(texting.agent.id, FollowUps(confirmation_whatsapp=True))
    # We heard from the caller (so we think the window is open) but WhatsApp's own window had closed:
    # the message is accepted and fails later with 63016.
    twilio(sandboxes).receive_inbound(
        f"whatsapp:{CALLER}", "Hi", url=inbound_url(services, texting), at=datetime.now(UTC) - timedelta(hours=25)
    )
    await deliver_callbacks(http, sandboxes)

    await http.post("/v1/calls", json=call("call-wa"), headers=headers(texting))
    first = await settled(http, texting, "call-wa")
    [whatsapp] = whatsapp_sent(sandboxes)
    callbacks = twilio(sandboxes).take_callbacks()
    for callback in callbacks + callbacks:  # Twilio may deliver a callback twice
        answer = await http.post(urlsplit(callback.url).path, data=callback.params, headers=callback.headers)
        assert answer.status_code == 204
    record = await settled(http, texting, "call-wa")
    shown = (await http.get(f"/v1/messages/{whatsapp['sid']}", headers=headers(texting))).json()

    assert {s["job"]: s["status"] for s in first["sync_steps"]}["confirmation_whatsapp"] == "done"
    assert whatsapp["status"] == "failed"
    assert whatsapp["error_code"] == 63016
    assert shown["status"] == "failed"
    assert shown["error_code"] == 63016
    assert [step["status"] for step in shown["history"]] == ["queued", "failed"]
    assert shown["call_record_id"] == record["record_id"]
    steps = {s["job"]: s for s in record["sync_steps"]}
    assert steps["sms_fallback"]["status"] == "done"
    [sms] = sms_sent(sandboxes)
    assert sms["to"] == CALLER
    assert "You're booked for" in sms["body"]


async def test_stop_on_whatsapp_stops_texts_on_both_channels(
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    twilio(sandboxes).receive_inbound(f"whatsapp:{CALLER}", "STOP", url=inbound_url(services, texting))
    await deliver_callbacks(http, sandboxes)
    caller = await make_caller("http", texting)

    sms = await caller.call("send_sms", {"to": CALLER, "body": "Hello"})
    whatsapp = await caller.call("send_whatsapp", {"to": CALLER, "template": "follow_up"})

    assert sms.code == "OPTED_OUT"
    assert whatsapp.code == "OPTED_OUT"
    assert twilio(sandboxes).dump()["messages"][-1]["direction"] == "inbound"


async def test_a_forged_twilio_callback_is_refused_and_changes_nothing(
    texting: CreatedAgent,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    caller = await make_caller("http", texting)
    sent = (await caller.call("send_sms", {"to": CALLER, "body": "Hello"})).unwrap()
    sid = sent["message"]["message_id"]
    twilio(sandboxes).advance(sid, "delivered")
    [genuine] = twilio(sandboxes).take_callbacks()
    path = urlsplit(genuine.url).path

    forged = await http.post(path, data={**genuine.params, "MessageStatus": "failed"}, headers=genuine.headers)
    unsigned = await http.post(path, data=genuine.params)
    before = (await http.get(f"/v1/messages/{sid}", headers=headers(texting))).json()
    real = await http.post(path, data=genuine.params, headers=genuine.headers)
    after = (await http.get(f"/v1/messages/{sid}", headers=headers(texting))).json()

    assert forged.status_code == 401
    assert unsigned.status_code == 401
    assert [step["status"] for step in before["history"]] == ["queued"]
    assert real.status_code == 204
    assert [step["status"] for step in after["history"]] == ["queued", "delivered"]
