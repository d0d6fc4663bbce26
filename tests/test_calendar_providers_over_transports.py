"""Each external calendar, connected to its emulator, through the tools over HTTP and MCP.

check_availability, hold_slot, book_appointment (with the hold, then retried three ways),
find, reschedule and cancel; the emulator holds exactly one event for the booking throughout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integrations.outlook_calendar.windows_zones import iana_zone
from tests.conftest import MONDAY, AgentFactory, CallerFactory
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.agents.sandbox import sandbox_connections
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

NEW_YORK = ZoneInfo("America/New_York")
TEN = datetime(2026, 3, 9, 10, tzinfo=NEW_YORK)
JANE = {"caller_name": "Jane Doe", "caller_phone": "+12125550142"}


def _starts(state: dict[str, Any], provider: str) -> list[datetime]:
    """The start of every event the emulator holds (cancelled ones included)."""
    if provider == "google_calendar":
        return [
            datetime.fromisoformat(event["start"]["dateTime"])
            for calendar in state["calendars"].values()
            for event in calendar["events"]
        ]
    if provider == "outlook_calendar":
        return [
            datetime.fromisoformat(event["start"]["dateTime"][:26]).replace(
                tzinfo=ZoneInfo(iana_zone(event["start"]["timeZone"]))
            )
            for mailbox in state["mailboxes"].values()
            for event in mailbox["events"]
        ]
    if provider == "calcom":
        return [datetime.fromisoformat(booking["start"].replace("Z", "+00:00")) for booking in state["bookings"]]
    return [datetime.fromisoformat(event["start_time"].replace("Z", "+00:00")) for event in state["events"]]


def events_at(sandboxes: ServedSandboxes, provider: str, start: datetime) -> int:
    return _starts(sandboxes.sandboxes[provider].state.dump(), provider).count(start)


@pytest.fixture(params=["outlook_calendar", "calcom", "calendly", "google_calendar"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def connected(
    provider: str, make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> CreatedAgent:
    pairs = [
        (connection, secrets)
        for connection, secrets in sandbox_connections(services.providers, sandboxes.base_url, prefer=[provider])
        if connection.capability == "calendar"
    ]
    assert pairs[0][0].provider == provider
    return await make_agent(
        connections=[connection for connection, _ in pairs], secrets={"calendar": dict(pairs[0][1])}
    )


@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_check_hold_book_retry_find_reschedule_and_cancel_through_each_calendar(
    provider: str, transport: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller(transport, connected)

    offered = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id="c-1")).unwrap()
    assert TEN.isoformat() in [slot["start"] for slot in offered["slots"]]
    assert offered["timezone"] == "America/New_York"

    held = (await caller.call("hold_slot", {"start": f"{MONDAY}T10:00"}, call_id="c-1")).unwrap()
    elsewhere = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id="c-2")).unwrap()
    assert TEN.isoformat() not in [slot["start"] for slot in elsewhere["slots"]]

    booking = {"hold_id": held["hold_id"], **JANE}
    first = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-1")).unwrap()
    appointment = first["appointment"]
    assert appointment["start"] == TEN.isoformat()
    same_key = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-1")).unwrap()
    new_key = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-2")).unwrap()
    no_hold = (
        await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **JANE}, idempotency_key="b-3")
    ).unwrap()
    ids = {answer["appointment"]["appointment_id"] for answer in (first, same_key, new_key, no_hold)}
    assert ids == {appointment["appointment_id"]}
    assert events_at(sandboxes, provider, TEN) == 1

    found = (await caller.call("find_appointments", {"caller_phone": JANE["caller_phone"]})).unwrap()
    assert [a["appointment_id"] for a in found["appointments"]] == [appointment["appointment_id"]]

    moved = (
        await caller.call(
            "reschedule_appointment", {"appointment_id": appointment["appointment_id"], "new_start": f"{MONDAY}T14:00"}
        )
    ).unwrap()
    assert moved["appointment"]["start"] == f"{MONDAY}T14:00:00-04:00"
    assert moved["speech"].endswith("Eastern time.")
    again = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id="c-3")).unwrap()
    assert TEN.isoformat() in [slot["start"] for slot in again["slots"]]

    cancelled = (
        await caller.call("cancel_appointment", {"appointment_id": moved["appointment"]["appointment_id"]})
    ).unwrap()
    assert cancelled["appointment"]["status"] == "cancelled"
    assert (await caller.call("find_appointments", {"caller_phone": JANE["caller_phone"]})).unwrap()[
        "appointments"
    ] == []


async def test_a_second_caller_cannot_book_a_slot_held_on_each_calendar(
    provider: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller("http", connected)
    await caller.call("hold_slot", {"start": f"{MONDAY}T10:00"}, call_id="holder")

    refused = await caller.call(
        "book_appointment",
        {"start": f"{MONDAY}T10:00", "caller_name": "Bob Roe", "caller_phone": "+12125550199"},
        call_id="other",
    )

    assert refused.code == "SLOT_UNAVAILABLE"
    assert events_at(sandboxes, provider, TEN) == 0


@pytest.mark.parametrize("provider", ["calendly"])
async def test_a_calendly_account_that_cannot_book_by_api_answers_with_a_booking_link_to_text(
    provider: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller("mcp", connected)
    state = sandboxes.sandboxes[provider].state
    state.booking_enabled = False  # type: ignore[attr-defined]

    refused = await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", **JANE})

    assert refused.code == "PROVIDER_ERROR"
    assert refused.details["booking_url"].startswith("http")
    assert refused.error is not None
    speech = refused.error["speech"]
    assert speech == "I can't book that for you directly, but I can text you a link to book it yourself."
    assert events_at(sandboxes, provider, TEN) == 0
