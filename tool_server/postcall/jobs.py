"""The post-call work, one job per integration: CRM, calendar and each follow-up.

`plan` says which jobs a call needs; `run_job` runs one. The jobs live in `crm_job`,
`calendar_job` and `followup_jobs`; what they share (context, failure, provider access) in
`job_kit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tool_server.agents.models import Agent
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
from tool_server.postcall.job_kit import JobContext, JobFailedError

__all__ = [
    "SECONDARY_CRM",
    "JobContext",
    "JobFailedError",
    "catch_hook_payload",
    "note_text",
    "plan",
    "run_job",
    "secondary_crm_job",
]

SECONDARY_CRM = "crm:"


def plan(agent: Agent, followups: FollowUps) -> list[str]:
    """The jobs a call needs: one per connected integration, plus each follow-up turned on.

    Each secondary CRM gets its own job, `crm:<provider>`, so one CRM failing never blocks or
    repeats another.
    """
    connected = set(agent.connections)
    jobs: list[str] = [job for job in ("crm", "calendar") if job in connected]
    if "crm" in connected:
        jobs[1:1] = [secondary_crm_job(c.provider) for c in agent.secondary_connections if c.capability == "crm"]
    if followups.confirmation_sms and "messaging" in connected:
        jobs.append("confirmation_sms")
    if followups.payment_link and {"payments", "messaging"} <= connected:
        jobs.append("payment_link")
    if followups.forward_url:
        jobs.append("forward")
    if followups.team_channel_url:
        jobs.append("team_channel")
    return jobs


def secondary_crm_job(provider: str) -> str:
    """The job writing a call to a secondary CRM."""
    return f"{SECONDARY_CRM}{provider}"


async def run_job(context: JobContext, job: str) -> dict[str, Any]:
    """Do one job; its result is shown on the call record. Raises `JobFailedError`."""
    if job.startswith(SECONDARY_CRM):
        return await secondary_crm_job_run(context, job.removeprefix(SECONDARY_CRM))
    return await _HANDLERS[job](context)


_HANDLERS: dict[str, Callable[[JobContext], Awaitable[dict[str, Any]]]] = {
    "crm": crm_job,
    "calendar": calendar_job,
    "confirmation_sms": confirmation_sms_job,
    "payment_link": payment_link_job,
    "forward": forward_job,
    "team_channel": team_channel_job,
}
