"""hold_slot, release_hold and book_appointment(hold_id) over every transport, on the built-in calendar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import DEFAULT_CONNECTIONS, MONDAY, NOW, TRANSPORTS, CallerFactory
from tests.support.callers import ToolCaller
from tests.support.clocks import MovableClock
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.settings import ServerSettings

TEN = f"{MONDAY}T10:00:00-04:00"
JANE = {"caller_name": "Jane Doe", "caller_phone": "+12125550142"}
BOB = {"caller_name": "Bob Roe", "caller_phone": "+12125550199"}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def services(settings: ServerSettings, clock: MovableClock) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=clock)
    yield built
    await built.aclose()


@pytest.fixture
async def agent(services: Services) -> CreatedAgent:
    return await services.agents.create(
        "Test Dental",
        timezone="America/New_York",
        phone_region="US",
        connections=[services.providers.validate(c) for c in DEFAULT_CONNECTIONS],
        hold_minutes=3,
    )


@pytest.fixture(params=TRANSPORTS)
async def caller(request: pytest.FixtureRequest, make_caller: CallerFactory, agent: CreatedAgent) -> ToolCaller:
    return await make_caller(request.param, agent)


async def starts(caller: ToolCaller, call_id: str) -> list[str]:
    result = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id=call_id)).unwrap()
    return [slot["start"] for slot in result["slots"]]


async def hold(caller: ToolCaller, call_id: str, **extra: Any) -> dict[str, Any]:
    return (await caller.call("hold_slot", {"start": f"{MONDAY}T10:00", **extra}, call_id=call_id)).unwrap()


async def test_a_held_slot_is_hidden_from_other_callers_and_booked_by_its_hold_id(caller: ToolCaller) -> None:
    held = await hold(caller, "call-a")
    assert held["start"] == TEN
    assert held["expires_at"] == "2026-03-04T10:03:00-05:00"
    assert held["speech"] == "I'm holding Monday, March 9 at 10 AM Eastern time for you for the next 3 minutes."

    assert TEN not in await starts(caller, "call-b")
    assert TEN in await starts(caller, "call-a")
    taken = await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **BOB}, call_id="call-b")
    assert taken.code == "SLOT_UNAVAILABLE"
    assert taken.details["reason"] == "another caller is holding that time"
    assert TEN not in [slot["start"] for slot in taken.details["alternatives"]]
    assert taken.details["alternatives"]

    booked = (await caller.call("book_appointment", {"hold_id": held["hold_id"], **JANE}, call_id="call-a")).unwrap()
    assert booked["appointment"]["start"] == TEN
    assert booked["appointment"]["end"] == f"{MONDAY}T10:30:00-04:00"
    released = (await caller.call("release_hold", {"hold_id": held["hold_id"]}, call_id="call-a")).unwrap()
    assert released["status"] == "booked"


async def test_another_caller_cannot_hold_a_held_slot(caller: ToolCaller) -> None:
    await hold(caller, "call-a")

    second = await caller.call("hold_slot", {"start": f"{MONDAY}T10:00"}, call_id="call-b")

    assert second.code == "SLOT_UNAVAILABLE"
    assert second.details["alternatives"]


async def test_a_hold_lapses_by_itself_after_the_agents_hold_minutes(caller: ToolCaller, clock: MovableClock) -> None:
    held = await hold(caller, "call-a")
    clock.now = NOW + timedelta(minutes=2, seconds=59)
    assert TEN not in await starts(caller, "call-b")

    clock.now = NOW + timedelta(minutes=3)
    assert TEN in await starts(caller, "call-b")
    booked = await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **BOB}, call_id="call-b")
    assert booked.ok, booked.error
    late = await caller.call("book_appointment", {"hold_id": held["hold_id"], **JANE}, call_id="call-a")
    assert late.code == "SLOT_UNAVAILABLE"


async def test_releasing_a_hold_frees_the_slot_and_releasing_again_is_harmless(caller: ToolCaller) -> None:
    held = await hold(caller, "call-a")

    first = (await caller.call("release_hold", {"hold_id": held["hold_id"]}, call_id="call-a")).unwrap()
    second = (await caller.call("release_hold", {"hold_id": held["hold_id"]}, call_id="call-x")).unwrap()

    assert first["status"] == second["status"] == "released"
    assert TEN in await starts(caller, "call-b")


async def test_the_same_caller_by_phone_may_book_the_slot_they_hold_without_the_hold_id(caller: ToolCaller) -> None:
    await hold(caller, "call-a", contact_phone="212-555-0142")

    booked = await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **JANE}, call_id="call-other-leg")

    assert booked.ok, booked.error


async def test_booking_a_confirmed_hold_again_returns_the_same_appointment(caller: ToolCaller) -> None:
    held = await hold(caller, "call-a")
    arguments = {"hold_id": held["hold_id"], **JANE}

    first = (await caller.call("book_appointment", arguments, idempotency_key="try-1")).unwrap()
    second = (await caller.call("book_appointment", arguments, idempotency_key="try-2")).unwrap()

    assert first["appointment"]["appointment_id"] == second["appointment"]["appointment_id"]


async def test_holding_a_booked_slot_offers_alternatives(caller: ToolCaller) -> None:
    assert (await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **BOB}, call_id="call-b")).ok

    refused = await caller.call("hold_slot", {"start": f"{MONDAY}T10:00"}, call_id="call-a")

    assert refused.code == "SLOT_UNAVAILABLE"
    assert refused.details["alternatives"][0]["start"] != TEN


async def test_an_unknown_hold_is_not_found_and_a_booking_needs_a_start_or_a_hold(caller: ToolCaller) -> None:
    unknown = await caller.call("release_hold", {"hold_id": "hold_nope"})
    assert unknown.code == "NOT_FOUND"
    missing = await caller.call("book_appointment", {"hold_id": "hold_nope", **JANE})
    assert missing.code == "NOT_FOUND"
    neither = await caller.call("book_appointment", dict(JANE))
    assert (neither.code, neither.field) == ("VALIDATION_ERROR", "start")


async def test_a_hold_in_the_callers_zone_says_the_zone(caller: ToolCaller) -> None:
    held = await hold(caller, "call-a", timezone="America/Los_Angeles")

    assert held["start"] == "2026-03-09T10:00:00-07:00"
    assert "Pacific time" in held["speech"]
