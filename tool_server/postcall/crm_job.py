"""The CRM job: find or create the caller's contact, write the call note, log the call once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from integrations.capabilities import CallActivity
from tool_server.calls.models import CallRecord
from tool_server.postcall.job_kit import JobContext, call_tool, provider_call
from tool_server.store.tables import ToolCallRow

__all__ = ["crm_job", "note_text", "secondary_crm_job_run"]


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


async def crm_job(context: JobContext) -> dict[str, Any]:
    """The primary CRM: the same tools, under the same call id, as the call itself used."""
    return await _sync_contact(context, keys=None)


async def secondary_crm_job_run(context: JobContext, provider: str) -> dict[str, Any]:
    """A secondary CRM: the primary's work, done in this CRM, under keys of its own.

    The tools run as if this CRM were the agent's primary, each with an idempotency key naming
    the connection: the primary's answers under the call id are never replayed here, and this
    CRM's own are replayed when its job is retried or resumed.
    """
    connection = next(
        (c for c in context.agent.secondary_connections if c.capability == "crm" and c.provider == provider), None
    )
    if connection is None:
        return {"skipped": f"{provider} is no longer connected as a CRM"}
    scoped = replace(context, agent=context.agent.with_primary(connection))
    return await _sync_contact(scoped, keys=f"postcall:{context.record.call_id}:{connection.id or provider}")


async def _sync_contact(context: JobContext, *, keys: str | None) -> dict[str, Any]:
    record = context.record
    if not record.caller_phone and not record.caller_email:
        return {"skipped": "the call reported neither a phone nor an email to match a contact on"}
    # create_contact looks first (phone, then email) and fills in what the call learned.
    saved = await call_tool(
        context,
        "create_contact",
        {
            "contact_name": record.caller_name,
            "contact_phone": record.caller_phone,
            "contact_email": record.caller_email,
        },
        idempotency_key=f"{keys}:create_contact" if keys else None,
    )
    contact_id = saved["contact"]["contact_id"]
    tools = await _tools_called(context)
    text = note_text(record, tools, context.agent.zone)
    note = await call_tool(
        context,
        "add_note",
        {"contact_id": contact_id, "note": text},
        idempotency_key=f"{keys}:add_note" if keys else None,
    )
    result = {"contact_id": contact_id, "contact_created": saved["created"], "note_id": note["note"]["note_id"]}
    call_log = context.services.providers.for_agent(context.agent).contacts().call_log
    if call_log is not None and record.started_at is not None:
        # The CRM has call activities (HubSpot calls, Salesforce call tasks): log the call there too.
        activity = CallActivity(
            title=f"Call {record.call_id} ({record.platform})",
            body=text,
            started_at=record.started_at,
            duration_seconds=record.duration_seconds,
            direction=record.direction,
            caller_phone=record.caller_phone,
            recording_url=record.recording_url,
        )
        logged = await provider_call(context, "log_call", lambda: call_log.log_call(contact_id, activity))
        result["call_activity_id"] = logged.id
    return result
