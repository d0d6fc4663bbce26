"""Filling in what a voice platform left out of a finished call: summary, outcome, requested appointment.

`extract` asks an OpenAI-compatible model for a structured answer (a strict JSON schema built from
`ExtractionAnswer`, validated with the same model) and falls back to `fallback`, a deterministic reading
of the caller's turns, when no model is configured or the model fails in any way. `apply` copies the
result onto the record without overwriting anything the platform reported.

Typical use, once a call's record is complete::

    if needs_extraction(record):
        found = await extract(record, ExtractionSettings.from_settings(settings), today=..., business_timezone=...)
        record = apply(record, found)
"""

from __future__ import annotations

import logging
import re
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import openai
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.errors import ToolError
from tool_server.settings import ServerSettings
from tool_server.timeparse import parse_start

__all__ = [
    "PROMPTS_DIR",
    "Extraction",
    "ExtractionAnswer",
    "ExtractionSettings",
    "Outcome",
    "RequestedAppointment",
    "Sentiment",
    "apply",
    "extract",
    "fallback",
    "needs_extraction",
]

logger = logging.getLogger(__name__)

# The repository's prompts/ folder; read on every call so an edited prompt needs no restart.
PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
_SYSTEM_PROMPT = "postcall_extraction.system.md"
_USER_PROMPT = "postcall_extraction.user.md"

Outcome = Literal[
    "booked",
    "rescheduled",
    "cancelled",
    "information_only",
    "callback_requested",
    "not_interested",
    "voicemail",
    "unknown",
]
Sentiment = Literal["positive", "neutral", "negative", "unknown"]
_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
_SENTIMENTS: frozenset[str] = frozenset(get_args(Sentiment))

_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", re.IGNORECASE)


# --- What the model answers -------------------------------------------------------------------


def _blank_is_none(value: object) -> object:
    # Models (and compatible servers) often send "" where they mean null.
    if isinstance(value, str):
        return value.strip() or None
    return value


def _iso_date(value: str | None) -> str | None:
    if value is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("not a YYYY-MM-DD date")
        date.fromisoformat(value)  # rejects 2026-02-30
    return value


