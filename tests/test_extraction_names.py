"""The fallback reads the caller's name from how they introduced themselves, and nothing else."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tool_server.calls.models import CallRecord, Turn
from tool_server.postcall.extraction import fallback

TODAY = date(2026, 3, 4)
ZONE = "America/New_York"


def read_name(transcript: list[Turn], **fields: Any) -> str | None:
    record = CallRecord(call_id="call-1", platform="vapi", transcript=transcript, **fields)
    return fallback(record, today=TODAY, business_timezone=ZONE).caller_name


def caller_name(*lines: str, **fields: Any) -> str | None:
    """The name the fallback reads from a call in which the caller said `lines`."""
    return read_name([Turn(speaker="caller", text=line) for line in lines], **fields)


NAMED = [
    ("My name is Dana Reyes.", "Dana Reyes"),
    ("my name's Dana", "Dana"),
    ("Hi, my full name is Dana Maria Reyes, thanks.", "Dana Maria Reyes"),
    ("Hi, this is Maria Garcia", "Maria Garcia"),
    ("Hi this is Maria Garcia I'm calling about my cleaning", "Maria Garcia"),
    ("Yes, this is José Núñez calling about my appointment", "José Núñez"),
    ("this is Sean O'Brien returning your call", "Sean O'Brien"),
    ("This is Jean-Luc Picard.", "Jean-Luc Picard"),
    ("This is Dr. Amara Okafor from the clinic next door", "Dr. Amara Okafor"),
    ("This is June Carter", "June Carter"),
    ("This is Maria Garcia Tuesday works for me", "Maria Garcia"),
    ("I'm Maria.", "Maria"),
    ("Hello, I'm Maria, I'd like to book a cleaning", "Maria"),
    ("I'm Maria and I need to move my appointment", "Maria"),
    ("Hi I'm Maria I need a cleaning", "Maria"),
    ("I am Łukasz Żółć", "Łukasz Żółć"),
    ("I am Zoë calling from upstairs", "Zoë"),
    ("It's Maria.", "Maria"),
    ("Hi, it's Maria from accounting", "Maria"),
    ("It is Dana again", "Dana"),
    ("It's Maria Garcia who called yesterday", "Maria Garcia"),
    ("It’s Siobhán", "Siobhán"),
    ("Maria Garcia here.", "Maria Garcia"),
    ("Hi, Maria here, I wanted to ask about parking", "Maria"),
    ("Hello, Maria Garcia speaking", "Maria Garcia"),
    ("Yes Dr. Smith here", "Dr. Smith"),
    ("Good morning. Mary-Kate Olsen here", "Mary-Kate Olsen"),
    ("It's Tuesday This is Maria", "Maria"),
    ("I'm Looking for the office. My name is Dana Reyes", "Dana Reyes"),
    ("I'm Sorry, this is Dana", "Dana"),
]


@pytest.mark.parametrize(("line", "name"), NAMED)
def test_the_fallback_reads_the_name_a_caller_introduces_themselves_with(line: str, name: str) -> None:
    assert caller_name(line) == name


NOT_NAMED = [
    "this is urgent",
    "This is urgent, please call me back.",
    "this is the front desk",
    "This is The front desk",
    "This is Front Desk calling",
    "this is for Maria Garcia",
    "Is this Maria?",
    "I'm calling about my appointment",
    "I'm Looking for a dentist near the station",
    "I'm Interested in whitening",
    "I'm Sorry",
    "I am Available Tuesday",
    "I'm with Acme",
    "I'm OK thanks",
    "It's Tuesday",
    "It's Tuesday at 2 pm I think",
    "It's June",
    "It is May 5th",
    "It's Important to me",
    "it's maria",
    "my name is maria garcia",
    "This is Maria's husband",
    "It's Dana's appointment I'm asking about",
    "This is Dr",
    "this is OK",
    "Everyone here is so helpful",
    "Hello? Anyone here?",
    "We live in Boston here",
    "Thanks, bye.",
    "Sure, it's Dana.Reyes@Example.com",
    "It's Maria@example.com",
]


@pytest.mark.parametrize("line", NOT_NAMED)
def test_the_fallback_reads_no_name_from_words_that_only_look_like_an_introduction(line: str) -> None:
    assert caller_name(line) is None


def test_my_name_is_wins_over_an_earlier_this_is_and_i_am() -> None:
    assert caller_name("I'm Dana.", "This is Dana calling back.", "Sorry, my name is Dana Reyes.") == "Dana Reyes"


def test_this_is_wins_over_an_earlier_im() -> None:
    assert caller_name("Hi, I'm Dana.", "Oh wait, this is Maria Garcia.") == "Maria Garcia"


def test_among_equally_strong_introductions_the_first_wins() -> None:
    assert caller_name("This is Dana.", "This is Maria, her sister.") == "Dana"


def test_a_name_said_in_a_later_turn_is_found() -> None:
    assert caller_name("Hello?", "Yes, I'd like a cleaning.", "Sure, it's Dana Reyes.") == "Dana Reyes"


def test_only_the_callers_own_turns_are_read() -> None:
    name = read_name(
        [
            Turn(speaker="agent", text="Hi, this is Sam from Smile Dental. My name is Sam Lee."),
            Turn(speaker="tool", text="My name is Booking Bot"),
            Turn(speaker="other", text="This is Maria Garcia"),
            Turn(speaker="caller", text="Yes, I'd like to book."),
        ]
    )

    assert name is None


def test_a_name_never_runs_into_the_next_turn() -> None:
    assert caller_name("This is Maria", "Garcia Street is where I live") == "Maria"


def test_the_name_the_platform_reported_wins() -> None:
    assert caller_name("This is Maria Garcia", caller_name="M. Garcia") == "M. Garcia"


def test_a_name_is_at_most_three_words() -> None:
    assert caller_name("My name is Ana Maria Garcia Lopez") == "Ana Maria Garcia"
