"""Days and times as callers say them: "tomorrow", "Tuesday", "March 12", "2 pm", "at 10", "noon".

The patterns run on RE2 (linear time, no lookaround) over a `CallerText`, where whitespace is a
single space and turns are lines, so a mention never spans two turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from integrations.common.linear_regex import LinearMatch, compile_linear

__all__ = ["day_mentions", "time_mentions"]

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
_DAY = compile_linear(
    rf"\b(?P<last>last )?(?P<word>today|tomorrow|{'|'.join(_WEEKDAYS)})\b"
    rf"|\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<month>{_MONTH})\.? (?P<mday>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|\b(?P<dday>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<dmonth>{_MONTH})\b",
    ignore_case=True,
)
# At one position RE2 tries the alternatives in order, and each 12- and 24-hour form takes an optional
# lead word, so "at 7 pm" and "at 7:30" are read whole rather than as a bare "at 7". A bare hour needs
# a lead word; one followed by a colon or a digit ("at 10 30", "at 7:75") is captured as `more` and
# read as no time: what a negative lookahead would say, which RE2 does not have.
_LEAD = r"(?:\b(?:at|around|about) )"
_TIME = compile_linear(
    r"\b(?P<noon>noon)\b"
    rf"|{_LEAD}?\b(?P<h12>\d{{1,2}})(?::(?P<m12>[0-5]\d))? ?(?P<half>[ap])\.? ?m\b"
    rf"|{_LEAD}?\b(?P<h24>\d{{1,2}}):(?P<m24>[0-5]\d)\b"
    rf"|{_LEAD}(?P<bare>\d{{1,2}})(?: ?o'?clock)?\b(?P<more> ?[:\d])?",
    ignore_case=True,
)


def day_mentions(text: str, today: date) -> Iterator[tuple[int, date | None]]:
    """Where `text` names a day, and the day, resolved against `today` (None for one that is no request).

    A weekday is its next occurrence from `today`, today included; a date without a year is its next
    occurrence. "last Tuesday" and impossible dates ("February 30") give None.
    """
    for match in _DAY.finditer(text):
        yield match.start(), _day(match, today)


def time_mentions(text: str) -> Iterator[tuple[int, str | None]]:
    """Where `text` names a time, and the time as HH:MM (None for one that is not a time of day).

    A bare hour 1–6 ("at 2", "2:30") is the afternoon, 7–12 the morning.
    """
    for match in _TIME.finditer(text):
        yield match.start(), _time(match)


def _day(found: LinearMatch, today: date) -> date | None:
    match = found.groupdict()  # one lookup of the group names, not one per group
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
        month = _MONTHS[(match["month"] or match["dmonth"] or "").lower()]
        day_of_month = int(match["mday"] or match["dday"] or 0)
        upcoming = date(today.year, month, day_of_month)
        # A date without a year is the next one: "January 5" said in December is next year's.
        return upcoming if upcoming >= today else date(today.year + 1, month, day_of_month)
    except ValueError:
        return None  # "February 30"


def _time(found: LinearMatch) -> str | None:
    match = found.groupdict()
    if match["noon"]:
        return "12:00"
    if match["h12"]:
        hour, minute = int(match["h12"]), int(match["m12"] or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if (match["half"] or "").lower() == "p" else 0)
        return f"{hour:02d}:{minute:02d}"
    if match["more"]:
        return None
    hour, minute = int(match["h24"] or match["bare"] or 0), int(match["m24"] or 0)
    if hour > 23:
        return None
    if 1 <= hour <= 6:
        hour += 12  # a bare "2" or "2:30" at a business means the afternoon
    return f"{hour:02d}:{minute:02d}"