def _clock(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"(?:[01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError("not an HH:MM 24-hour time")
    return value


def _iana_zone(value: str | None) -> str | None:
    if value is not None and _zone(value) is None:
        raise ValueError("not an IANA timezone name")
    return value


def _minutes(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 24 * 60:
        raise ValueError("not a duration between 1 minute and a day")
    return value


def _email(value: str | None) -> str | None:
    if value is not None:
        value = value.lower()
        if not _EMAIL.fullmatch(value):
            raise ValueError("not an email address")
    return value


_Text = Annotated[str | None, BeforeValidator(_blank_is_none)]


class RequestedAppointment(BaseModel):
    """The appointment a caller asked for, in the business's wall-clock time; any part not said is None."""

    # The schema's description is what the model reads; the docstring is for developers.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": "The appointment the caller asked for; any part not said is null."},
    )

    date: Annotated[_Text, AfterValidator(_iso_date), Field(description="YYYY-MM-DD, or null when not said.")]
    time: Annotated[_Text, AfterValidator(_clock), Field(description="HH:MM on a 24-hour clock, or null.")]
    timezone: Annotated[_Text, AfterValidator(_iana_zone), Field(description="IANA timezone name, or null.")]
    duration_minutes: Annotated[int | None, AfterValidator(_minutes), Field(description="Minutes, or null.")]
    reason: Annotated[_Text, Field(description="What the appointment is for, in a few words, or null.")]


class ExtractionAnswer(BaseModel):
    """What the model is asked for. The SDK turns this class into the strict JSON schema it sends, and
    parses the answer back into it, so the schema and its validation cannot drift apart."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": "What a finished phone call said, for the business's records."},
    )

    summary: Annotated[_Text, Field(description="One or two sentences on what the call was about, or null.")]
    outcome: Outcome
    sentiment: Sentiment
    requested_appointment: RequestedAppointment | None
    caller_name: Annotated[_Text, Field(description="The caller's name as they gave it, or null.")]
    caller_email: Annotated[_Text, AfterValidator(_email), Field(description="The caller's email address, or null.")]


class Extraction(ExtractionAnswer):
    """What was extracted from a call, where it came from, and which fields could not be determined.

    `unknown` names the fields left undetermined: a None summary, name, email or requested
    appointment, an "unknown" outcome or sentiment. (From the model, a null requested appointment
    means the caller asked for none, so it is not listed.)
    """

    source: Literal["model", "fallback"]
    unknown: list[str] = Field(default_factory=list)


# --- Settings -----------------------------------------------------------------------------------


class ExtractionSettings(BaseModel):
    """Where the extraction model is. Without a model name and an API key, `extract` runs the fallback.

    `base_url` None means the OpenAI SDK's default (OPENAI_BASE_URL, else api.openai.com).
    """

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    timeout_seconds: float = Field(default=20, gt=0)

    @property
    def configured(self) -> bool:
        """Whether a model can be asked: a model name and a non-empty API key are both set."""
        return bool(self.model) and self.api_key is not None and bool(self.api_key.get_secret_value())

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ExtractionSettings:
        """The `TOOL_SERVER_EXTRACTION_*` part of the server settings."""
        return cls(
            base_url=settings.extraction_base_url or None,
            api_key=settings.extraction_api_key,
            model=settings.extraction_model or None,
            timeout_seconds=settings.extraction_timeout_seconds,
        )


# --- Deciding and applying ----------------------------------------------------------------------


def needs_extraction(record: CallRecord) -> bool:
    """True when the call has a transcript to read and lacks a summary, an outcome or an appointment."""
    has_transcript = any(turn.text.strip() for turn in record.transcript)
    return has_transcript and (not record.summary or not record.outcome or record.appointment is None)


def apply(record: CallRecord, extraction: Extraction) -> CallRecord:
    """A copy of `record` with only its missing fields filled from `extraction`.

    Whatever the platform reported wins. An "unknown" outcome or sentiment is not written (the field
    stays None). A requested appointment becomes `appointment` with status "requested", its reason as
    the title, and `start` when date, time and zone are all known. `analysis["extraction"]` records the
    source and which fields are still unknown on the returned record.
    """
    updates: dict[str, object] = {}
    if not record.summary and extraction.summary:
        updates["summary"] = extraction.summary
    if not record.outcome and extraction.outcome != "unknown":
        updates["outcome"] = extraction.outcome
    if not record.sentiment and extraction.sentiment != "unknown":
        updates["sentiment"] = extraction.sentiment
    if not record.caller_name and extraction.caller_name:
        updates["caller_name"] = extraction.caller_name
    if not record.caller_email and extraction.caller_email:
        updates["caller_email"] = extraction.caller_email
    requested = extraction.requested_appointment
    if record.appointment is None and requested is not None:
        updates["appointment"] = AppointmentMention(
            status="requested",
            title=requested.reason,
            start=_start(requested),
            date=requested.date,
            time=requested.time,
            timezone=requested.timezone,
            duration_minutes=requested.duration_minutes,
        )
    filled = record.model_copy(update=updates, deep=True)
    still_unknown = [
        name for name in extraction.unknown if getattr(filled, _RECORD_FIELD.get(name, name), None) is None
    ]
    filled.analysis["extraction"] = {"source": extraction.source, "unknown": still_unknown}
    return filled


_RECORD_FIELD = {"requested_appointment": "appointment"}


def _start(requested: RequestedAppointment) -> str | None:
    if requested.date is None or requested.time is None or requested.timezone is None:
        return None
    zone = _zone(requested.timezone)
    if zone is None:
        return None
    try:
        return parse_start(f"{requested.date}T{requested.time}", zone, "start").isoformat()
    except ToolError:
        return None  # a wall-clock time the clocks skip: keep date and time, claim no instant


# --- The model ------------------------------------------------------------------------------------


class _NoAnswerError(Exception):
    """The model replied without a parsed answer (a refusal or no choices)."""


async def extract(
    record: CallRecord, settings: ExtractionSettings, *, today: date, business_timezone: str
) -> Extraction:
    """Extract summary, outcome, sentiment, requested appointment and caller details from the transcript.

    With a configured model, asks it once (the SDK retries once more on timeouts and 5xx). Any failure
    (timeout, HTTP error, invalid JSON, an answer outside the schema, a refusal, an unreadable prompt
    file) is logged as a warning without the transcript and answered by `fallback`: this never raises.
    `today` is the business's local date, against which "tomorrow" and weekday names are resolved.
    """
    if not settings.configured:
        return fallback(record, today=today, business_timezone=business_timezone)
    try:
        answer = await _ask_model(record, settings, today=today, business_timezone=business_timezone)
    # KeyError and ValueError: a prompt template with an unknown or malformed ${placeholder}.
    except (openai.OpenAIError, ValidationError, _NoAnswerError, OSError, KeyError, ValueError) as exc:
        logger.warning("post-call extraction for call %s used the fallback: %s", record.call_id, _describe(exc))
        return fallback(record, today=today, business_timezone=business_timezone)
    except Exception as exc:
        # The last line of defence: a post-call sync must go on even if the SDK surprises us (a body
        # that is JSON but not a chat completion surfaces as a TypeError from inside the SDK).
        logger.warning(
            "post-call extraction for call %s failed unexpectedly (%s); used the fallback",
            record.call_id,
            type(exc).__name__,
        )
        return fallback(record, today=today, business_timezone=business_timezone)
    return Extraction(
        **answer.model_dump(), source="model", unknown=_unknown(answer, null_appointment_is_unknown=False)
    )


async def _ask_model(
    record: CallRecord, settings: ExtractionSettings, *, today: date, business_timezone: str
) -> ExtractionAnswer:
    system = (PROMPTS_DIR / _SYSTEM_PROMPT).read_text(encoding="utf-8")
    user = string.Template((PROMPTS_DIR / _USER_PROMPT).read_text(encoding="utf-8")).substitute(
        transcript=_transcript_text(record.transcript),
        today=today.isoformat(),
        today_weekday=f"{today:%A}",
        business_timezone=business_timezone,
    )
    api_key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    async with openai.AsyncOpenAI(
        base_url=settings.base_url, api_key=api_key, timeout=settings.timeout_seconds, max_retries=1
    ) as client:
        # https://platform.openai.com/docs/guides/structured-outputs: `parse` sends
        # response_format={"type": "json_schema", "json_schema": {"name", "strict": true, "schema"}}
        # built from ExtractionAnswer, and validates the reply with it (ValidationError otherwise).
        completion = await client.chat.completions.parse(
            model=settings.model or "",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format=ExtractionAnswer,
        )
    if not completion.choices or completion.choices[0].message.parsed is None:
        raise _NoAnswerError("refusal" if completion.choices and completion.choices[0].message.refusal else "no answer")
    return completion.choices[0].message.parsed


_SPEAKER_LABELS = {"agent": "Agent", "caller": "Caller", "tool": "Tool", "other": "Other"}


def _transcript_text(turns: list[Turn]) -> str:
    # One turn per line, whitespace collapsed, so a turn cannot fake the next speaker's label.
    return "\n".join(
        f"{_SPEAKER_LABELS[turn.speaker]}: {' '.join(turn.text.split())}" for turn in turns if turn.text.strip()
    )


def _describe(exc: BaseException) -> str:
    # Never the message itself: validation errors quote the model's answer, which quotes the caller.
    if isinstance(exc, openai.APIStatusError):
        return f"{type(exc).__name__} (HTTP {exc.status_code})"
    if isinstance(exc, ValidationError):
        problems = ", ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<answer>'}: {error['type']}" for error in exc.errors()
        )
        return f"answer outside the schema ({problems})"
    return type(exc).__name__


def _unknown(answer: ExtractionAnswer, *, null_appointment_is_unknown: bool) -> list[str]:
    missing = {
        "summary": answer.summary is None,
        "outcome": answer.outcome == "unknown",
        "sentiment": answer.sentiment == "unknown",
        "requested_appointment": answer.requested_appointment is None and null_appointment_is_unknown,
        "caller_name": answer.caller_name is None,
        "caller_email": answer.caller_email is None,
    }
    return [name for name, is_missing in missing.items() if is_missing]


# --- The deterministic fallback ----------------------------------------------------------------


def fallback(record: CallRecord, *, today: date, business_timezone: str) -> Extraction:
    """What can be read from the record and the caller's turns without a model. No network.

    - outcome: the platform's, if it is one of ours; "booked" when the record has a booked appointment;
      otherwise the first keyword rule that matches an un-negated caller turn: voicemail greetings,
      "reschedule", "cancel", "call me back"/"callback", "not interested"/"stop calling".
    - requested appointment: from the last caller turn that names exactly one day (today, tomorrow, a
      weekday, "March 10", "2026-03-10") and exactly one time ("10:30", "2 pm", "noon", "at 10"), with no
      negation or cancellation in it. A weekday is its next occurrence from `today`, today included; a
      bare hour 1–6 is afternoon, 7–12 morning. The zone is `business_timezone`.
    - caller name from "my name is …", email from the last address a caller turn contains; the record's
      own values win.
    - summary and sentiment only as the platform reported them: a keyword match is not a summary.
    Everything else is listed in `unknown`.
    """
    caller_turns = [_plain(turn.text) for turn in record.transcript if turn.speaker == "caller" and turn.text.strip()]
    answer = ExtractionAnswer(
        summary=record.summary or None,
        outcome=_fallback_outcome(record, caller_turns),
        sentiment=_reported_sentiment(record),
        requested_appointment=_requested_appointment(caller_turns, today, business_timezone),
        caller_name=record.caller_name or _caller_name(caller_turns),
        caller_email=_reported_email(record) or _caller_email(caller_turns),
    )
    return Extraction(
        **answer.model_dump(), source="fallback", unknown=_unknown(answer, null_appointment_is_unknown=True)
    )


def _plain(text: str) -> str:
    # Speech-to-text writes curly apostrophes ("can’t"); the rules below look for straight ones.
    return " ".join(text.replace("\u2019", "'").split())


def _reported_outcome(record: CallRecord) -> Outcome:
    # Platforms report free text ("customer-ended-call", "Booked"); only our own words carry over.
    word = (record.outcome or "").strip().lower()
    return cast(Outcome, word) if word in _OUTCOMES else "unknown"


def _reported_email(record: CallRecord) -> str | None:
    # Checked here because ExtractionAnswer would refuse a malformed one, and the fallback must not raise.
    email = (record.caller_email or "").strip().lower()
    return email if _EMAIL.fullmatch(email) else None


def _reported_sentiment(record: CallRecord) -> Sentiment:
    word = (record.sentiment or "").strip().lower()
    return cast(Sentiment, word) if word in _SENTIMENTS else "unknown"


_NEGATION = re.compile(r"\b(?:not|never|cannot|no longer)\b|n't\b", re.IGNORECASE)

_OUTCOME_RULES: tuple[tuple[Outcome, re.Pattern[str]], ...] = (
    (
        "voicemail",
        re.compile(
            r"leave (?:a|your) message|after the (?:tone|beep)|(?:not|un)available to take your call"
            r"|voice ?mail ?box|mailbox is full",
            re.IGNORECASE,
        ),
    ),
    ("rescheduled", re.compile(r"\breschedul|\bmove my appointment\b", re.IGNORECASE)),
    ("cancelled", re.compile(r"\bcancel", re.IGNORECASE)),
    ("callback_requested", re.compile(r"\bcall me back\b|\bcall-?back\b|\bring me back\b", re.IGNORECASE)),
    ("not_interested", re.compile(r"\bnot interested\b|\bstop calling\b|\bremove me from\b", re.IGNORECASE)),
)


def _fallback_outcome(record: CallRecord, caller_turns: list[str]) -> Outcome:
    reported = _reported_outcome(record)
    if reported != "unknown":
        return reported
    if record.appointment is not None and record.appointment.status == "booked":
        return "booked"
    for outcome, pattern in _OUTCOME_RULES:
        if any(_affirmed(pattern, turn) for turn in caller_turns):
            return outcome
    return "unknown"


def _affirmed(pattern: re.Pattern[str], text: str) -> bool:
    """Whether `pattern` occurs without a negation in the three words before it ("I don't want to cancel")."""
    for match in pattern.finditer(text):
        before = " ".join(text[: match.start()].split()[-3:])
        if not _NEGATION.search(before):
            return True
    return False


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = re.compile(
    rf"\b(?P<last>last\s+)?(?P<word>today|tomorrow|{'|'.join(_WEEKDAYS)})\b"
    rf"|\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<month>{_MONTH})\.?\s+(?P<mday>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|\b(?P<dday>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dmonth>{_MONTH})\b",
    re.IGNORECASE,
)
# Tried left to right at each position, so "10:30 am" is one time, and "at 7 pm" is not a bare "at 7".
_TIME = re.compile(
    r"\b(?P<noon>noon)\b"
    r"|\b(?P<h12>\d{1,2})(?::(?P<m12>[0-5]\d))?\s*(?P<half>[ap])\.?\s?m\b"
    r"|\b(?P<h24>\d{1,2}):(?P<m24>[0-5]\d)\b"
    r"|\b(?:at|around|about)\s+(?P<bare>\d{1,2})(?:\s*o'?clock)?\b(?!\s*(?::|\d|[ap]\.?\s?m\b))",
    re.IGNORECASE,
)


def _requested_appointment(caller_turns: list[str], today: date, business_timezone: str) -> RequestedAppointment | None:
    for text in reversed(caller_turns):
        if _NEGATION.search(text) or re.search(r"\bcancel", text, re.IGNORECASE):
            continue  # "I can't do Tuesday at 2" and "cancel my Tuesday at 2" are not requests
        days = {day for match in _DAY.finditer(text) if (day := _day(match, today)) is not None}
        times = {clock for match in _TIME.finditer(text) if (clock := _time(match)) is not None}
        if len(days) == 1 and len(times) == 1:
            return RequestedAppointment(
                date=days.pop().isoformat(),
                time=times.pop(),
                timezone=business_timezone if _zone(business_timezone) else None,
                duration_minutes=None,
                reason=None,
            )
    return None


def _day(match: re.Match[str], today: date) -> date | None:
    if match["word"]:
        word = match["word"].lower()
        if match["last"]:
            return None  # "last Tuesday" is in the past, not a request
        if word == "today":
            return today
        if word == "tomorrow":
            return today + timedelta(days=1)
        return today + timedelta(days=(_WEEKDAYS.index(word) - today.weekday()) % 7)
    try:
        if match["iso"]:
            return date.fromisoformat(match["iso"])
        month = _MONTHS[(match["month"] or match["dmonth"]).lower()]
        day_of_month = int(match["mday"] or match["dday"])
        found = date(today.year, month, day_of_month)
        # A date without a year is the next one: "January 5" said in December is next year's.
        return found if found >= today else date(today.year + 1, month, day_of_month)
    except ValueError:
        return None  # "February 30"


def _time(match: re.Match[str]) -> str | None:
    if match["noon"]:
        return "12:00"
    if match["h12"]:
        hour, minute = int(match["h12"]), int(match["m12"] or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["half"].lower() == "p" else 0)
        return f"{hour:02d}:{minute:02d}"
    hour, minute = int(match["h24"] or match["bare"]), int(match["m24"] or 0)
    if hour > 23:
        return None
    if 1 <= hour <= 6:
        hour += 12  # a bare "2" or "2:30" at a business means the afternoon
    return f"{hour:02d}:{minute:02d}"


_NAME = re.compile(r"\b(?i:my name is|my name's)\s+(?P<name>[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?)")


def _caller_name(caller_turns: list[str]) -> str | None:
    for text in caller_turns:
        if match := _NAME.search(text):
            return match["name"]
    return None


def _caller_email(caller_turns: list[str]) -> str | None:
    found = [address.lower() for text in caller_turns for address in _EMAIL.findall(text)]
    return found[-1] if found else None


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    # OSError: a folder of the zone database, such as "America", is IsADirectoryError rather than not found.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
