"""The follow-up jobs: a confirmation text, a payment link by text, the call forwarded, a team message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from integrations.common.zones import zone_info
from tool_server.calls.models import CallRecord
from tool_server.postcall.calendar_job import start_instant
from tool_server.postcall.call_effects import read_call_effects
from tool_server.postcall.job_kit import JobContext, JobFailedError, call_tool
from tool_server.spoken import spoken_datetime

__all__ = [
    "catch_hook_payload",
    "confirmation_parts",
    "confirmation_sms_job",
    "forward_job",
    "payment_link_job",
    "team_channel_job",
]


def confirmation_parts(context: JobContext, record: CallRecord) -> tuple[str, str]:
    """The confirmation text ("You're booked for …" for a booked appointment, "We have your request for
    …" for one asked for but not booked, a thank-you otherwise) and the time as said in it."""
    appointment = record.appointment
    business = context.agent.name
    start = start_instant(record, context.agent.zone)
    if appointment is not None and appointment.status != "cancelled" and start is not None:
        zone = zone_info(appointment.timezone) if appointment.timezone else context.agent.zone
        local = start.astimezone(zone)
        today = (record.ended_at or record.started_at or datetime.now(UTC)).astimezone(zone).date()
        verb = "You're booked" if appointment.status == "booked" else "We have your request"
        when = spoken_datetime(local, today)
        return f"{business}: {verb} for {when}. Reply STOP to opt out.", when
    return f"Thanks for calling {business}. Reply STOP to opt out.", "your call today"


async def confirmation_sms_job(context: JobContext) -> dict[str, Any]:
    if not context.record.caller_phone:
        return {"skipped": "no caller phone to text"}
    body, _ = confirmation_parts(context, context.record)
    sent = await call_tool(context, "send_sms", {"to": context.record.caller_phone, "body": body})
    return {"message_id": sent["message"]["message_id"], "status": sent["message"]["status"]}


async def payment_link_job(context: JobContext) -> dict[str, Any]:
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
        sent = await call_tool(context, "send_sms", {"to": context.record.caller_phone, "body": body})
        return {"payment_link_id": during.payment_link_id, "message_id": sent["message"]["message_id"]}
    created = await call_tool(
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
    sent = await call_tool(context, "send_sms", {"to": context.record.caller_phone, "body": body})
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


async def forward_job(context: JobContext) -> dict[str, Any]:
    url = str(context.followups.forward_url)
    status = await _post(url, catch_hook_payload(context.record), f"call:{context.record_id}")
    return {"status": status}


async def team_channel_job(context: JobContext) -> dict[str, Any]:
    record = context.record
    caller = record.caller_name or record.caller_phone or "an unknown caller"
    outcome = record.outcome or "unknown"
    text = f"{context.agent.name}: call from {caller}, outcome {outcome}. {record.summary or ''}".strip()
    status = await _post(str(context.followups.team_channel_url), {"text": text}, f"call:{context.record_id}:team")
    return {"status": status}
