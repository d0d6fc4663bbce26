"""Slot arithmetic, time parsing, spoken forms and phones: the pure functions under the tools."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.capabilities import BookingRules, candidate_slots, rule_violation
from tool_server.errors import ToolError
from tool_server.phones import normalize_phone
from tool_server.spoken import spoken_clock, spoken_money
from tool_server.timeparse import parse_day, parse_start
from tool_server.tools.views import spread

NEW_YORK = ZoneInfo("America/New_York")
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def day_window(day: date, zone: ZoneInfo = NEW_YORK) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start, start + timedelta(days=1)


def test_opening_hours_stay_on_the_wall_clock_across_the_autumn_dst_change() -> None:
    rules = BookingRules(timezone="America/New_York", weekly_hours={"sun": ["09:00-17:00"]}, horizon_days=3660)
    # Sunday 1 November 2026: clocks go back at 02:00 in New York.
    slots = candidate_slots(rules, *day_window(date(2026, 11, 1)), timedelta(minutes=30), [], LONG_AGO)

    assert len(slots) == 16
    assert slots[0].start.isoformat() == "2026-11-01T09:00:00-05:00"
    assert slots[-1].end.isoformat() == "2026-11-01T17:00:00-05:00"


def test_a_twenty_four_hour_day_is_twenty_three_hours_long_when_clocks_spring_forward() -> None:
    rules = BookingRules(
        timezone="America/New_York", weekly_hours={"sun": ["00:00-24:00"]}, slot_minutes=60, horizon_days=3660
    )
    slots = candidate_slots(rules, *day_window(date(2026, 3, 8)), timedelta(minutes=60), [], LONG_AGO)

    assert len(slots) == 23
    assert all(slot.duration == timedelta(hours=1) for slot in slots)
    # 01:00 EST is followed by 03:00 EDT: one real hour, two on the wall clock.
    assert [slot.start.hour for slot in slots[:3]] == [0, 1, 3]


def test_split_hours_and_closed_dates_are_respected() -> None:
    rules = BookingRules(
        timezone="Europe/Berlin",
        weekly_hours={"mon": ["09:00-12:00", "13:00-15:00"], "tue": ["09:00-10:00"]},
        slot_minutes=60,
        closed_dates=[date(2026, 6, 2)],
        horizon_days=3660,
    )
    zone = ZoneInfo("Europe/Berlin")
    monday = candidate_slots(rules, *day_window(date(2026, 6, 1), zone), timedelta(hours=1), [], LONG_AGO)
    tuesday = candidate_slots(rules, *day_window(date(2026, 6, 2), zone), timedelta(hours=1), [], LONG_AGO)

    assert [slot.start.hour for slot in monday] == [9, 10, 11, 13, 14]
    assert tuesday == []
    assert rule_violation(rules, datetime(2026, 6, 2, 9, tzinfo=zone), timedelta(hours=1), LONG_AGO) == (
        "the business is closed that day"
    )


def test_minimum_notice_and_horizon_bound_the_offered_starts() -> None:
    rules = BookingRules(
        timezone="UTC",
        weekly_hours={d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        slot_minutes=60,
        min_notice_minutes=120,
        horizon_days=1,
    )
    now = datetime(2026, 5, 5, 10, 0, tzinfo=UTC)
    slots = candidate_slots(rules, now, now + timedelta(days=3), timedelta(hours=1), [], now)

    assert slots[0].start == now + timedelta(hours=2)
    assert slots[-1].start == now + timedelta(hours=23)
    assert rule_violation(rules, now + timedelta(hours=1), timedelta(hours=1), now) is not None
    assert rule_violation(rules, now + timedelta(days=2), timedelta(hours=1), now) is not None


def test_a_start_off_the_slot_grid_is_refused() -> None:
    rules = BookingRules(timezone="America/New_York", horizon_days=3660)

    assert rule_violation(rules, datetime(2026, 6, 1, 10, 15, tzinfo=NEW_YORK), timedelta(minutes=30), LONG_AGO)
    assert rule_violation(rules, datetime(2026, 6, 1, 10, 30, tzinfo=NEW_YORK), timedelta(minutes=30), LONG_AGO) is None


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown IANA timezone"):
        BookingRules(timezone="America/Atlantis")
    with pytest.raises(ValueError, match="closes before it opens"):
        BookingRules(timezone="UTC", weekly_hours={"mon": ["17:00-09:00"]})


def test_spread_takes_days_in_turn_and_keeps_time_order() -> None:
    rules = BookingRules(timezone="America/New_York", horizon_days=3660)
    start = datetime(2026, 6, 1, tzinfo=NEW_YORK)
    slots = candidate_slots(rules, start, start + timedelta(days=3), timedelta(minutes=30), [], LONG_AGO)

    chosen = spread(slots, 5, NEW_YORK)

    assert [slot.start.day for slot in chosen] == [1, 1, 2, 2, 3]
    assert chosen == sorted(chosen, key=lambda slot: slot.start)
    assert chosen[0].start.hour == 9
    assert (chosen[1].start.hour, chosen[1].start.minute) == (16, 30)


def test_a_bare_local_time_is_read_in_the_given_zone_and_an_offset_is_kept() -> None:
    assert parse_start("2026-07-01T09:00", NEW_YORK, "start").isoformat() == "2026-07-01T09:00:00-04:00"
    assert parse_start("2026-07-01T09:00Z", NEW_YORK, "start").isoformat() == "2026-07-01T09:00:00+00:00"


def test_an_ambiguous_wall_clock_time_is_read_as_its_first_occurrence() -> None:
    assert parse_start("2026-11-01T01:30", NEW_YORK, "start").isoformat() == "2026-11-01T01:30:00-04:00"


def test_a_nonexistent_wall_clock_time_names_the_field() -> None:
    with pytest.raises(ToolError) as caught:
        parse_start("2026-03-08T02:30", NEW_YORK, "new_start")

    assert caught.value.field == "new_start"


def test_day_words_are_relative_to_today_in_the_zone() -> None:
    late_evening_utc = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)  # still Wednesday 4 March in New York

    assert parse_day("today", NEW_YORK, late_evening_utc, "date") == date(2026, 3, 4)
    assert parse_day("Tomorrow", NEW_YORK, late_evening_utc, "date") == date(2026, 3, 5)
    assert parse_day("wednesday", NEW_YORK, late_evening_utc, "date") == date(2026, 3, 4)
    assert parse_day("tuesday", NEW_YORK, late_evening_utc, "date") == date(2026, 3, 10)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(212) 555-0142", "US", "+12125550142"),
        ("+1 212 555 0142", "US", "+12125550142"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
    ],
)
def test_phones_become_e164_in_the_agents_region(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region, "phone") == e164


@pytest.mark.parametrize("raw", ["555-1234", "12", "call me", "+999 123"])
def test_numbers_that_cannot_be_real_are_validation_errors(raw: str) -> None:
    with pytest.raises(ToolError) as caught:
        normalize_phone(raw, "US", "caller_phone")

    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.field == "caller_phone"


def test_spoken_forms_read_naturally() -> None:
    assert spoken_clock(datetime(2026, 1, 1, 12, 0)) == "noon"
    assert spoken_clock(datetime(2026, 1, 1, 0, 0)) == "midnight"
    assert spoken_clock(datetime(2026, 1, 1, 14, 30)) == "2:30 PM"
    assert spoken_clock(datetime(2026, 1, 1, 9, 0)) == "9 AM"
    assert spoken_money(4900, "usd") == "$49.00"
    assert spoken_money(500, "JPY") == "¥500"
    assert spoken_money(1250, "CHF") == "12.50 CHF"


@pytest.mark.parametrize("seed", range(20))
def test_free_slots_among_thousands_of_overlapping_events_match_a_plain_scan(seed: int) -> None:
    import random

    rng = random.Random(seed)
    zone = ZoneInfo("America/New_York")
    rules = BookingRules(
        timezone="America/New_York",
        weekly_hours={"mon": ["13:00-17:00", "08:00-12:00"], "tue": ["09:00-17:00"], "sat": ["10:00-14:00"]},
        slot_minutes=15,
        buffer_minutes=rng.choice([0, 10, 15]),
        min_notice_minutes=0,
    )
    now = datetime(2026, 3, 1, tzinfo=UTC)
    start, end = datetime(2026, 3, 2, tzinfo=zone), datetime(2026, 3, 16, tzinfo=zone)
    busy = []
    for _ in range(rng.choice([0, 5, 300, 3000])):
        begins = start + timedelta(minutes=5 * rng.randint(0, 14 * 288))
        busy.append((begins, begins + timedelta(minutes=5 * rng.randint(1, 40))))
    duration = timedelta(minutes=rng.choice([15, 30, 60]))
    buffer = timedelta(minutes=rules.buffer_minutes)

    found = candidate_slots(rules, start, end, duration, busy, now)

    everything = candidate_slots(rules, start, end, duration, [], now)
    expected = [
        slot
        for slot in everything
        if not any(slot.start < b_end + buffer and b_start < slot.end + buffer for b_start, b_end in busy)
    ]
    assert found == expected
    assert len(everything) > 0
