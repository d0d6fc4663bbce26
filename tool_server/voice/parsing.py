"""Small parsers shared by the platform normalizers: times, transcripts, booked appointments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from integrations.common.linear_regex import compile_linear
from tool_server.calls.models import AppointmentMention, Turn
from tool_server.json_text import loads_or_not_json

__all__ = ["appointment_from_tool_results", "as_dict", "as_str", "parse_time", "speaker", "turns_from_text"]

_SPEAKERS = {
    "ai": "agent",
    "bot": "agent",
    "assistant": "agent",
    "agent": "agent",
    "robot": "agent",
    "user": "caller",
    "human": "caller",
    "customer": "caller",
    "caller": "caller",
}


# "AI: Hello" or "human: hi": a short speaker label, a colon, the words.
_LABELLED_LINE = compile_linear(r"^\s{0,16}([A-Za-z][A-Za-z ]{0,23}?)\s{0,8}:\s*(.*)$")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (with or without Z), or epoch seconds or milliseconds, as an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        if isinstance(value, int | float) or value.strip().isdigit():
            number = float(value)
            # 13-digit epochs are milliseconds (Retell's start_timestamp, Vapi's timestamp).
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        parsed = datetime.fromisoformat(value.strip()[:64].replace("Z", "+00:00"))
    # OverflowError and OSError: an epoch beyond the years a datetime can hold.
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def turns_from_text(text: str | None) -> list[Turn]:
    """'AI: Hello\\nUser: Hi' (Vapi) or '\\nbot: …\\nhuman: …' (Synthflow) into turns."""
    turns: list[Turn] = []
    for line in (text or "").splitlines():
        match = _LABELLED_LINE.match(line)
        if match and match.group(1).lower() in _SPEAKERS:
            turns.append(Turn.model_validate({"speaker": _SPEAKERS[match.group(1).lower()], "text": match.group(2)}))
        elif line.strip() and turns:
            turns[-1] = turns[-1].model_copy(update={"text": f"{turns[-1].text} {line.strip()}"})
    return turns


def speaker(role: Any) -> str:
    return _SPEAKERS.get(str(role).lower(), "other")


def appointment_from_tool_results(results: Iterable[tuple[str | None, Any]]) -> AppointmentMention | None:
    """The appointment our own book/reschedule tool reported during the call, if it did."""
    found = None
    for name, raw in results:
        if name not in (None, "book_appointment", "reschedule_appointment"):
            continue
        data = loads_or_not_json(raw) if isinstance(raw, str) else raw
        appointment = as_dict(as_dict(data).get("appointment"))
        if appointment.get("status") == "booked" and appointment.get("start"):
            found = AppointmentMention(
                status="booked",
                start=appointment["start"],
                timezone=as_str(appointment.get("timezone")),
                appointment_id=as_str(appointment.get("appointment_id")),
            )
    return found
