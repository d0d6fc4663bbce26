"""Hostile transcripts: the fallback reads a megabyte of anything in linear time, off the event loop."""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import tool_server.postcall.extraction as extraction
from tool_server.calls.models import CallRecord, Turn
from tool_server.postcall.extraction import Extraction, ExtractionSettings, extract, fallback

TODAY = date(2026, 3, 4)
ZONE = "America/New_York"
MEGABYTE = 1_000_000
# CPU seconds of the reading thread, so a busy machine does not make the test flaky. The fallback
# takes about 0.01–0.1 s on each of these; with backtracking regexes several took over a minute.
BUDGET_SECONDS = 0.5


def repeated(unit: str) -> str:
    return (unit * (MEGABYTE // len(unit) + 1))[:MEGABYTE]


ONE_LINE = {
    "letters": "a" * MEGABYTE,
    "digits": "1" * MEGABYTE,
    "letters and spaces": repeated("a "),
    "capitals and spaces": repeated("Aa "),
    "a dotted address without its @": repeated("a.") + "@",
    "addresses": repeated("dana@example.com "),
    "my name is": repeated("my name is "),
    "I'm Looking for": repeated("I'm Looking for "),
    "introductions hiding in rejected names": repeated("It's Tuesday This "),
    "capitalised words": repeated("It's Aaaa Bbbb Cccc Dddd "),
    "negated keywords": repeated("don't cancel "),
    "days and times": repeated("Tuesday at 2 pm "),
    "bare hours": repeated("at 1"),
    "voicemail phrases": repeated("not available to take your call "),
    "curly apostrophes": repeated("I’m ’’ "),
    "accented capitals": "É" * (MEGABYTE // 2),
}


@pytest.mark.parametrize("text", ONE_LINE.values(), ids=ONE_LINE.keys())
def test_a_one_megabyte_caller_turn_is_read_in_well_under_a_second(text: str) -> None:
    found, seconds = timed_fallback([Turn(speaker="caller", text=text)])

    assert seconds < BUDGET_SECONDS
    assert found.source == "fallback"


MANY_TURNS = {
    "one-letter turns": "a",
    "introductions": "Hi, I'm Maria, this is Maria Garcia here",
    "rejected introductions": "It's Tuesday This I'm Looking for",
    "two days and a time": "Tuesday or Wednesday at 2",
    "keywords": "don't cancel, call me back",
}


@pytest.mark.parametrize("line", MANY_TURNS.values(), ids=MANY_TURNS.keys())
def test_a_megabyte_of_short_caller_turns_is_read_in_well_under_a_second(line: str) -> None:
    # As many turns as a megabyte of "User: …" lines holds (one object, listed again and again).
    turns = [Turn(speaker="caller", text=line)] * (MEGABYTE // (len(line) + len("User: \n")))

    found, seconds = timed_fallback(turns)

    assert seconds < BUDGET_SECONDS
    assert found.source == "fallback"


def test_a_megabyte_of_noise_hides_nothing_said_before_it() -> None:
    turns = [
        Turn(speaker="caller", text="Hi, this is Maria Garcia, maria@example.com. Could I come Friday at 10:30?"),
        Turn(speaker="caller", text=repeated("a ")),
    ]

    found, _ = timed_fallback(turns)

    assert (found.caller_name, found.caller_email) == ("Maria Garcia", "maria@example.com")
    assert found.requested_appointment is not None
    assert (found.requested_appointment.date, found.requested_appointment.time) == ("2026-03-06", "10:30")


def test_repeating_a_keyword_a_thousand_times_after_negating_it_does_not_make_it_said() -> None:
    found, _ = timed_fallback([Turn(speaker="caller", text=repeated("I don't want to cancel. "))])

    assert found.outcome == "unknown"


async def test_extract_reads_the_transcript_in_a_worker_thread_not_on_the_event_loop() -> None:
    executor = RecordingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    record = CallRecord(
        call_id="call-1", platform="vapi", transcript=[Turn(speaker="caller", text="Please call me back.")]
    )
    try:
        found = await extract(record, ExtractionSettings(), today=TODAY, business_timezone=ZONE)
    finally:
        executor.shutdown(wait=True)

    assert found.outcome == "callback_requested"
    assert executor.submitted == 1


def test_the_extraction_package_has_no_backtracking_regular_expressions() -> None:
    package = Path(extraction.__file__).parent
    importers = sorted(
        path.name for path in package.glob("*.py") if "re" in imported_modules(path.read_text(encoding="utf-8"))
    )

    assert len(list(package.glob("*.py"))) > 1
    assert importers == []


# --- helpers -------------------------------------------------------------------------------------


def timed_fallback(turns: list[Turn]) -> tuple[Extraction, float]:
    record = CallRecord(call_id="call-1", platform="vapi", transcript=turns)
    started = time.thread_time()
    found = fallback(record, today=TODAY, business_timezone=ZONE)
    return found, time.thread_time() - started


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
    return modules


class RecordingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts what it is given (asyncio.to_thread uses the loop's default)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)
