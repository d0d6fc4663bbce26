"""The post-call work, one job per integration: CRM, calendar and each follow-up.

Provider actions go through dispatch with the platform's call id, exactly as a mid-call tool
call does. So a booking made after the call carries the same idempotency key as the same
booking made during it, a job re-run after a crash replays instead of repeating, and every
action lands in the audit log. Jobs raise `JobFailedError`; the workflow decides whether to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from integrations.capabilities import Appointment, CalendarProvider, CallActivity, CallActivityLog
from integrations.common.deadline import deadline_scope
from integrations.common.zones import zone_info
from tool_server.agents.models import Agent
from tool_server.calls.models import AppointmentMention, CallRecord
from tool_server.dispatch import CallInfo
from tool_server.dispatch.translate import from_exception
from tool_server.errors import ErrorInfo, ToolError
from tool_server.postcall.call_effects import read_call_effects
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.spoken import spoken_datetime
from tool_server.store.tables import ToolCallRow
from tool_server.timeparse import parse_start

__all__ = ["JobContext", "JobFailedError", "plan", "run_job"]

T = TypeVar("T")


class JobFailedError(Exception):
    """A job did not finish. `retryable` failures are tried again after `retry_after` or a backoff."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after

    @classmethod
    def of(cls, action: str, error: ErrorInfo) -> JobFailedError:
        """The failure of `action` from the error dispatch would answer (code, retryable, Retry-After)."""
        retry_after = error.details.get("retry_after")
        return cls(
            f"{action}: {error.code.value}: {error.message}",
            retryable=error.retryable,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )


@dataclass(frozen=True)
class JobContext:
    services: Services
    agent: Agent
    record_id: str
    record: CallRecord
    followups: FollowUps


def plan(agent: Agent, followups: FollowUps) -> list[str]:
    """The jobs a call needs: one per connected integration, plus each follow-up turned on."""
    connected = set(agent.connections)
    jobs: list[str] = [job for job in ("crm", "calendar") if job in connected]
    if followups.confirmation_sms and "messaging" in connected:
        jobs.append("confirmation_sms")
    if followups.payment_link and {"payments", "messaging"} <= connected:
        jobs.append("payment_link")
    if followups.forward_url:
        jobs.append("forward")
    if followups.team_channel_url:
        jobs.append("team_channel")
    return jobs


async def run_job(context: JobContext, job: str) -> dict[str, Any]:
    """Do one job; its result is shown on the call record. Raises `JobFailedError`."""
    return await _HANDLERS[job](context)


