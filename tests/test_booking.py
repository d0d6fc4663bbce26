"""book, find, reschedule and cancel appointments over every transport."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from tests.conftest import MONDAY, CallerFactory
from tests.support.callers import ToolCaller
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.store.tables import AppointmentRow

JANE = {"caller_name": "Jane Doe", "caller_phone": "(212) 555-0142", "caller_email": "Jane.Doe@Example.com"}


def booking(start: str = f"{MONDAY}T10:00", **extra: Any) -> dict[str, Any]:
    return {"start": start, **JANE, **extra}


async def booked_count(services: Services, agent_id: str) -> int:
    query = select(func.count()).where(AppointmentRow.agent_id == agent_id, AppointmentRow.status == "booked")
    return int(await services.db.run(lambda session: session.execute(query).scalar_one()))


async def test_check_book_find_cancel_is_one_coherent_flow(caller: ToolCaller) -> None:
    slots = (await caller.call("check_availability", {"date": MONDAY})).unwrap()["slots"]
    chosen = slots[1]["start"]

    booked = (await caller.call("book_appointment", booking(chosen, notes="Cleaning"))).unwrap()
    appointment = booked["appointment"]
    assert appointment["start"] == chosen
    assert appointment["status"] == "booked"
    assert appointment["caller_phone"] == "+12125550142"
    assert appointment["caller_email"] == "jane.doe@example.com"
    assert booked["speech"] == f"You're booked for {appointment['spoken']} Eastern time."

    found = (await caller.call("find_appointments", {"caller_phone": "212-555-0142"})).unwrap()
    assert [a["appointment_id"] for a in found["appointments"]] == [appointment["appointment_id"]]

    again = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10})).unwrap()
    assert chosen not in [slot["start"] for slot in again["slots"]]

    cancelled = (await caller.call("cancel_appointment", {"appointment_id": appointment["appointment_id"]})).unwrap()
    assert cancelled["appointment"]["status"] == "cancelled"
    assert cancelled["speech"] == f"Your appointment on {appointment['spoken']} Eastern time is cancelled."
    assert (await caller.call("find_appointments", {"caller_email": "jane.doe@example.com"})).unwrap()[
        "appointments"
    ] == []


async def test_a_bare_local_time_is_read_in_the_business_zone(caller: ToolCaller) -> None:
    appointment = (await caller.call("book_appointment", booking(f"{MONDAY}T10:00"))).unwrap()["appointment"]
    assert appointment["start"] == "2026-03-09T10:00:00-04:00"


async def test_a_time_with_an_offset_is_kept_and_shown_in_the_named_zone(caller: ToolCaller) -> None:
    result = (
        await caller.call("book_appointment", booking("2026-03-09T14:00:00+00:00", timezone="Europe/London"))
    ).unwrap()
    assert result["appointment"]["start"] == "2026-03-09T14:00:00+00:00"
    assert result["appointment"]["timezone"] == "Europe/London"
    assert result["speech"].endswith("UK time.")


async def test_booking_the_same_slot_twice_returns_the_first_booking(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    first = (await caller.call("book_appointment", booking())).unwrap()
    second = (await caller.call("book_appointment", booking())).unwrap()

    assert second["appointment"]["appointment_id"] == first["appointment"]["appointment_id"]
    assert await booked_count(services, agent.agent.id) == 1


async def test_twenty_concurrent_identical_bookings_make_exactly_one_appointment(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    outcomes = await asyncio.gather(*(caller.call("book_appointment", booking()) for _ in range(20)))

    ids = {outcome.unwrap()["appointment"]["appointment_id"] for outcome in outcomes}
    assert len(ids) == 1
    assert await booked_count(services, agent.agent.id) == 1


async def test_concurrent_bookings_under_one_call_id_make_exactly_one_appointment(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    outcomes = await asyncio.gather(
        *(caller.call("book_appointment", booking(), call_id="call-123") for _ in range(20))
    )

    assert len({outcome.unwrap()["appointment"]["appointment_id"] for outcome in outcomes}) == 1
    assert await booked_count(services, agent.agent.id) == 1


async def test_two_callers_racing_for_one_slot_get_one_booking_and_one_slot_unavailable(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    bob = {"start": f"{MONDAY}T10:00", "caller_name": "Bob Roe", "caller_phone": "+12125550199"}
    outcomes = await asyncio.gather(caller.call("book_appointment", booking()), caller.call("book_appointment", bob))

    assert sorted(str(outcome.code) for outcome in outcomes) == ["None", "SLOT_UNAVAILABLE"]
    refused = next(outcome for outcome in outcomes if not outcome.ok)
    assert refused.error is not None
    alternatives = refused.error["details"]["alternatives"]
    assert [a["start"] for a in alternatives] == [
        "2026-03-09T09:00:00-04:00",
        "2026-03-09T09:30:00-04:00",
        "2026-03-09T10:30:00-04:00",
    ]
    assert refused.error["speech"].startswith("Sorry, Monday, March 9 at 10 AM isn't available. I could do 9 AM")
    assert refused.status in (None, 409)
    assert await booked_count(services, agent.agent.id) == 1


async def test_many_callers_racing_for_one_slot_leave_exactly_one_booking(
    make_caller: CallerFactory, agent: CreatedAgent, services: Services
) -> None:
    http = await make_caller("http", agent)
    callers = [
        {"start": f"{MONDAY}T15:00", "caller_name": f"Caller {n}", "caller_phone": f"+1212555{n:04d}"}
        for n in range(100, 110)
    ]
    outcomes = await asyncio.gather(*(http.call("book_appointment", args) for args in callers))

    assert sum(outcome.ok for outcome in outcomes) == 1
    assert {outcome.code for outcome in outcomes if not outcome.ok} == {"SLOT_UNAVAILABLE"}
    assert await booked_count(services, agent.agent.id) == 1


async def test_a_time_outside_business_hours_is_slot_unavailable_with_alternatives(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", booking(f"{MONDAY}T20:00"))

    assert outcome.code == "SLOT_UNAVAILABLE"
    assert outcome.details["alternatives"]


async def test_a_time_in_the_past_is_a_validation_error_naming_start(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", booking("2026-03-02T10:00"))

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "start"


async def test_a_wall_clock_time_skipped_by_daylight_saving_is_refused(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", booking("2026-03-08T02:30"))

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "start"
    assert "daylight saving" in (outcome.error or {})["message"]


async def test_an_invalid_phone_is_a_validation_error_naming_caller_phone(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", booking(caller_phone="555-12"))

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "caller_phone"


async def test_an_invalid_email_is_a_validation_error_naming_caller_email(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", booking(caller_email="jane at example"))

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "caller_email"


async def test_a_booking_needs_a_phone_or_an_email(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Jane"})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "caller_phone"


async def test_missing_fields_and_wrong_types_are_validation_errors_listing_each_field(caller: ToolCaller) -> None:
    outcome = await caller.call("book_appointment", {"start": 10, "duration_minutes": "long", "req": {}})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.error is not None
    fields = {problem["field"] for problem in outcome.error["details"]["errors"]}
    assert fields == {"start", "duration_minutes", "caller_name", "req"}


async def test_rescheduling_moves_the_appointment_and_frees_the_old_slot(caller: ToolCaller) -> None:
    appointment = (await caller.call("book_appointment", booking())).unwrap()["appointment"]

    moved = (
        await caller.call(
            "reschedule_appointment", {"appointment_id": appointment["appointment_id"], "new_start": f"{MONDAY}T14:30"}
        )
    ).unwrap()

    assert moved["appointment"]["appointment_id"] == appointment["appointment_id"]
    assert moved["appointment"]["start"] == "2026-03-09T14:30:00-04:00"
    assert moved["appointment"]["end"] == "2026-03-09T15:00:00-04:00"
    bob = {"start": f"{MONDAY}T10:00", "caller_name": "Bob", "caller_phone": "+12125550199"}
    assert (await caller.call("book_appointment", bob)).ok
    carol = {"start": f"{MONDAY}T14:30", "caller_name": "Carol", "caller_phone": "+12125550188"}
    assert (await caller.call("book_appointment", carol)).code == "SLOT_UNAVAILABLE"


async def test_rescheduling_onto_a_taken_slot_is_slot_unavailable(caller: ToolCaller) -> None:
    mine = (await caller.call("book_appointment", booking())).unwrap()["appointment"]
    other = {"start": f"{MONDAY}T11:00", "caller_name": "Bob", "caller_phone": "+12125550199"}
    (await caller.call("book_appointment", other)).unwrap()

    outcome = await caller.call(
        "reschedule_appointment", {"appointment_id": mine["appointment_id"], "new_start": f"{MONDAY}T11:00"}
    )

    assert outcome.code == "SLOT_UNAVAILABLE"


async def test_cancelling_twice_succeeds_and_changes_nothing(caller: ToolCaller) -> None:
    appointment = (await caller.call("book_appointment", booking())).unwrap()["appointment"]
    first = (await caller.call("cancel_appointment", {"appointment_id": appointment["appointment_id"]})).unwrap()
    second = (await caller.call("cancel_appointment", {"appointment_id": appointment["appointment_id"]})).unwrap()

    assert first["appointment"] == second["appointment"]
    assert second["appointment"]["status"] == "cancelled"


async def test_an_unknown_appointment_id_is_not_found(caller: ToolCaller) -> None:
    outcome = await caller.call("cancel_appointment", {"appointment_id": "apt_doesnotexist"})

    assert outcome.code == "NOT_FOUND"
    assert outcome.status in (None, 404)


async def test_a_buffer_keeps_time_clear_around_bookings(make_agent: Any, make_caller: CallerFactory) -> None:
    from tool_server.agents import Connection

    buffered = await make_agent(
        connections=[
            Connection(capability="calendar", provider="local_calendar", settings={"buffer_minutes": 15}),
            Connection(capability="crm", provider="contact_book"),
        ]
    )
    caller = await make_caller("direct", buffered)
    (await caller.call("book_appointment", booking())).unwrap()  # 10:00-10:30

    def someone(start: str, n: int) -> dict[str, Any]:
        return {"start": f"{MONDAY}T{start}", "caller_name": f"Caller {n}", "caller_phone": f"+1212555{n:04d}"}

    # 9:30-10:00 and 10:30-11:00 leave less than 15 minutes; 9:00 and 11:00 leave enough.
    assert (await caller.call("book_appointment", someone("09:30", 101))).code == "SLOT_UNAVAILABLE"
    assert (await caller.call("book_appointment", someone("10:30", 102))).code == "SLOT_UNAVAILABLE"
    assert (await caller.call("book_appointment", someone("09:00", 103))).ok
    assert (await caller.call("book_appointment", someone("11:00", 104))).ok


async def test_an_appointment_across_the_spring_forward_lasts_its_real_duration(
    make_agent: Any, make_caller: CallerFactory
) -> None:
    from tool_server.agents import Connection

    night_owl = await make_agent(
        connections=[
            Connection(
                capability="calendar",
                provider="local_calendar",
                settings={"weekly_hours": {"sun": ["00:00-24:00"]}, "slot_minutes": 30},
            )
        ]
    )
    caller = await make_caller("direct", night_owl)

    booked = (await caller.call("book_appointment", booking("2026-03-08T01:30", duration_minutes=60))).unwrap()

    # 01:30 EST plus one real hour is 03:30 EDT: the clocks skip 02:00-03:00.
    assert booked["appointment"]["start"] == "2026-03-08T01:30:00-05:00"
    assert booked["appointment"]["end"] == "2026-03-08T03:30:00-04:00"
    moved = (
        await caller.call(
            "reschedule_appointment",
            {"appointment_id": booked["appointment"]["appointment_id"], "new_start": "2026-03-08T01:00"},
        )
    ).unwrap()
    assert moved["appointment"]["end"] == "2026-03-08T03:00:00-04:00"
