"""The post-call work, one job per integration: CRM, calendar and each follow-up.

`plan` says which jobs a call needs; `run_job` runs one. The jobs live in `crm_job`,
`calendar_job` and `followup_jobs`; what they share (context, failure, provider access) in
`job_kit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tool_server.agents.models import Agent
from tool_server.postcall.accounting_job import accounting_job
from tool_server.postcall.calendar_job import calendar_job
from tool_server.postcall.crm_job import crm_job, note_text, secondary_crm_job_run
from tool_server.postcall.followup_jobs import (
    catch_hook_payload,
    confirmation_sms_job,
    forward_job,
    payment_link_job,
    team_channel_job,
)
from tool_server.postcall.followups import FollowUps
from tool_server.postcall.hook_jobs import HOOK_JOB, call_completed_hook_job
from tool_server.postcall.job_kit import JobContext, JobFailedError, call_tool
from tool_server.postcall.late_updates import CRM_UPDATE, crm_update_job
from tool_server.postcall.outreach_jobs import (
    confirmation_email_job,
    confirmation_whatsapp_job,
    sms_fallback_text,
    team_summary_job,
    workflow_event_job,
)

__all__ = [
    "HOOK_JOB",
    "SECONDARY_CRM",
    "SMS_FALLBACK",
    "TEXT_JOBS",
    "JobContext",
    "JobFailedError",
    "catch_hook_payload",
    "note_text",
    "plan",
    "run_job",
    "secondary_crm_job",
]

SECONDARY_CRM = "crm:"
# Planned only when a WhatsApp confirmation turns failed (a delivery callback), once per call.
SMS_FALLBACK = "sms_fallback"
# The jobs that text a person: they wait for the recipient's allowed hours.
TEXT_JOBS = frozenset({"confirmation_sms", "confirmation_whatsapp", "payment_link", SMS_FALLBACK})


def plan(agent: Agent, followups: FollowUps, hook_subscriptions: list[str] | None = None) -> list[str]:
    """The jobs a call needs: one per connected integration, plus each follow-up turned on.

    Each secondary CRM gets its own job, `crm:<provider>`, so one CRM failing never blocks or
    repeats another; each `call.completed` subscriber its own `hook:<subscription id>`.
    """
    connected = set(agent.connections)
    jobs: list[str] = [job for job in ("crm", "calendar") if job in connected]
    if "crm" in connected:
        jobs[1:1] = [secondary_crm_job(c.provider) for c in agent.secondary_connections if c.capability == "crm"]
    if "accounting" in connected:
        jobs.append("accounting")
    if followups.confirmation_sms and "messaging" in connected:
        jobs.append("confirmation_sms")
    if followups.confirmation_whatsapp and "messaging" in connected:
        jobs.append("confirmation_whatsapp")
    if followups.confirmation_email and "email" in connected:
        jobs.append("confirmation_email")
    if followups.payment_link and {"payments", "messaging"} <= connected:
        jobs.append("payment_link")
    if followups.forward_url:
        jobs.append("forward")
    if followups.team_channel_url:
        jobs.append("team_channel")
    if followups.team_summary and "team" in connected:
        jobs.append("team_summary")
    if followups.workflow_event and "automation" in connected:
        jobs.append("workflow_event")
    jobs += [f"{HOOK_JOB}{subscription}" for subscription in hook_subscriptions or ()]
    return jobs


def secondary_crm_job(provider: str) -> str:
    """The job writing a call to a secondary CRM."""
    return f"{SECONDARY_CRM}{provider}"


async def run_job(context: JobContext, job: str) -> dict[str, Any]:
    """Do one job; its result is shown on the call record. Raises `JobFailedError`."""
    if job.startswith(SECONDARY_CRM):
        return await secondary_crm_job_run(context, job.removeprefix(SECONDARY_CRM))
    if job.startswith(HOOK_JOB):
        return await call_completed_hook_job(context, job.removeprefix(HOOK_JOB))
    if job.startswith(CRM_UPDATE):
        return await crm_update_job(context, job)
    return await _HANDLERS[job](context)


async def sms_fallback_job(context: JobContext) -> dict[str, Any]:
    """The confirmation by SMS, after the WhatsApp one failed (say, 63016: outside the window)."""
    if not context.record.caller_phone:
        return {"skipped": "no caller phone to text"}
    sent = await call_tool(context, "send_sms", {"to": context.record.caller_phone, "body": sms_fallback_text(context)})
    return {"message_id": sent["message"]["message_id"], "status": sent["message"]["status"]}


_HANDLERS: dict[str, Callable[[JobContext], Awaitable[dict[str, Any]]]] = {
    "crm": crm_job,
    "accounting": accounting_job,
    "calendar": calendar_job,
    "confirmation_sms": confirmation_sms_job,
    "payment_link": payment_link_job,
    "forward": forward_job,
    "team_channel": team_channel_job,
    "confirmation_whatsapp": confirmation_whatsapp_job,
    "confirmation_email": confirmation_email_job,
    "team_summary": team_summary_job,
    "workflow_event": workflow_event_job,
    SMS_FALLBACK: sms_fallback_job,
}
