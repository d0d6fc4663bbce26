"""Pure mappings between Calendly JSON and the shared calendar models.

Resources: the spec's `Event`, `Invitee`, `EventType` and `EventTypeAvailableTime`
(tests/specs/calendly/calendly-api.v2.2023-04.json); the `POST /invitees` body from
https://developer.calendly.com/schedule-events-with-ai-agents.

An appointment is a scheduled event and its (one) invitee. Calendly cannot move an event: a
reschedule books a new event and cancels the old one. So that an appointment keeps its id, the
new invitee's `tracking.utm_content` carries the first event's uuid (the appointment id), and the
old event's cancellation reason names the new event, which `get` follows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot
from integrations.common.linear_regex import compile_linear
from integrations.common.zones import zone_info

__all__ = [
    "PROVIDER",
    "TRACKING_SOURCE",
    "appointment",
    "digits",
    "invitee_body",
    "is_callers",
    "moved_to",
    "parse_time",
    "reschedule_reason",
    "slots",
    "stamp",
    "uuid_of",
]

PROVIDER = "calendly"
# `tracking.utm_source` of every booking this integration makes.
TRACKING_SOURCE = "phone-assistant"
_RESCHEDULED = "Rescheduled by the phone assistant to "
_MOVED_TO = compile_linear(r"Rescheduled by the phone assistant to \S*/scheduled_events/([A-Za-z0-9-]{1,64})")
_SAFE_ID = compile_linear(r"[A-Za-z0-9-]{1,64}")


def stamp(moment: datetime) -> str:
    """An instant as Calendly's UTC form (`2026-03-09T14:00:00.000000Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """A Calendly timestamp as an aware datetime (Calendly answers in UTC with `Z`)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def uuid_of(uri_or_id: str) -> str | None:
    """The uuid at the end of a Calendly URI (or an id given bare); None when it is not one."""
    candidate = uri_or_id.rstrip("/").rsplit("/", 1)[-1]
    return candidate if _SAFE_ID.fullmatch(candidate) else None


def digits(phone: str | None) -> str:
    """A phone's digits: Calendly may store `+1 212-555-0142` for `+12125550142`."""
    return "".join(c for c in phone or "" if c.isdigit())


def slots(answer: dict[str, Any], start: datetime, end: datetime, duration: timedelta, zone: str) -> list[TimeSlot]:
    """Bookable slots from an `event_type_available_times` answer, starting in [start, end), in `zone`."""
    found: list[TimeSlot] = []
    for item in answer.get("collection") or []:
        if item.get("status") != "available" or not item.get("invitees_remaining", 1):
            continue
        begins = parse_time(str(item["start_time"]))
        if start <= begins < end:
            found.append(
                TimeSlot(start=begins.astimezone(zone_info(zone)), end=(begins + duration).astimezone(zone_info(zone)))
            )
    return found


def invitee_body(
    request: BookingRequest,
    *,
    event_type: dict[str, Any],
    zone: str,
    email: str,
    notes_question: str,
    appointment_id: str | None = None,
) -> dict[str, Any]:
    """The `POST /invitees` body: the caller as invitee, their phone as text-reminder number and as the
    answer to the event type's phone question, their notes as the answer to its notes question, and
    our reference in `tracking` (the idempotency key, and the appointment id of a reschedule)."""
    invitee: dict[str, Any] = {"name": request.attendee_name, "email": email, "timezone": zone}
    if request.attendee_phone:
        invitee["text_reminder_number"] = request.attendee_phone
    answers: list[dict[str, Any]] = []
    questions = [q for q in event_type.get("custom_questions") or [] if q.get("enabled")]
    phone_question = next((q for q in questions if q.get("type") == "phone_number"), None)
    if request.attendee_phone and phone_question is not None:
        answers.append(_answer(phone_question, request.attendee_phone))
    notes = next((q for q in questions if q.get("name") == notes_question), None) or next(
        (q for q in questions if q.get("type") == "text"), None
    )
    if request.notes and notes is not None:
        answers.append(_answer(notes, request.notes))
    tracking: dict[str, str] = {"utm_source": TRACKING_SOURCE}
    if request.idempotency_key:
        tracking["utm_term"] = request.idempotency_key
    if appointment_id:
        tracking["utm_content"] = appointment_id
    body: dict[str, Any] = {
        "event_type": event_type["uri"],
        "start_time": stamp(request.start),
        "invitee": invitee,
        "tracking": tracking,
    }
    if answers:
        body["questions_and_answers"] = sorted(answers, key=lambda a: a["position"])
    return body


def _answer(question: dict[str, Any], text: str) -> dict[str, Any]:
    return {"question": question["name"], "answer": text, "position": question["position"]}


def _phone(invitee: dict[str, Any]) -> str | None:
    if invitee.get("text_reminder_number"):
        return str(invitee["text_reminder_number"])
    for answer in invitee.get("questions_and_answers") or []:
        text = str(answer.get("answer", ""))
        if text.startswith("+") and len(digits(text)) >= 8 and "phone" in str(answer.get("question", "")).lower():
            return text
    return None


def is_callers(invitee: dict[str, Any], *, phone: str | None, email: str | None, key: str | None) -> bool:
    """Whether an invitee is this caller (same phone digits or email) or this booking (same key)."""
    if key and (invitee.get("tracking") or {}).get("utm_term") == key:
        return True
    if phone and digits(_phone(invitee)) == digits(phone):
        return True
    return bool(email) and str(invitee.get("email", "")).lower() == (email or "").lower()


def reschedule_reason(new_event_uri: str) -> str:
    return f"{_RESCHEDULED}{new_event_uri}"


def moved_to(event: dict[str, Any]) -> str | None:
    """The uuid of the event a canceled event was rescheduled to by this integration, if it was."""
    if event.get("status") != "canceled":
        return None
    reason = str((event.get("cancellation") or {}).get("reason") or "")
    match = _MOVED_TO.fullmatch(reason)
    return str(match.group(1)) if match else None


def appointment(
    event: dict[str, Any],
    invitee: dict[str, Any] | None,
    *,
    zone: str,
    notes_question: str,
    placeholder_domain: str,
    appointment_id: str | None = None,
) -> Appointment:
    """A scheduled event and its invitee as an Appointment; `raw` keeps both."""
    invitee = invitee or {}
    tracking = invitee.get("tracking") or {}
    event_uuid = uuid_of(str(event["uri"])) or str(event["uri"])
    email = str(invitee.get("email") or "") or None
    if email and email.endswith(f"@{placeholder_domain}"):
        email = None  # Our stand-in for a caller who gave no email, not theirs.
    notes = next(
        (
            str(a.get("answer"))
            for a in invitee.get("questions_and_answers") or []
            if a.get("question") == notes_question
        ),
        None,
    )
    return Appointment(
        id=appointment_id or str(tracking.get("utm_content") or event_uuid),
        start=parse_time(str(event["start_time"])).astimezone(zone_info(zone)),
        end=parse_time(str(event["end_time"])).astimezone(zone_info(zone)),
        status="cancelled" if event.get("status") == "canceled" else "booked",
        attendee_name=invitee.get("name"),
        attendee_phone=_phone(invitee),
        attendee_email=email,
        notes=notes,
        provider=PROVIDER,
        raw={"event": event, "invitee": invitee},
    )
