"""Every calendar provider behaves the same: free slots, booking, rescheduling, cancelling, finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.capabilities import (
    BookingRequest,
    CalendarProvider,
    NotFoundError,
    SlotUnavailableError,
)
from tests.conftest import AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services

NEW_YORK = ZoneInfo("America/New_York")
# Monday 9 March 2026 (after the US spring-forward); the test clock says Wednesday 4 March.
MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=NEW_YORK)


@pytest.fixture(params=providers_of("calendar"))
async def calendar(
    request: pytest.FixtureRequest, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes
) -> CalendarProvider:
    created = await agent_with(make_agent, sandboxes, "calendar", request.param)
    provider = build(services, created, "calendar")
    assert isinstance(provider, CalendarProvider)
    return provider


def request_for(start: datetime, phone: str = "+12125550142", key: str | None = None) -> BookingRequest:
    return BookingRequest(
        start=start,
        end=start.astimezone(UTC) + timedelta(minutes=30),
        attendee_name="Jane Doe",
        attendee_phone=phone,
        attendee_email=None,
        notes="Cleaning",
        idempotency_key=key,
    )


async def free_starts(calendar: CalendarProvider) -> list[datetime]:
    day = datetime(2026, 3, 9, tzinfo=NEW_YORK)
    return [slot.start for slot in await calendar.free_slots(day, day + timedelta(days=1), timedelta(minutes=30))]


async def test_free_slots_follow_business_hours_in_the_business_zone(calendar: CalendarProvider) -> None:
    starts = await free_starts(calendar)

    assert len(starts) == 16
    assert starts[0] == datetime(2026, 3, 9, 9, 0, tzinfo=NEW_YORK)
    assert starts[0].utcoffset() == timedelta(hours=-4)
    assert starts[-1] == datetime(2026, 3, 9, 16, 30, tzinfo=NEW_YORK)


async def test_a_booking_takes_the_slot_and_keeps_the_callers_details(calendar: CalendarProvider) -> None:
    appointment = await calendar.book(request_for(MONDAY_10, key="k-1"))

    assert appointment.start == MONDAY_10
    assert appointment.end - appointment.start == timedelta(minutes=30)
    assert appointment.status == "booked"
    assert appointment.attendee_name == "Jane Doe"
    assert appointment.attendee_phone == "+12125550142"
    assert MONDAY_10 not in await free_starts(calendar)
    assert (await calendar.get(appointment.id)).id == appointment.id


async def test_the_same_booking_retried_returns_the_first_appointment(calendar: CalendarProvider) -> None:
    first = await calendar.book(request_for(MONDAY_10, key="k-1"))
    again = await calendar.book(request_for(MONDAY_10, key="k-1"))
    same_caller = await calendar.book(request_for(MONDAY_10, key="k-2"))

    assert again.id == first.id
    assert same_caller.id == first.id
    assert [
        a.id for a in await calendar.find(phone="+12125550142", email=None, since=MONDAY_10 - timedelta(days=9))
    ] == [first.id]


async def test_another_caller_cannot_take_a_booked_slot(calendar: CalendarProvider) -> None:
    await calendar.book(request_for(MONDAY_10, key="k-1"))

    with pytest.raises(SlotUnavailableError):
        await calendar.book(request_for(MONDAY_10, phone="+12125550199", key="k-2"))


async def test_a_time_outside_business_hours_cannot_be_booked(calendar: CalendarProvider) -> None:
    with pytest.raises(SlotUnavailableError):
        await calendar.book(request_for(datetime(2026, 3, 9, 20, 0, tzinfo=NEW_YORK), key="k-late"))


async def test_rescheduling_moves_the_appointment_and_frees_the_old_slot(calendar: CalendarProvider) -> None:
    appointment = await calendar.book(request_for(MONDAY_10, key="k-1"))
    later = MONDAY_10 + timedelta(hours=4)

    moved = await calendar.reschedule(appointment.id, later, later.astimezone(UTC) + timedelta(minutes=30))

    assert moved.id == appointment.id
    assert moved.start == later
    starts = await free_starts(calendar)
    assert MONDAY_10 in starts
    assert later not in starts


async def test_cancelling_frees_the_slot_and_cancelling_again_is_harmless(calendar: CalendarProvider) -> None:
    appointment = await calendar.book(request_for(MONDAY_10, key="k-1"))

    cancelled = await calendar.cancel(appointment.id)
    again = await calendar.cancel(appointment.id)

    assert cancelled.status == "cancelled"
    assert again.status == "cancelled"
    assert MONDAY_10 in await free_starts(calendar)
    assert await calendar.find(phone="+12125550142", email=None, since=MONDAY_10 - timedelta(days=9)) == []


async def test_an_unknown_appointment_is_not_found(calendar: CalendarProvider) -> None:
    with pytest.raises(NotFoundError):
        await calendar.get("does-not-exist-123")


async def test_find_matches_by_phone_or_email_and_ignores_others(calendar: CalendarProvider) -> None:
    mine = await calendar.book(
        BookingRequest(
            start=MONDAY_10,
            end=MONDAY_10.astimezone(UTC) + timedelta(minutes=30),
            attendee_name="Jane Doe",
            attendee_phone="+12125550142",
            attendee_email="jane@example.com",
            idempotency_key="k-mine",
        )
    )
    await calendar.book(request_for(MONDAY_10 + timedelta(hours=1), phone="+12125550199", key="k-other"))
    since = MONDAY_10 - timedelta(days=9)

    assert [a.id for a in await calendar.find(phone=None, email="jane@example.com", since=since)] == [mine.id]
    assert [a.id for a in await calendar.find(phone="+12125550142", email=None, since=since)] == [mine.id]
