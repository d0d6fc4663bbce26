"""Post-call extraction: the model's structured answer through the official SDK, and the deterministic fallback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.fake_openai import FakeOpenAI, Reply, serve_fake_openai
from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.postcall.extraction import (
    PROMPTS_DIR,
    Extraction,
    ExtractionSettings,
    apply,
    extract,
    fallback,
    needs_extraction,
)
from tool_server.settings import ServerSettings

# Wednesday 4 March 2026 in New York. Clocks go forward on Sunday 8 March, so Tuesday 10 March is -04:00.
TODAY = date(2026, 3, 4)
ZONE = "America/New_York"
API_KEY = "sk-test-extraction-key"
MODEL = "extractor-1"
ALL_FIELDS = ["summary", "outcome", "sentiment", "requested_appointment", "caller_name", "caller_email"]

ANSWER: dict[str, Any] = {
    "summary": "Dana Reyes asked for a cleaning next Tuesday afternoon.",
    "outcome": "information_only",
    "sentiment": "positive",
    "requested_appointment": {
        "date": "2026-03-10",
        "time": "14:00",
        "timezone": ZONE,
        "duration_minutes": 30,
        "reason": "teeth cleaning",
    },
    "caller_name": "Dana Reyes",
    "caller_email": "dana@example.com",
}


def call(*caller_lines: str, **fields: Any) -> CallRecord:
    """A finished call whose caller said `caller_lines`, each answered by the agent."""
    turns: list[Turn] = []
    for line in caller_lines:
        turns += [Turn(speaker="agent", text="Smile Dental, how can I help?"), Turn(speaker="caller", text=line)]
    return CallRecord(call_id="call-1", platform="vapi", transcript=turns, **fields)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    with serve_fake_openai() as pair:
        yield pair


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    served[0].reset()
    return served[0]


@pytest.fixture
def configured(served: tuple[FakeOpenAI, str]) -> ExtractionSettings:
    return ExtractionSettings(base_url=served[1], api_key=SecretStr(API_KEY), model=MODEL, timeout_seconds=5)


async def run(record: CallRecord, settings: ExtractionSettings) -> Extraction:
    return await extract(record, settings, today=TODAY, business_timezone=ZONE)


# --- The model ---------------------------------------------------------------------------------------


async def test_the_models_structured_answer_fills_summary_outcome_sentiment_and_the_requested_appointment(
    fake: FakeOpenAI, configured: ExtractionSettings
) -> None:
    fake.script(Reply.answer(ANSWER))
    record = call("Hi, this is Dana Reyes. Could I come in Tuesday at 2 pm for a cleaning?")

    found = await run(record, configured)
    filled = apply(record, found)

    assert found.source == "model"
    assert found.unknown == []
    assert filled.summary == ANSWER["summary"]
    assert filled.outcome == "information_only"
    assert filled.sentiment == "positive"
    assert filled.caller_name == "Dana Reyes"
    assert filled.caller_email == "dana@example.com"
    assert filled.appointment == AppointmentMention(
        status="requested",
        title="teeth cleaning",
        start="2026-03-10T14:00:00-04:00",
        date="2026-03-10",
        time="14:00",
        timezone=ZONE,
        duration_minutes=30,
    )
    assert filled.analysis["extraction"] == {"source": "model", "unknown": []}
    assert record.summary is None, "apply returns a copy"


async def test_the_request_carries_the_model_a_strict_json_schema_the_prompt_files_and_the_key(
    fake: FakeOpenAI, configured: ExtractionSettings
) -> None:
    fake.script(Reply.answer(ANSWER))

    await run(call("Could I come in Tuesday at 2 pm?"), configured)

    [request] = fake.requests
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == MODEL
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == sorted(ALL_FIELDS)
    assert "unknown" in schema["properties"]["outcome"]["enum"]
    assert request.message("system") == (PROMPTS_DIR / "postcall_extraction.system.md").read_text(encoding="utf-8")
    user = request.message("user")
    assert "Caller: Could I come in Tuesday at 2 pm?" in user
    assert "Wednesday, 2026-03-04" in user
    assert ZONE in user
    assert "${" not in user


async def test_fields_the_platform_reported_are_never_overwritten(
    fake: FakeOpenAI, configured: ExtractionSettings
) -> None:
    fake.script(Reply.answer(ANSWER))
    booked = AppointmentMention(status="booked", start="2026-03-09T10:00:00-04:00", appointment_id="apt_1")
    record = call(
        "Could I come in Tuesday at 2 pm?",
        summary="Platform summary.",
        sentiment="Neutral",
        caller_name="D. Reyes",
        caller_email="reyes@example.org",
        appointment=booked,
        analysis={"successEvaluation": "true"},
    )

    filled = apply(record, await run(record, configured))

    assert filled.summary == "Platform summary."
    assert filled.sentiment == "Neutral"
    assert filled.caller_name == "D. Reyes"
    assert filled.caller_email == "reyes@example.org"
    assert filled.appointment == booked
    assert filled.outcome == "information_only", "the one missing field is filled"
    assert filled.analysis["successEvaluation"] == "true"
    assert filled.analysis["extraction"]["source"] == "model"


FAILURES = {
    "a timeout": [Reply.stalled(5), Reply.stalled(5)],
    "an HTTP 500": [Reply.error(500), Reply.error(500)],
    "an HTTP 401": [Reply.error(401)],
    "content that is not JSON": [Reply(content="Sure! The caller wanted a cleaning.")],
    "an outcome outside the schema": [Reply.answer({**ANSWER, "outcome": "maybe"})],
    "a missing field": [Reply.answer({key: value for key, value in ANSWER.items() if key != "sentiment"})],
    "a date that is not YYYY-MM-DD": [
        Reply.answer({**ANSWER, "requested_appointment": {**ANSWER["requested_appointment"], "date": "next Tuesday"}})
    ],
    "a timezone that is a folder of zones": [
        Reply.answer({**ANSWER, "requested_appointment": {**ANSWER["requested_appointment"], "timezone": "America"}})
    ],
    "a timezone that is a legacy abbreviation": [
        Reply.answer({**ANSWER, "requested_appointment": {**ANSWER["requested_appointment"], "timezone": "EST"}})
    ],
    "a refusal": [Reply(content=None, refusal="I can't help with that.")],
    "a truncated answer": [Reply(content='{"summary": "Dana', finish_reason="length")],
    "a body that is not a chat completion": [Reply(raw_body='{"unexpected": true}')],
}


@pytest.mark.parametrize("replies", FAILURES.values(), ids=FAILURES.keys())
async def test_a_failing_model_falls_back_without_raising_or_logging_the_transcript(
    fake: FakeOpenAI,
    configured: ExtractionSettings,
    replies: list[Reply],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(*replies)
    settings = configured.model_copy(update={"timeout_seconds": 0.2})
    record = call("I need to cancel, my email is dana@example.com")

    with caplog.at_level(logging.WARNING, logger="tool_server.postcall.extraction"):
        found = await run(record, settings)

    assert found.source == "fallback"
    assert found.outcome == "cancelled"
    assert len(fake.requests) == len(replies), "timeouts and 5xx are retried exactly once"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "call-1" in caplog.text
    # Neither the transcript nor the model's answer (which quotes the caller) reaches the log.
    for said in ("cancel", "example.com", "Dana", "cleaning", "Tuesday"):
        assert said not in caplog.text


@pytest.mark.parametrize(
    "settings",
    [
        ExtractionSettings(base_url="http://127.0.0.1:9/v1", api_key=None, model=MODEL),
        ExtractionSettings(base_url="http://127.0.0.1:9/v1", api_key=SecretStr(API_KEY), model=None),
        ExtractionSettings(base_url="http://127.0.0.1:9/v1", api_key=SecretStr(""), model=MODEL),
    ],
    ids=["no key", "no model", "an empty key"],
)
async def test_without_a_configured_model_the_fallback_runs_and_nothing_is_requested(
    fake: FakeOpenAI, settings: ExtractionSettings
) -> None:
    found = await run(call("Please call me back tomorrow."), settings)

    assert not settings.configured
    assert found.source == "fallback"
    assert found.outcome == "callback_requested"
    assert fake.requests == []


def test_extraction_settings_come_from_tool_server_extraction_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_SERVER_EXTRACTION_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("TOOL_SERVER_EXTRACTION_API_KEY", API_KEY)
    monkeypatch.setenv("TOOL_SERVER_EXTRACTION_MODEL", MODEL)
    monkeypatch.setenv("TOOL_SERVER_EXTRACTION_TIMEOUT_SECONDS", "7.5")

    settings = ExtractionSettings.from_settings(ServerSettings())

    assert settings.configured
    assert (settings.base_url, settings.model, settings.timeout_seconds) == ("http://127.0.0.1:11434/v1", MODEL, 7.5)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings)


def test_with_no_extraction_variables_the_model_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "API_KEY", "MODEL", "TIMEOUT_SECONDS"):
        monkeypatch.delenv(f"TOOL_SERVER_EXTRACTION_{name}", raising=False)

    settings = ExtractionSettings.from_settings(ServerSettings())

    assert not settings.configured
    assert settings.timeout_seconds == 20


# --- The fallback --------------------------------------------------------------------------------------


def test_the_fallback_reads_tuesday_at_2_pm_as_next_tuesday_afternoon_in_the_business_zone() -> None:
    record = call("Could I come in Tuesday at 2 pm?")

    found = fallback(record, today=TODAY, business_timezone=ZONE)
    filled = apply(record, found)

    assert found.source == "fallback"
    assert found.requested_appointment is not None
    assert found.requested_appointment.model_dump() == {
        "date": "2026-03-10",
        "time": "14:00",
        "timezone": ZONE,
        "duration_minutes": None,
        "reason": None,
    }
    assert filled.appointment is not None
    assert filled.appointment.status == "requested"
    assert filled.appointment.start == "2026-03-10T14:00:00-04:00"


async def test_a_zone_the_model_spells_in_the_wrong_case_is_written_in_the_zones_own_spelling(
    fake: FakeOpenAI, configured: ExtractionSettings
) -> None:
    requested = {**ANSWER["requested_appointment"], "timezone": "america/new_york"}
    fake.script(Reply.answer({**ANSWER, "requested_appointment": requested}))
    record = call("Could I come in Tuesday at 2 pm?")

    filled = apply(record, await run(record, configured))

    assert filled.appointment is not None
    assert (filled.appointment.timezone, filled.appointment.start) == (ZONE, "2026-03-10T14:00:00-04:00")


@pytest.mark.parametrize("zone", ["America", "Mars/Olympus_Mons", "EST", "localtime", ""])
def test_the_fallback_leaves_out_a_business_timezone_that_is_not_an_iana_zone(zone: str) -> None:
    found = fallback(call("Could I come in Tuesday at 2 pm?"), today=TODAY, business_timezone=zone)

    assert found.requested_appointment is not None
    assert (found.requested_appointment.date, found.requested_appointment.timezone) == ("2026-03-10", None)


@pytest.mark.parametrize(
    ("line", "day", "clock"),
    [
        ("Do you have anything tomorrow at 10?", "2026-03-05", "10:00"),
        ("Friday at 10:30 would be great", "2026-03-06", "10:30"),
        ("How about March 12 at 9 a.m.?", "2026-03-12", "09:00"),
        ("Could I do the 12th of March at 4:15 pm", "2026-03-12", "16:15"),
        ("Wednesday at noon works", "2026-03-04", "12:00"),
        ("Monday at 2 works", "2026-03-09", "14:00"),
        ("Tuesday, March 10 at 11 am please", "2026-03-10", "11:00"),
        ("On 2026-04-01 at 08:45", "2026-04-01", "08:45"),
        ("January 5 at 3pm", "2027-01-05", "15:00"),
        ("Thursday at 7 pm", "2026-03-05", "19:00"),
        ("Thursday at 7:30", "2026-03-05", "07:30"),
        ("Thursday around 3 o'clock", "2026-03-05", "15:00"),
        ("Thursday at 10am", "2026-03-05", "10:00"),
        ("last thing: Thursday at 7 p.m. works", "2026-03-05", "19:00"),
    ],
)
def test_the_fallback_resolves_days_and_times_against_today(line: str, day: str, clock: str) -> None:
    found = fallback(call(line), today=TODAY, business_timezone=ZONE)

    assert found.requested_appointment is not None
    assert (found.requested_appointment.date, found.requested_appointment.time) == (day, clock)


@pytest.mark.parametrize(
    "line",
    [
        "I can't do Tuesday at 2 pm.",
        "I need to cancel my Tuesday at 2 pm appointment.",
        "I was in last Tuesday at 2 pm.",
        "Tuesday at 2 pm or Thursday at 10 am?",
        "Could I come in on Tuesday?",
        "Tuesday is fine, my daughter is 10.",
        "Tuesday at 10 30",
        "Tuesday at 7:75",
        "Tuesday at 13 pm",
        "Tuesday at 105",
        "Tuesday, my number is 5 5 5 1 2 3 4",
    ],
)
def test_the_fallback_requests_no_appointment_when_the_caller_did_not_clearly_ask_for_one(line: str) -> None:
    found = fallback(call(line), today=TODAY, business_timezone=ZONE)

    assert found.requested_appointment is None
    assert "requested_appointment" in found.unknown


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        ("I'd like to cancel my appointment on Monday.", "cancelled"),
        ("I need to reschedule to later in the week.", "rescheduled"),
        ("Can someone call me back this afternoon?", "callback_requested"),
        ("I'd like a callback, please.", "callback_requested"),
        ("Hi, you've reached Dana. Please leave a message after the tone.", "voicemail"),
        ("I'm not interested, please stop calling.", "not_interested"),
        ("I don't want to cancel, I just had a question.", "unknown"),
        ("What are your opening hours?", "unknown"),
    ],
)
def test_the_fallback_reads_the_outcome_from_the_callers_words(line: str, outcome: str) -> None:
    assert fallback(call(line), today=TODAY, business_timezone=ZONE).outcome == outcome


def test_the_fallback_only_listens_to_the_caller() -> None:
    record = CallRecord(
        call_id="call-1",
        platform="retell",
        transcript=[Turn(speaker="agent", text="Would you like me to cancel it, or call you back on Tuesday at 2 pm?")],
    )

    found = fallback(record, today=TODAY, business_timezone=ZONE)

    assert (found.outcome, found.requested_appointment) == ("unknown", None)


def test_the_fallback_calls_a_call_with_a_booked_appointment_booked() -> None:
    record = call("Tuesday at 2 pm, please.", appointment=AppointmentMention(status="booked", appointment_id="apt_1"))

    assert fallback(record, today=TODAY, business_timezone=ZONE).outcome == "booked"


def test_the_fallback_finds_the_callers_email_and_name() -> None:
    record = call("My name is Dana Reyes.", "Sure, it's Dana.Reyes@Example.com.")

    found = fallback(record, today=TODAY, business_timezone=ZONE)

    assert found.caller_email == "dana.reyes@example.com"
    assert found.caller_name == "Dana Reyes"


def test_the_fallback_marks_everything_it_could_not_determine_as_unknown() -> None:
    record = call("Hello? Yes, I had a question about parking.")

    found = fallback(record, today=TODAY, business_timezone=ZONE)
    filled = apply(record, found)

    assert found.model_dump() == {
        "summary": None,
        "outcome": "unknown",
        "sentiment": "unknown",
        "requested_appointment": None,
        "caller_name": None,
        "caller_email": None,
        "source": "fallback",
        "unknown": ALL_FIELDS,
    }
    assert (filled.summary, filled.outcome, filled.sentiment, filled.appointment) == (None, None, None, None)
    assert filled.analysis["extraction"] == {"source": "fallback", "unknown": ALL_FIELDS}


def test_the_fallback_keeps_what_the_platform_reported_and_does_not_call_it_unknown() -> None:
    record = call("Please call me back.", summary="Caller wants a callback.", sentiment="negative", caller_name="Dana")

    found = fallback(record, today=TODAY, business_timezone=ZONE)

    assert (found.summary, found.sentiment, found.caller_name) == ("Caller wants a callback.", "negative", "Dana")
    assert found.unknown == ["requested_appointment", "caller_email"]


def test_apply_records_only_the_fields_still_unknown_on_the_record() -> None:
    record = call("What are your opening hours?", caller_email="dana@example.com", outcome="customer-ended-call")

    filled = apply(record, fallback(record, today=TODAY, business_timezone=ZONE))

    assert filled.outcome == "customer-ended-call"
    assert filled.analysis["extraction"]["unknown"] == ["summary", "sentiment", "requested_appointment", "caller_name"]


# --- When to extract -----------------------------------------------------------------------------------

BOOKED = AppointmentMention(status="booked", appointment_id="apt_1")


@pytest.mark.parametrize(
    ("record", "needed"),
    [
        (call("Hi", summary="s", outcome="booked", appointment=BOOKED), False),
        (call("Hi", outcome="booked", appointment=BOOKED), True),
        (call("Hi", summary="s", appointment=BOOKED), True),
        (call("Hi", summary="s", outcome="booked"), True),
        (CallRecord(call_id="c", platform="vapi"), False),
        (CallRecord(call_id="c", platform="vapi", transcript=[Turn(speaker="caller", text="  ")]), False),
    ],
    ids=[
        "summary, outcome and appointment reported",
        "no summary",
        "no outcome",
        "no appointment",
        "no transcript",
        "only blank turns",
    ],
)
def test_extraction_is_needed_only_with_a_transcript_and_something_missing(record: CallRecord, needed: bool) -> None:
    assert needs_extraction(record) is needed
