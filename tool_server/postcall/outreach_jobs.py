"""The follow-ups through the newer channels: a WhatsApp or email confirmation, the team's call summary,
and the call handed to the business's automation. Each goes through a catalogue tool with the call's id."""

from __future__ import annotations

from typing import Any

from tool_server.errors import ErrorCode
from tool_server.postcall.followup_jobs import catch_hook_payload, confirmation_parts
from tool_server.postcall.job_kit import JobContext, JobFailedError, call_tool

__all__ = [
    "confirmation_email_job",
    "confirmation_whatsapp_job",
    "sms_fallback_text",
    "team_summary_job",
    "workflow_event_job",
]


async def confirmation_whatsapp_job(context: JobContext) -> dict[str, Any]:
    """Free text inside the caller's WhatsApp window, the agent's template outside it, SMS without one."""
    phone = context.record.caller_phone
    if not phone:
        return {"skipped": "no caller phone to message"}
    text, when = confirmation_parts(context, context.record)
    arguments: dict[str, Any] = {"to": phone, "body": text}
    template = context.followups.whatsapp_template
    if template:
        arguments |= {"template": template, "variables": {"1": context.agent.name, "2": when}}
    try:
        sent = await call_tool(context, "send_whatsapp", arguments)
    except JobFailedError as failure:
        if ErrorCode.WHATSAPP_WINDOW_CLOSED.value not in failure.message:
            raise
        # Outside the window with no template to send: the confirmation still reaches the caller.
        texted = await call_tool(context, "send_sms", {"to": phone, "body": text})
        return {
            "channel": "sms",
            "reason": "outside the WhatsApp window",
            "message_id": texted["message"]["message_id"],
        }
    return {"channel": "whatsapp", "sent_as": sent["sent_as"], "message_id": sent["message"]["message_id"]}


def sms_fallback_text(context: JobContext) -> str:
    """The SMS sent when a WhatsApp confirmation failed: the same confirmation."""
    return confirmation_parts(context, context.record)[0]


async def confirmation_email_job(context: JobContext) -> dict[str, Any]:
    email = context.record.caller_email
    if not email:
        return {"skipped": "no caller email address"}
    text, _ = confirmation_parts(context, context.record)
    sent = await call_tool(
        context,
        "send_email",
        {
            "to": email,
            "to_name": context.record.caller_name,
            "subject": f"{context.agent.name}: your call with us",
            "text": text.removesuffix(" Reply STOP to opt out."),
        },
    )
    return {"message_id": sent["message"]["message_id"], "status": sent["message"]["status"]}


async def team_summary_job(context: JobContext) -> dict[str, Any]:
    record = context.record
    caller = record.caller_name or record.caller_phone or "an unknown caller"
    summary = record.summary or "No summary."
    details = {
        "Outcome": record.outcome,
        "Appointment": confirmation_parts(context, record)[1] if record.appointment else None,
        "Email": record.caller_email,
    }
    posted = await call_tool(
        context,
        "notify_team",
        {
            "text": f"Call from {caller}: {summary}"[:2000],
            "caller_name": record.caller_name,
            "caller_phone": record.caller_phone,
            "details": {label: value[:2000] for label, value in details.items() if value},
        },
    )
    return {"post_id": posted["post"]["post_id"], "channel": posted["post"]["channel"]}


async def workflow_event_job(context: JobContext) -> dict[str, Any]:
    data = {key: value for key, value in _flat(catch_hook_payload(context.record)).items() if value is not None}
    run = await call_tool(context, "trigger_workflow", {"event": "call.completed", "data": data})
    return {"run_id": run["run"]["run_id"], "status": run["run"]["status"]}


def _flat(payload: dict[str, Any]) -> dict[str, Any]:
    """One level, as the tool takes it (and Zapier shows it): nested values become `outer__inner`."""
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                if not isinstance(item, dict | list):
                    flat[f"{key}__{inner}"] = item
        elif not isinstance(value, list):
            flat[key] = value[:2000] if isinstance(value, str) else value
    return flat
