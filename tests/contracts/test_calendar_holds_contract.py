"""Holds behave the same over every calendar provider: hidden from others, booked by their holder.

The server keeps holds in its own database (`tool_server.slots`), in front of whichever provider
the agent connected; a provider that can reserve slots itself (Cal.com) reserves there too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.capabilities import BookingRequest, CalendarProvider, SlotReservations, SlotUnavailableError
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services
from tool_server.slots.guard import GuardedCalendar
from tool_server.slots.store import Claimant, SlotHolds

NEW_YORK = ZoneInfo("America/New_York")
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=NEW_YORK)
HALF_HOUR = timedelta(minutes=30)


class Calendars:
    """The same provider as seen by two different callers."""

    def __init__(self, provider: CalendarProvider, holds: SlotHolds, agent_id: str) -> None:
        self.provider = provider
        self.first = GuardedCalendar(provider, holds, agent_id, Claimant(call_id="call-1", phone="+12125550142"), 5)
        self.second = GuardedCalendar(provider, holds, agent_id, Claimant(call_id="call-2", phone="+12125550199"), 5)


async def _calendars(name: str, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes) -> Calendars:
    created = await agent_with(make_agent, sandboxes, "calendar", name)
    provider = build(services, created, "calendar")
    assert isinstance(provider, CalendarProvider)
    return Calendars(provider, SlotHolds(services.db, services.clock), created.agent.id)


@pytest.fixture(params=providers_of("calendar"))
async def calendars(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> Calendars:
    return await _calendars(request.param, services, make_agent, sandboxes)


# The providers whose vendor reserves slots itself (SlotReservations).
@pytest.fixture(params=["calcom"])
async def reserving(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> Calendars:
    found = await _calendars(request.param, services, make_agent, sandboxes)
    assert isinstance(found.provider, SlotReservations)
    return found


def booking(phone: str, name: str) -> BookingRequest:
    return BookingRequest(
        start=MONDAY_10, end=MONDAY_10.astimezone(UTC) + HALF_HOUR, attendee_name=name, attendee_phone=phone
    )


async def starts(calendar: GuardedCalendar) -> list[datetime]:
    day = datetime(2026, 3, 9, tzinfo=NEW_YORK)
    return [slot.start for slot in await calendar.free_slots(day, day + timedelta(days=1), HALF_HOUR)]


async def test_a_held_slot_is_hidden_from_others_and_refused_to_them(calendars: Calendars) -> None:
    await calendars.first.hold(MONDAY_10, HALF_HOUR)

    assert MONDAY_10 not in await starts(calendars.second)
    assert MONDAY_10 in await starts(calendars.first)
    with pytest.raises(SlotUnavailableError):
        await calendars.second.book(booking("+12125550199", "Bob Roe"))
    with pytest.raises(SlotUnavailableError):
        await calendars.second.hold(MONDAY_10, HALF_HOUR)


async def test_the_holder_books_the_held_slot_once(calendars: Calendars) -> None:
    hold = await calendars.first.hold(MONDAY_10, HALF_HOUR)

    appointment = await calendars.first.book(booking("+12125550142", "Jane Doe"), hold)
    again = await calendars.first.book(booking("+12125550142", "Jane Doe"))

    assert appointment.start == MONDAY_10
    assert again.id == appointment.id
    found = await calendars.provider.find(phone="+12125550142", email=None, since=MONDAY_10 - timedelta(days=1))
    assert [a.id for a in found] == [appointment.id]
    assert MONDAY_10 not in await starts(calendars.second)


async def test_a_released_hold_frees_the_slot_for_others(calendars: Calendars) -> None:
    hold = await calendars.first.hold(MONDAY_10, HALF_HOUR)

    await calendars.first.release(hold.id)
    await calendars.first.release(hold.id)

    assert MONDAY_10 in await starts(calendars.second)
    booked = await calendars.second.book(booking("+12125550199", "Bob Roe"))
    assert booked.start == MONDAY_10


async def test_a_provider_that_reserves_slots_reserves_the_held_one_and_lets_it_go(reserving: Calendars) -> None:
    calendars = reserving
    hold = await calendars.first.hold(MONDAY_10, HALF_HOUR)
    assert hold.reservation_id

    assert MONDAY_10 not in [
        slot.start
        for slot in await calendars.provider.free_slots(
            datetime(2026, 3, 9, tzinfo=NEW_YORK), datetime(2026, 3, 10, tzinfo=NEW_YORK), HALF_HOUR
        )
    ]
    await calendars.first.release(hold.id)
    assert MONDAY_10 in [
        slot.start
        for slot in await calendars.provider.free_slots(
            datetime(2026, 3, 9, tzinfo=NEW_YORK), datetime(2026, 3, 10, tzinfo=NEW_YORK), HALF_HOUR
        )
    ]


async def test_the_same_caller_holding_again_gets_the_same_hold(calendars: Calendars) -> None:
    first = await calendars.first.hold(MONDAY_10, HALF_HOUR)

    again = await calendars.first.hold(MONDAY_10, HALF_HOUR)

    assert again.id == first.id
