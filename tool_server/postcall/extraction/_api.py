"""The public surface: whether a call needs extraction, extracting, and applying the result."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import openai
from pydantic import ValidationError

from integrations.common.zones import UnknownZoneError, zone_info
from tool_server.calls.models import AppointmentMention, CallRecord
from tool_server.errors import ToolError
from tool_server.postcall.extraction._answers import (
    Extraction,
    ExtractionSettings,
    RequestedAppointment,
    unknown_fields,
)
from tool_server.postcall.extraction._fallback import fallback
from tool_server.postcall.extraction._model_call import NoAnswerError, ask_model, describe
from tool_server.timeparse import parse_start

__all__ = ["apply", "extract", "needs_extraction"]

# The package's name, so operators filter one logger whichever module logs.
logger = logging.getLogger("tool_server.postcall.extraction")

_RECORD_FIELD = {"requested_appointment": "appointment"}


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


def _start(requested: RequestedAppointment) -> str | None:
    if requested.date is None or requested.time is None or requested.timezone is None:
        return None
    try:
        return parse_start(f"{requested.date}T{requested.time}", zone_info(requested.timezone), "start").isoformat()
    except UnknownZoneError:
        return None
    except ToolError:
        return None  # a wall-clock time the clocks skip: keep date and time, claim no instant


async def extract(
    record: CallRecord, settings: ExtractionSettings, *, today: date, business_timezone: str
) -> Extraction:
    """Extract summary, outcome, sentiment, requested appointment and caller details from the transcript.

    With a configured model, asks it once (the SDK retries once more on timeouts and 5xx). Any failure
    (timeout, HTTP error, invalid JSON, an answer outside the schema, a refusal, an unreadable prompt
    file) is logged as a warning without the transcript and answered by `fallback`: this never raises.
    The fallback runs in a worker thread, so a long transcript never stalls the event loop.
    `today` is the business's local date, against which "tomorrow" and weekday names are resolved.
    """
    if not settings.configured:
        return await _fallback(record, today=today, business_timezone=business_timezone)
    try:
        answer = await ask_model(record, settings, today=today, business_timezone=business_timezone)
    # KeyError and ValueError: a prompt template with an unknown or malformed ${placeholder}.
    except (openai.OpenAIError, ValidationError, NoAnswerError, OSError, KeyError, ValueError) as exc:
        logger.warning("post-call extraction for call %s used the fallback: %s", record.call_id, describe(exc))
        return await _fallback(record, today=today, business_timezone=business_timezone)
    except Exception as exc:
        # The last line of defence: a post-call sync must go on even if the SDK surprises us (a body
        # that is JSON but not a chat completion surfaces as a TypeError from inside the SDK).
        logger.warning(
            "post-call extraction for call %s failed unexpectedly (%s); used the fallback",
            record.call_id,
            type(exc).__name__,
        )
        return await _fallback(record, today=today, business_timezone=business_timezone)
    return Extraction(
        **answer.model_dump(), source="model", unknown=unknown_fields(answer, null_appointment_is_unknown=False)
    )


async def _fallback(record: CallRecord, *, today: date, business_timezone: str) -> Extraction:
    return await asyncio.to_thread(fallback, record, today=today, business_timezone=business_timezone)
