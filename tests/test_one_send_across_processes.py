"""One text per idempotency key, whichever process retries it: send records in the database.

Two `Services` on one database stand for two server processes (or post-call workers): each
builds its own Twilio connector, so nothing in one process's memory protects the other. Twilio
has no idempotency key; a send that timed out may still create its message late.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from integrations.capabilities import MessagingProvider
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.twilio import SPEC as TWILIO
from integrations.twilio.errors import MaybeSentError
from tests.conftest import NOW
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.clock import fixed_clock
from tool_server.dispatch import CallInfo
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

CALLER = "+12125550142"
MESSAGES = "/Messages.json"


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    # A short send_sms deadline, so a slow Twilio times the tool call out quickly.
    return ServerSettings(database_url=database_url, postcall="off", tool_deadlines={"send_sms": 1.0})


@pytest.fixture
async def second_server(settings: ServerSettings) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=fixed_clock(NOW))
    yield built
    await built.aclose()


@pytest.fixture
async def agent(services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    sandbox = TWILIO.sandbox_connection(sandboxes.url("twilio"))
    return await services.agents.create(
        "Test Dental",
        timezone="America/New_York",
        phone_region="US",
        connections=[Connection(capability="messaging", provider="twilio", settings=sandbox.settings)],
        secrets={"messaging": sandbox.secrets},
    )


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def _texts(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    messages = sandboxes.sandboxes["twilio"].state.dump()["messages"]
    return [message for message in messages if message["direction"] == "outbound-api"]


def _messaging(server: Services, agent: CreatedAgent) -> MessagingProvider:
    built = server.providers.build(agent.agent, "messaging")
    assert isinstance(built, MessagingProvider)
    return built


def _bare(sandboxes: ServedSandboxes) -> MessagingProvider:
    """A connector built outside the server: its send records are in its own memory."""
    sandbox = TWILIO.sandbox_connection(sandboxes.url("twilio"))
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_bare", public_url="http://127.0.0.1:9")
    built = TWILIO.build(TWILIO.settings_model.model_validate(sandbox.settings), MemoryVault(sandbox.secrets), env)
    assert isinstance(built, MessagingProvider)
    return built


async def _time_out_a_send_that_twilio_makes_late(
    first: MessagingProvider, sandboxes: ServedSandboxes, key: str
) -> None:
    sandboxes.sandboxes["twilio"].inject(Fault(kind="slow", seconds=1.5, path=MESSAGES, method="POST", times=1))
    with deadline_scope(1.0), pytest.raises(MaybeSentError):
        await first.send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key=key)
    await eventually(lambda: len(_texts(sandboxes)) == 1)


async def test_without_shared_records_a_retry_in_another_process_would_text_twice(
    sandboxes: ServedSandboxes,
) -> None:
    # The control: connectors whose records are in process memory.
    await _time_out_a_send_that_twilio_makes_late(_bare(sandboxes), sandboxes, "k-1")

    await _bare(sandboxes).send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")

    assert len(_texts(sandboxes)) == 2


async def test_a_send_that_timed_out_in_one_process_is_found_not_sent_again_by_another(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    await _time_out_a_send_that_twilio_makes_late(_messaging(services, agent), sandboxes, "k-1")

    message = await _messaging(second_server, agent).send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")

    assert [text["sid"] for text in _texts(sandboxes)] == [message.id]


async def test_a_confirmed_send_is_answered_from_the_records_in_another_process_without_asking_twilio(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    sent = await _messaging(services, agent).send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")
    sandbox = sandboxes.sandboxes["twilio"]
    before = len(sandbox.provider_requests())

    again = await _messaging(second_server, agent).send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")

    assert again.id == sent.id
    assert len(sandbox.provider_requests()) == before
    assert len(_texts(sandboxes)) == 1


async def test_a_lookup_in_another_process_never_adopts_the_identical_text_another_key_sent(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    first = _messaging(services, agent)
    sent = await first.send_sms(CALLER, "Your code is ready.", idempotency_key="k-1")
    sandboxes.sandboxes["twilio"].inject(Fault(kind="server_error", path=MESSAGES, method="POST", times=1))
    with pytest.raises(MaybeSentError):
        await first.send_sms(CALLER, "Your code is ready.", idempotency_key="k-2")

    retried = await _messaging(second_server, agent).send_sms(CALLER, "Your code is ready.", idempotency_key="k-2")

    assert retried.id != sent.id
    assert {text["sid"] for text in _texts(sandboxes)} == {sent.id, retried.id}


async def test_send_sms_retried_through_the_other_server_after_a_timeout_texts_once(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    sandboxes.sandboxes["twilio"].inject(Fault(kind="slow", seconds=1.5, path=MESSAGES, method="POST", times=1))
    arguments = {"to": CALLER, "body": "See you Monday at 10 AM."}

    timed_out = await services.dispatcher.execute(
        agent.agent, "send_sms", arguments, CallInfo(transport="http", idempotency_key="sms-1")
    )
    assert not timed_out.ok
    await eventually(lambda: len(_texts(sandboxes)) == 1)
    retried = await second_server.dispatcher.execute(
        agent.agent, "send_sms", arguments, CallInfo(transport="http", idempotency_key="sms-1")
    )

    assert retried.ok, retried.error
    assert len(_texts(sandboxes)) == 1
    assert retried.result is not None
    assert retried.result["message"]["message_id"] == _texts(sandboxes)[0]["sid"]
