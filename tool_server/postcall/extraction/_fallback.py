"""The deterministic fallback: what the record and the caller's own turns say, without a model.

The caller's turns are read as one `CallerText` by RE2 patterns (linear time whatever the text), and
each scan reads a bounded number of matches, so a megabyte of hostile transcript costs a few linear
scans, whatever its shape. `extract` runs this in a worker thread, off the event loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from itertools import islice
from typing import TypeVar, cast

from integrations.common.linear_regex import compile_linear
from integrations.common.zones import UnknownZoneError, canonical_zone_name
from tool_server.calls.models import CallRecord
from tool_server.postcall.extraction._answers import (
    EMAIL,
    OUTCOMES,
    SENTIMENTS,
    Extraction,
    ExtractionAnswer,
    Outcome,
    RequestedAppointment,
    Sentiment,
    unknown_fields,
)
from tool_server.postcall.extraction._caller_text import CallerText
from tool_server.postcall.extraction._names import caller_name
from tool_server.postcall.extraction._when import day_mentions, time_mentions

__all__ = ["fallback"]

# Matches one scan reads: a real call has a few dozen keywords, days or addresses, not thousands.
_MAX_MATCHES = 1024
# How far before a keyword a negation is looked for: three words, in at most this many characters.
_NEGATION_REACH = 80

_T = TypeVar("_T")

_NEGATION = r"\b(?:not|never|cannot|no longer)\b|n't\b"
_NEGATED = compile_linear(_NEGATION, ignore_case=True)
_NOT_A_REQUEST = compile_linear(rf"{_NEGATION}|\bcancel", ignore_case=True)
# The keyword rules in priority order, in one alternation so the caller's text is scanned once.
_OUTCOME_RULES: tuple[tuple[Outcome, str], ...] = (
    (
        "voicemail",
        r"leave (?:a|your) message|after the (?:tone|beep)|(?:not|un)available to take your call"
        r"|voice ?mail ?box|mailbox is full",
    ),
    ("rescheduled", r"\breschedul|\bmove my appointment\b"),
    ("cancelled", r"\bcancel"),
    ("callback_requested", r"\bcall me back\b|\bcall-?back\b|\bring me back\b"),
    ("not_interested", r"\bnot interested\b|\bstop calling\b|\bremove me from\b"),
)
_OUTCOME_KEYWORDS = compile_linear(
    "|".join(f"(?P<{outcome}>{pattern})" for outcome, pattern in _OUTCOME_RULES), ignore_case=True
)


def fallback(record: CallRecord, *, today: date, business_timezone: str) -> Extraction:
    """What can be read from the record and the caller's turns without a model. No network.

    - outcome: the platform's, if it is one of ours; "booked" when the record has a booked appointment;
      otherwise the first keyword rule that matches an un-negated caller turn: voicemail greetings,
      "reschedule", "cancel", "call me back"/"callback", "not interested"/"stop calling".
    - requested appointment: from the last caller turn that names exactly one day (today, tomorrow, a
      weekday, "March 10", "2026-03-10") and exactly one time ("10:30", "2 pm", "noon", "at 10"), with no
      negation or cancellation in it. A weekday is its next occurrence from `today`, today included; a
      bare hour 1–6 is afternoon, 7–12 morning. The zone is `business_timezone`, if it is a zone.
    - caller name from how the caller introduced themselves ("my name is …", "this is …", "I'm …",
      "… here"), email from the last address a caller turn contains; the record's own values win.
    - summary and sentiment only as the platform reported them: a keyword match is not a summary.
    Everything else is listed in `unknown`.
    """
    caller = CallerText.of(record)
    answer = ExtractionAnswer(
        summary=record.summary or None,
        outcome=_outcome(record, caller.text),
        sentiment=_reported_sentiment(record),
        requested_appointment=_requested_appointment(caller, today, business_timezone),
        caller_name=record.caller_name or caller_name(caller.text),
        caller_email=_reported_email(record) or _caller_email(caller.text),
    )
    return Extraction(
        **answer.model_dump(), source="fallback", unknown=unknown_fields(answer, null_appointment_is_unknown=True)
    )


def _reported_outcome(record: CallRecord) -> Outcome:
    # Platforms report free text ("customer-ended-call", "Booked"); only our own words carry over.
    word = (record.outcome or "").strip().lower()
    return cast(Outcome, word) if word in OUTCOMES else "unknown"


def _reported_email(record: CallRecord) -> str | None:
    # Checked here because ExtractionAnswer would refuse a malformed one, and the fallback must not raise.
    email = (record.caller_email or "").strip().lower()
    return email if EMAIL.fullmatch(email) else None


def _reported_sentiment(record: CallRecord) -> Sentiment:
    word = (record.sentiment or "").strip().lower()
    return cast(Sentiment, word) if word in SENTIMENTS else "unknown"


def _outcome(record: CallRecord, caller_text: str) -> Outcome:
    reported = _reported_outcome(record)
    if reported != "unknown":
        return reported
    if record.appointment is not None and record.appointment.status == "booked":
        return "booked"
    said = _affirmed_outcomes(caller_text)
    return next((outcome for outcome, _ in _OUTCOME_RULES if outcome in said), "unknown")


def _affirmed_outcomes(text: str) -> set[str]:
    """The outcomes whose keywords occur in `text` without a negation in the three words of the same
    turn before them ("I don't want to cancel")."""
    found: set[str] = set()
    for match in islice(_OUTCOME_KEYWORDS.finditer(text), _MAX_MATCHES):
        start = match.start()
        line_start = text.rfind("\n", max(0, start - _NEGATION_REACH), start) + 1
        reach = max(line_start, start - _NEGATION_REACH)
        words = text[reach:start].split()
        if reach > line_start and not text[reach - 1].isspace() and not text[reach].isspace():
            words = words[1:]  # the window begins inside a word: drop its tail
        if not _NEGATED.search(" ".join(words[-3:])):
            found.update(outcome for outcome, keyword in match.groupdict().items() if keyword is not None)
    return found


def _requested_appointment(caller: CallerText, today: date, business_timezone: str) -> RequestedAppointment | None:
    # The last turn that names exactly one day and one time and neither negates nor cancels:
    # "I can't do Tuesday at 2" and "cancel my Tuesday at 2" are not requests.
    refusals, read_1 = _by_turn(caller, ((match.start(), True) for match in _NOT_A_REQUEST.finditer(caller.text)))
    days, read_2 = _by_turn(caller, day_mentions(caller.text, today))
    times, read_3 = _by_turn(caller, time_mentions(caller.text))
    for turn in reversed(range(min(read_1, read_2, read_3))):
        if turn in refusals:
            continue
        days_named = {day for day in days.get(turn, ()) if day is not None}
        times_named = {clock for clock in times.get(turn, ()) if clock is not None}
        if len(days_named) == 1 and len(times_named) == 1:
            return RequestedAppointment(
                date=days_named.pop().isoformat(),
                time=times_named.pop(),
                timezone=_zone_name(business_timezone),
                duration_minutes=None,
                reason=None,
            )
    return None


def _by_turn(caller: CallerText, mentions: Iterator[tuple[int, _T]]) -> tuple[dict[int, list[_T]], int]:
    """`mentions` (position, value) grouped by turn, and how many turns were read in full: all of them,
    unless the scan stopped at `_MAX_MATCHES` inside some turn."""
    found: dict[int, list[_T]] = defaultdict(list)
    for count, (position, value) in enumerate(mentions):
        turn = caller.turn_at(position)
        if count == _MAX_MATCHES:
            return found, turn
        found[turn].append(value)
    return found, caller.turns


def _zone_name(name: str) -> str | None:
    try:
        return canonical_zone_name(name)
    except UnknownZoneError:
        return None


def _caller_email(caller_text: str) -> str | None:
    # The last address the caller said, among the first `_MAX_MATCHES`.
    if "@" not in caller_text:
        return None  # cheaper than asking RE2
    found = list(islice(EMAIL.finditer(caller_text), _MAX_MATCHES))
    return str(found[-1][0]).lower() if found else None
