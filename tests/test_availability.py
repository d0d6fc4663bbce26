"""check_availability over every transport."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import MONDAY
from tests.support.callers import ToolCaller


async def test_check_availability_returns_a_handful_of_spread_slots_with_offsets_and_spoken_forms(
    caller: ToolCaller,
) -> None:
    result = (await caller.call("check_availability", {"date": MONDAY})).unwrap()

    slots = result["slots"]
    assert len(slots) == 5
    starts = [datetime.fromisoformat(slot["start"]) for slot in slots]
    assert starts == sorted(starts)
    # Monday 9 March is after the US spring-forward: New York is at -04:00.
    assert all(slot["start"].endswith("-04:00") for slot in slots)
    assert (starts[0].hour, starts[0].minute) == (9, 0)
    assert (starts[-1].hour, starts[-1].minute) == (16, 30)
    assert slots[0]["spoken"] == "Monday, March 9 at 9 AM"
    assert result["timezone"] == "America/New_York"
    assert result["speech"].startswith("I have Monday, March 9 at 9 AM")
    assert result["speech"].endswith("Eastern time.")


async def test_slots_are_given_in_the_timezone_the_caller_names(caller: ToolCaller) -> None:
    result = (await caller.call("check_availability", {"date": MONDAY, "timezone": "Europe/London"})).unwrap()

    assert result["timezone"] == "Europe/London"
    first = result["slots"][0]
    # 9 AM in New York (EDT) is 1 PM in London (still GMT on 9 March).
    assert first["start"] == "2026-03-09T13:00:00+00:00"
    assert first["spoken"] == "Monday, March 9 at 1 PM"
    assert "UK time" in result["speech"]


async def test_a_closed_day_offers_the_next_openings_instead(caller: ToolCaller) -> None:
    result = (await caller.call("check_availability", {"date": "2026-03-07"})).unwrap()  # a Saturday

    assert result["slots"] == []
    assert result["next_available"][0]["start"] == "2026-03-09T09:00:00-04:00"
    assert result["speech"].startswith("I don't have anything open on Saturday, March 7.")


async def test_without_a_date_the_coming_week_is_searched_from_now(caller: ToolCaller) -> None:
    result = (await caller.call("check_availability", {"max_slots": 10})).unwrap()

    assert (result["date_from"], result["date_to"]) == ("2026-03-04", "2026-03-10")
    # Now is 10:00; an hour's notice means the first slot today is 11:00.
    assert result["slots"][0]["start"] == "2026-03-04T11:00:00-05:00"
    assert len({slot["start"][:10] for slot in result["slots"]}) == 5  # spread over the five open days


async def test_relative_day_words_are_read_in_the_business_zone(caller: ToolCaller) -> None:
    result = (await caller.call("check_availability", {"date": "tomorrow"})).unwrap()
    assert result["date_from"] == "2026-03-05"
    result = (await caller.call("check_availability", {"date": "monday"})).unwrap()
    assert result["date_from"] == MONDAY


async def test_a_date_in_the_past_is_a_validation_error_naming_the_date(caller: ToolCaller) -> None:
    outcome = await caller.call("check_availability", {"date": "2026-03-01"})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "date"
    assert outcome.status in (None, 400)


async def test_an_unknown_timezone_is_a_validation_error_naming_the_timezone(caller: ToolCaller) -> None:
    outcome = await caller.call("check_availability", {"date": MONDAY, "timezone": "Mars/Olympus_Mons"})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "timezone"


async def test_a_date_that_is_not_a_date_is_a_validation_error(caller: ToolCaller) -> None:
    outcome = await caller.call("check_availability", {"date": "next blue moon"})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "date"


async def test_a_range_longer_than_a_month_is_refused(caller: ToolCaller) -> None:
    outcome = await caller.call("check_availability", {"date": MONDAY, "end_date": "2026-05-01"})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "end_date"


async def test_a_longer_duration_needs_that_much_free_time(caller: ToolCaller) -> None:
    result = (
        await caller.call("check_availability", {"date": MONDAY, "duration_minutes": 120, "max_slots": 10})
    ).unwrap()

    last = datetime.fromisoformat(result["slots"][-1]["end"])
    assert (last.hour, last.minute) == (17, 0)
    assert all(
        (datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"])).seconds == 7200 for s in result["slots"]
    )


async def test_a_caller_in_the_pacific_asking_for_the_morning_gets_pacific_morning_slots(caller: ToolCaller) -> None:
    # The business opens 9-5 Eastern: 6 AM to 2 PM Pacific, so a Pacific morning is 6-11:30 AM.
    result = (
        await caller.call(
            "check_availability",
            {"date": MONDAY, "time_of_day": "morning", "timezone": "America/Los_Angeles", "max_slots": 10},
        )
    ).unwrap()

    starts = [datetime.fromisoformat(slot["start"]) for slot in result["slots"]]
    assert starts
    assert all(start.utcoffset() == datetime.fromisoformat("2026-03-09T00:00-07:00").utcoffset() for start in starts)
    assert min(start.hour for start in starts) == 6
    assert max(start.hour for start in starts) == 11
    assert result["speech"].endswith("Pacific time.")


async def test_an_evening_with_nothing_open_says_so_and_offers_the_next_evening_openings(caller: ToolCaller) -> None:
    # Closing at 5 PM Eastern, the business has no Eastern evenings at all; London evenings are 5-9 PM.
    result = (
        await caller.call("check_availability", {"date": MONDAY, "time_of_day": "evening", "timezone": "Europe/London"})
    ).unwrap()

    assert result["slots"]
    assert all(17 <= datetime.fromisoformat(slot["start"]).hour < 21 for slot in result["slots"])
    nothing = (await caller.call("check_availability", {"date": MONDAY, "time_of_day": "evening"})).unwrap()
    assert nothing["slots"] == []
    assert nothing["next_available"] == []
    assert nothing["speech"] == "I don't have any evening openings in the next few weeks."
