"""A write whose first attempt timed out on our side, then retried with the same call id, makes one record.

The first attempt's deadline passes while the emulator is still answering; the emulator then
creates the record anyway, as a real provider would. Dispatch does not remember a TIMEOUT, so
the retry runs the tool again, and the connector's idempotency (a client-chosen Google event
id; Stripe's Idempotency-Key) must land it on the record already made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from integrations.common.sandbox import Fault
from tests.conftest import MONDAY, AgentFactory, CallerFactory
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.agents.sandbox import sandbox_connections
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url, tool_deadlines={"book_appointment": 1.5, "create_payment_link": 1.5}
    )


@pytest.fixture
async def connected(make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    pairs = sandbox_connections(services.providers, sandboxes.base_url)
    return await make_agent(
        connections=[connection for connection, _ in pairs],
        secrets={connection.capability: secrets for connection, secrets in pairs},
    )


async def settle(count: Any, expected: int) -> None:
    """Wait (up to 10 s) until the emulator has finished the slow request the first attempt gave up on."""
    deadline = time.monotonic() + 10
    while count() != expected:
        assert time.monotonic() < deadline, f"the emulator never reached {expected} records"
        await asyncio.sleep(0.05)


async def test_a_retried_booking_makes_one_google_event(
    connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller("http", connected)
    google = sandboxes.sandboxes["google_calendar"]
    google.inject(Fault(kind="slow", seconds=2.5, method="POST", path="/events"))
    booking = {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}

    def events() -> int:
        return sum(len(calendar["events"]) for calendar in google.state.dump()["calendars"].values())

    first = await caller.call("book_appointment", booking, call_id="call-42")
    await settle(events, 1)
    retried = await caller.call("book_appointment", booking, call_id="call-42")

    assert first.code in {"TIMEOUT", "PROVIDER_ERROR"}
    assert retried.ok, retried.error
    assert events() == 1
    (event,) = next(c["events"] for c in google.state.dump()["calendars"].values() if c["events"])
    assert retried.unwrap()["appointment"]["appointment_id"] == event["id"]


async def test_a_retried_payment_link_makes_one_stripe_session_and_one_customer(
    connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller("http", connected)
    stripe = sandboxes.sandboxes["stripe"]
    stripe.inject(Fault(kind="slow", seconds=2.5, method="POST", path="/v1/checkout/sessions"))
    link = {"amount_minor": 4900, "description": "Deposit", "customer_email": "jane@example.com"}

    def sessions() -> int:
        return len(stripe.state.dump()["checkout_sessions"])

    first = await caller.call("create_payment_link", link, call_id="call-43")
    await settle(sessions, 1)
    retried = await caller.call("create_payment_link", link, call_id="call-43")

    assert first.code in {"TIMEOUT", "PROVIDER_ERROR"}
    assert retried.ok, retried.error
    assert sessions() == 1
    assert len(stripe.state.dump()["customers"]) == 1
    assert retried.unwrap()["payment_link"]["payment_link_id"] == stripe.state.dump()["checkout_sessions"][0]["id"]
