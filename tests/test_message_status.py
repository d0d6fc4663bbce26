"""Delivery status for every message: GET /v1/messages shows each step the providers' callbacks reported,
and a forged callback changes nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import AgentFactory, CallerFactory
from tests.support.provider_kit import agent_on_emulators
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")


def headers(created: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.api_key}"}


async def deliver(http: httpx.AsyncClient, url: str, request_headers: dict[str, str], body: bytes) -> httpx.Response:
    """POST a provider's callback into the app, as the provider would send it."""
    return await http.post(urlsplit(url).path, content=body, headers=request_headers)


@pytest.fixture
async def emailing(
    make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> tuple[CreatedAgent, Any]:
    created = await agent_on_emulators(["sendgrid"], make_agent, services, sandboxes)
    connection_id = created.agent.connections["email"].id
    state = sandboxes.sandboxes["sendgrid"].state
    state.event_webhook_url = f"{services.settings.public_url}/webhooks/sendgrid/{connection_id}/events"
    return created, state


async def send_mail(make_caller: CallerFactory, created: CreatedAgent) -> str:
    caller = await make_caller("http", created)
    sent = await caller.call(
        "send_email", {"to": "jane@example.com", "subject": "Hi", "text": "See you Monday."}, call_id="call-3"
    )
    return str(sent.unwrap()["message"]["message_id"])


async def test_an_emails_history_follows_sendgrids_signed_events(
    emailing: tuple[CreatedAgent, Any], make_caller: CallerFactory, http: httpx.AsyncClient
) -> None:
    created, state = emailing
    message_id = await send_mail(make_caller, created)
    for callback in state.take_callbacks():
        assert (await deliver(http, callback.url, callback.headers, callback.body)).status_code == 200

    shown = (await http.get(f"/v1/messages/{message_id}", headers=headers(created))).json()
    listed = await http.get("/v1/messages", params={"contact_email": "Jane@Example.com"}, headers=headers(created))

    assert shown["channel"] == "email"
    assert shown["provider"] == "sendgrid"
    assert shown["status"] == "delivered"
    assert [step["status"] for step in shown["history"]] == ["queued", "sent", "delivered"]
    assert shown["tool"] == "send_email"
    assert shown["call_id"] == "call-3"
    assert [item["id"] for item in listed.json()["messages"]] == [shown["id"]]


async def test_a_bounce_turns_the_email_failed_with_the_servers_reason(
    emailing: tuple[CreatedAgent, Any], make_caller: CallerFactory, http: httpx.AsyncClient
) -> None:
    created, state = emailing
    message_id = await send_mail(make_caller, created)
    state.take_callbacks()
    bounce = state.emit(message_id, "bounce", status="5.1.1", reason="550 5.1.1 The email account does not exist.")

    answer = await deliver(http, bounce.url, bounce.headers, bounce.body)
    shown = (await http.get(f"/v1/messages/{message_id}", headers=headers(created))).json()

    assert answer.status_code == 200
    assert shown["status"] == "failed"
    assert "5.1.1" in shown["error_detail"]


async def test_forged_or_unsigned_events_are_refused_and_change_nothing(
    emailing: tuple[CreatedAgent, Any], make_caller: CallerFactory, http: httpx.AsyncClient
) -> None:
    created, state = emailing
    message_id = await send_mail(make_caller, created)
    state.take_callbacks()
    genuine = state.emit(message_id, "delivered")
    before = (await http.get(f"/v1/messages/{message_id}", headers=headers(created))).json()

    altered = await deliver(http, genuine.url, genuine.headers, genuine.body.replace(b"delivered", b"bounce"))
    unsigned = await deliver(http, genuine.url, {"content-type": "application/json"}, genuine.body)
    after = (await http.get(f"/v1/messages/{message_id}", headers=headers(created))).json()

    assert altered.status_code == 401
    assert unsigned.status_code == 401
    assert after == before


async def test_one_agent_cannot_read_another_agents_messages(
    emailing: tuple[CreatedAgent, Any],
    make_caller: CallerFactory,
    make_agent: AgentFactory,
    http: httpx.AsyncClient,
) -> None:
    created, _ = emailing
    message_id = await send_mail(make_caller, created)
    other = await make_agent(name="Other Dental")

    answer = await http.get(f"/v1/messages/{message_id}", headers=headers(other))
    listed = await http.get("/v1/messages", headers=headers(other))

    assert answer.status_code == 404
    assert listed.json() == {"messages": []}
