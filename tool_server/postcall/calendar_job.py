"""The calendar job: link the booking the call made, or book what the caller asked for, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.capabilities import Appointment, CalendarProvider
from integrations.common.zones import zone_info
from tool_server.calls.models import AppointmentMention, CallRecord
from tool_server.errors import ToolError
from tool_server.postcall.job_kit import JobContext, JobFailedError, call_tool, provider_call
from tool_server.timeparse import parse_start

__all__ = ["calendar_job", "start_instant"]


def _requested_start(record: CallRecord) -> str | None:
    appointment = record.appointment
    if appointment is None:
        return None
    if appointment.start:
        return appointment.start
    if appointment.date and appointment.time:
        return f"{appointment.date}T{appointment.time}"
    return None


def start_instant(record: CallRecord, zone: ZoneInfo) -> datetime | None:
    """The appointment's start as an instant (a bare local time read in its zone or the business's)."""
    text = _requested_start(record)
    appointment = record.appointment
    if text is None or appointment is None:
        return None
    try:
        return parse_start(text, zone_info(appointment.timezone) if appointment.timezone else zone, "start")
    except (ToolError, ValueError):
        return None


async def _already_in_calendar(context: JobContext, calendar: CalendarProvider) -> Appointment | None:
    """The booked appointment the call reported, found in the calendar: by its id, else by caller and start."""
    record, appointment = context.record, context.record.appointment
    assert appointment is not None
    if appointment.appointment_id:
        appointment_id = appointment.appointment_id
        try:
            return await provider_call(context, "get appointment", lambda: calendar.get(appointment_id))
        except JobFailedError as failure:
            if "NOT_FOUND" in failure.message:
                return None
            raise
    start = start_instant(record, context.agent.zone)
    if start is None or not (record.caller_phone or record.caller_email):
        return None
    matches = await provider_call(
        context,
        "find appointments",
        lambda: calendar.find(phone=record.caller_phone, email=record.caller_email, since=start - timedelta(minutes=1)),
    )
    return next((found for found in matches if abs((found.start - start).total_seconds()) < 60), None)


async def calendar_job(context: JobContext) -> dict[str, Any]:
    """Link the booking the call made, or book the one it asked for, and put it on the call record.

    The jobs that read the record's appointment (the CRM note, the confirmation text, the
    forwarded call) start only once this job has ended, so each of them, however often it is
    re-run after a crash, reads the same record and writes the same thing.
    """
    record, appointment = context.record, context.record.appointment
    if appointment is None:
        return {"skipped": "the call neither booked nor asked for an appointment"}
    if appointment.status == "cancelled":
        return {"skipped": "the appointment booked during the call was cancelled during it"}
    if appointment.status == "booked":
        calendar = context.services.providers.for_agent(context.agent).calendar()
        assert isinstance(calendar, CalendarProvider)
        found = await _already_in_calendar(context, calendar)
        if found is not None:
            # Booked during the call: link it to the caller, never book it again.
            zone = context.agent.zone
            confirmed = AppointmentMention(
                status="booked",
                appointment_id=found.id,
                start=found.start.astimezone(zone).isoformat(),
                timezone=zone.key,
                title=appointment.title,
            )
            await context.services.calls.set_appointment(context.record_id, confirmed)
            return {
                "appointment_id": found.id,
                "status": found.status,
                "linked_to": record.caller_phone or record.caller_email,
                "booked_during_call": True,
            }
        if appointment.appointment_id:
            missing = f"appointment {appointment.appointment_id} is not in the calendar"
            raise JobFailedError(missing, retryable=False)
        # Reported as booked elsewhere but not in the calendar this agent connected: book it there.
    start = _requested_start(record)
    if start is None:
        return {"skipped": "the caller asked for an appointment without a date and time"}
    booked = await call_tool(
        context,
        "book_appointment",
        {
            "start": start,
            "timezone": appointment.timezone,
            "duration_minutes": appointment.duration_minutes,
            "caller_name": record.caller_name or _caller_label(record),
            "caller_phone": record.caller_phone,
            "caller_email": record.caller_email,
            "notes": appointment.title,
        },
    )
    made = booked["appointment"]
    confirmed = AppointmentMention(
        status="booked",
        appointment_id=made["appointment_id"],
        start=made["start"],
        timezone=made["timezone"],
        title=appointment.title,
        duration_minutes=appointment.duration_minutes,
    )
    await context.services.calls.set_appointment(context.record_id, confirmed)
    return {"appointment_id": made["appointment_id"], "start": made["start"]}


def _caller_label(record: CallRecord) -> str:
    """A booking's name when the call never learned the caller's: 'Caller ending 42'."""
    digits = "".join(character for character in record.caller_phone or "" if character.isdigit())
    return f"Caller ending {digits[-2:]}" if len(digits) >= 2 else "Caller"