async def _tool(context: JobContext, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    arguments = {key: value for key, value in arguments.items() if value is not None}
    call = CallInfo(transport="postcall", call_id=context.record.call_id)
    outcome = await context.services.dispatcher.execute(context.agent, name, arguments, call)
    if outcome.error is not None:
        raise JobFailedError.of(name, outcome.error)
    assert outcome.result is not None
    return outcome.result


async def _tools_called(context: JobContext) -> list[str]:
    """'book_appointment: OK' for each tool the agent called during the call (from the audit log)."""
    await context.services.audit.flush()
    query = (
        select(ToolCallRow.tool, ToolCallRow.outcome)
        .where(
            ToolCallRow.agent_id == context.agent.id,
            ToolCallRow.call_id == context.record.call_id,
            ToolCallRow.transport != "postcall",
        )
        .order_by(ToolCallRow.id)
    )
    rows = await context.services.db.run(lambda session: session.execute(query).all())
    return [f"{tool}: {outcome}" for tool, outcome in rows]


def _when(record: CallRecord, zone: ZoneInfo) -> str:
    if record.started_at is None:
        return "time unknown"
    local = record.started_at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {zone.key}"


def note_text(record: CallRecord, tools: list[str], zone: ZoneInfo) -> str:
    """The call note: outcome, summary, sentiment, duration, recording, an excerpt, tools used."""
    duration = (
        f"{int(record.duration_seconds // 60)}m {int(record.duration_seconds % 60)}s"
        if record.duration_seconds
        else "unknown"
    )
    direction = record.direction or "direction unknown"
    sentiment = record.sentiment or "unknown"
    lines = [
        f"Call {record.call_id} via {record.platform} ({direction}), {_when(record, zone)}",
        f"Outcome: {record.outcome or 'unknown'} | Sentiment: {sentiment} | Duration: {duration}",
        f"Summary: {record.summary or 'none'}",
    ]
    if record.recording_url:
        lines.append(f"Recording: {record.recording_url}")
    if record.appointment is not None:
        appointment = record.appointment
        when = appointment.start or " ".join(filter(None, [appointment.date, appointment.time])) or "time unknown"
        reference = f" (id {appointment.appointment_id})" if appointment.appointment_id else ""
        lines.append(f"Appointment {appointment.status}: {when}{reference}")
    if tools:
        lines.append("Tools used: " + "; ".join(tools))
    excerpt = [f"{turn.speaker.title()}: {turn.text[:200]}" for turn in record.transcript if turn.text][:8]
    if excerpt:
        lines.append("Transcript excerpt:")
        lines.extend(excerpt)
    return "\n".join(lines)[:4900]


async def _crm(context: JobContext) -> dict[str, Any]:
    record = context.record
    if not record.caller_phone and not record.caller_email:
        return {"skipped": "the call reported neither a phone nor an email to match a contact on"}
    # create_contact looks first (phone, then email) and fills in what the call learned.
    saved = await _tool(
        context,
        "create_contact",
        {
            "contact_name": record.caller_name,
            "contact_phone": record.caller_phone,
            "contact_email": record.caller_email,
        },
    )
    contact_id = saved["contact"]["contact_id"]
    tools = await _tools_called(context)
    text = note_text(record, tools, context.agent.zone)
    note = await _tool(context, "add_note", {"contact_id": contact_id, "note": text})
    result = {"contact_id": contact_id, "contact_created": saved["created"], "note_id": note["note"]["note_id"]}
    crm = context.services.providers.for_agent(context.agent).crm()
    if isinstance(crm, CallActivityLog) and record.started_at is not None:
        # The CRM has call activities (HubSpot): log the call on the contact's timeline too.
        activity = CallActivity(
            title=f"Call {record.call_id} ({record.platform})",
            body=text,
            started_at=record.started_at,
            duration_seconds=record.duration_seconds,
            direction=record.direction,
            caller_phone=record.caller_phone,
            recording_url=record.recording_url,
        )
        logged = await _provider_write(context, "log_call", lambda: crm.log_call(contact_id, activity))
        result["call_activity_id"] = logged.id
    return result


async def _provider_write(context: JobContext, action: str, write: Callable[[], Awaitable[T]]) -> T:
    """A provider call made by the job itself (no tool covers it), under the write deadline."""
    deadline = context.services.dispatcher.deadlines.write_seconds
    try:
        with deadline_scope(deadline):
            async with asyncio.timeout(deadline):
                return await write()
    except TimeoutError:
        raise JobFailedError(f"{action}: did not finish within {deadline:g} s", retryable=True) from None
    except Exception as error:
        raise JobFailedError.of(action, from_exception(error, action).info()) from None


def _requested_start(record: CallRecord) -> str | None:
    appointment = record.appointment
    if appointment is None:
        return None
    if appointment.start:
        return appointment.start
    if appointment.date and appointment.time:
        return f"{appointment.date}T{appointment.time}"
    return None


def _start_instant(record: CallRecord, zone: ZoneInfo) -> datetime | None:
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
            return await _provider_write(context, "get appointment", lambda: calendar.get(appointment_id))
        except JobFailedError as failure:
            if "NOT_FOUND" in failure.message:
                return None
            raise
    start = _start_instant(record, context.agent.zone)
    if start is None or not (record.caller_phone or record.caller_email):
        return None
    matches = await _provider_write(
        context,
        "find appointments",
        lambda: calendar.find(phone=record.caller_phone, email=record.caller_email, since=start - timedelta(minutes=1)),
    )
    return next((found for found in matches if abs((found.start - start).total_seconds()) < 60), None)


async def _calendar(context: JobContext) -> dict[str, Any]:
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
            await _remember(context, found, appointment.title)
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
    booked = await _tool(
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
    await context.services.calls.set_appointment(
        context.record_id,
        AppointmentMention(
            status="booked",
            appointment_id=made["appointment_id"],
            start=made["start"],
            timezone=made["timezone"],
            title=appointment.title,
            duration_minutes=appointment.duration_minutes,
        ),
    )
    return {"appointment_id": made["appointment_id"], "start": made["start"]}


async def _remember(context: JobContext, found: Appointment, title: str | None) -> None:
    """Keep the confirmed appointment on the call record (the confirmation text reads it there)."""
    zone = context.agent.zone
    await context.services.calls.set_appointment(
        context.record_id,
        AppointmentMention(
            status="booked",
            appointment_id=found.id,
            start=found.start.astimezone(zone).isoformat(),
            timezone=zone.key,
            title=title,
        ),
    )


def _caller_label(record: CallRecord) -> str:
    """A booking's name when the call never learned the caller's: 'Caller ending 42'."""
    digits = "".join(character for character in record.caller_phone or "" if character.isdigit())
    return f"Caller ending {digits[-2:]}" if len(digits) >= 2 else "Caller"


def _confirmation(context: JobContext) -> str:
    """The text: "You're booked for …" for a booked appointment, "We have your request for …" for one
    asked for but not booked, a thank-you otherwise."""
    record, appointment = context.record, context.record.appointment
    business = context.agent.name
    start = _start_instant(record, context.agent.zone)
    if appointment is not None and appointment.status != "cancelled" and start is not None:
        zone = zone_info(appointment.timezone) if appointment.timezone else context.agent.zone
        local = start.astimezone(zone)
        today = (record.ended_at or record.started_at or datetime.now(UTC)).astimezone(zone).date()
        verb = "You're booked" if appointment.status == "booked" else "We have your request"
        return f"{business}: {verb} for {spoken_datetime(local, today)}. Reply STOP to opt out."
    return f"Thanks for calling {business}. Reply STOP to opt out."


async def _confirmation_sms(context: JobContext) -> dict[str, Any]:
    if not context.record.caller_phone:
        return {"skipped": "no caller phone to text"}
    sent = await _tool(context, "send_sms", {"to": context.record.caller_phone, "body": _confirmation(context)})
    return {"message_id": sent["message"]["message_id"], "status": sent["message"]["status"]}


async def _payment_link(context: JobContext) -> dict[str, Any]:
    payment = context.followups.payment_link
    assert payment is not None
    if not context.record.caller_phone:
        return {"skipped": "no caller phone to text the link to"}
    during = await read_call_effects(context.services.db, context.agent.id, context.record.call_id)
    if during.payment_link_id and during.payment_link_texted:
        return {
            "skipped": "a payment link was made and texted during the call",
            "payment_link_id": during.payment_link_id,
        }
    if during.payment_link_id and during.payment_link_url:
        # Made during the call but never texted: send that link rather than make a second one.
        body = f"{context.agent.name}: your payment link: {during.payment_link_url}"
        sent = await _tool(context, "send_sms", {"to": context.record.caller_phone, "body": body})
        return {"payment_link_id": during.payment_link_id, "message_id": sent["message"]["message_id"]}
    created = await _tool(
        context,
        "create_payment_link",
        {
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
            "description": payment.description,
            "customer_name": context.record.caller_name,
            "customer_phone": context.record.caller_phone,
            "customer_email": context.record.caller_email,
        },
    )
    link = created["payment_link"]
    body = f"{context.agent.name}: {payment.description}, {link['amount_spoken']}: {link['url']}"
    sent = await _tool(context, "send_sms", {"to": context.record.caller_phone, "body": body})
    return {"payment_link_id": link["payment_link_id"], "message_id": sent["message"]["message_id"]}


def catch_hook_payload(record: CallRecord) -> dict[str, Any]:
    """The call in the flat shape Zapier catch hooks and /v1/calls use."""
    appointment = record.appointment
    return {
        "call_id": record.call_id,
        "platform": record.platform,
        "agent_id": record.agent_id,
        "customer_name": record.caller_name,
        "customer_phone": record.caller_phone,
        "customer_email": record.caller_email,
        "call_outcome": record.outcome,
        "call_summary": record.summary,
        "call_sentiment": record.sentiment,
        "transcript": "\n".join(f"{turn.speaker}: {turn.text}" for turn in record.transcript),
        "recording_url": record.recording_url,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
        "duration_seconds": record.duration_seconds,
        "appointment_booked": appointment.model_dump(exclude_none=True) if appointment else None,
    }


async def _post(url: str, payload: dict[str, Any], idempotency_key: str) -> int:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, json=payload, headers={"Idempotency-Key": idempotency_key})
    except httpx.HTTPError as error:
        raise JobFailedError(f"POST to the webhook failed ({type(error).__name__})", retryable=True) from None
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After")
        raise JobFailedError(
            "the webhook is rate limiting",
            retryable=True,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if response.status_code >= 500:
        raise JobFailedError(f"the webhook answered {response.status_code}", retryable=True)
    if response.status_code >= 400:
        raise JobFailedError(f"the webhook refused the call with {response.status_code}", retryable=False)
    return response.status_code


async def _forward(context: JobContext) -> dict[str, Any]:
    url = str(context.followups.forward_url)
    status = await _post(url, catch_hook_payload(context.record), f"call:{context.record_id}")
    return {"status": status}


async def _team_channel(context: JobContext) -> dict[str, Any]:
    record = context.record
    caller = record.caller_name or record.caller_phone or "an unknown caller"
    outcome = record.outcome or "unknown"
    text = f"{context.agent.name}: call from {caller}, outcome {outcome}. {record.summary or ''}".strip()
    status = await _post(str(context.followups.team_channel_url), {"text": text}, f"call:{context.record_id}:team")
    return {"status": status}


_HANDLERS: dict[str, Callable[[JobContext], Awaitable[dict[str, Any]]]] = {
    "crm": _crm,
    "calendar": _calendar,
    "confirmation_sms": _confirmation_sms,
    "payment_link": _payment_link,
    "forward": _forward,
    "team_channel": _team_channel,
}
