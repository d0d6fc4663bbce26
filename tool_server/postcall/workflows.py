"""The durable post-call workflows, on DBOS.

`sync_call` (id `postcall:<agent>:<platform>:<call id>`, so a replayed webhook joins the same
workflow) fills in what the platform left out, plans one job per connected integration and
follow-up, and starts each job as its own child workflow on that integration's own queue. A
job whose provider is down waits on its queue alone; the others carry on.

`sync_job` tries its job up to `postcall_max_attempts` times. Each try is a checkpointed step;
the waits between tries are durable sleeps, doubling from `postcall_retry_base_seconds` and never
shorter than the provider's Retry-After. A crash resumes at the step that was running, and that
step is safe to run twice: every provider write goes through dispatch with the call's id, so it
is deduplicated by the same idempotency key as the mid-call tool, and providers look before
they create.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from tool_server.agents.models import Agent, Capability
from tool_server.calls.models import CallRecord
from tool_server.postcall.budgets import queue_limit
from tool_server.postcall.call_effects import read_call_effects
from tool_server.postcall.extraction import ExtractionSettings, apply, extract, needs_extraction
from tool_server.postcall.followups import FollowUps
from tool_server.postcall.hook_jobs import send_to_subscriber
from tool_server.postcall.jobs import (
    HOOK_JOB,
    SECONDARY_CRM,
    TEXT_JOBS,
    JobContext,
    JobFailedError,
    plan,
    run_job,
)
from tool_server.postcall.late_updates import CRM_UPDATE
from tool_server.postcall.ledger import Status
from tool_server.postcall.quiet_hours import next_allowed, recipient_zone
from tool_server.postcall.receipts import send_receipt
from tool_server.services import Services

__all__ = [
    "HOOKS_QUEUE",
    "Runtime",
    "call_workflow_id",
    "deliver_event",
    "deliver_receipt",
    "job_queue",
    "load_call",
    "set_runtime",
    "start_job",
    "sync_call",
    "sync_job",
]

logger = logging.getLogger(__name__)

CALL_QUEUE = "postcall"
# Every REST-hook delivery, the call's own and the tools' events alike.
HOOKS_QUEUE = "postcall.hooks"
# Jobs that read the record's appointment start only once the calendar job has ended: the note, the
# confirmation text and the forwarded call say what was booked, and a job re-run after a crash reads
# the same record as its first try (the CRM note is found again by its text, so it must not change).
_AFTER_CALENDAR = frozenset(
    {
        "crm",
        "accounting",
        "confirmation_sms",
        "confirmation_whatsapp",
        "confirmation_email",
        "forward",
        "team_summary",
        "workflow_event",
    }
)
_JOB_CAPABILITY: dict[str, Capability] = {
    "crm": "crm",
    "accounting": "accounting",
    "calendar": "calendar",
    "confirmation_sms": "messaging",
    "confirmation_whatsapp": "messaging",
    "sms_fallback": "messaging",
    "confirmation_email": "email",
    "team_summary": "team",
    "workflow_event": "automation",
    "payment_link": "payments",
}


@dataclass
class Runtime:
    """What the workflows in this process run against (one per process, like DBOS itself)."""

    services: Services
    queues: dict[str, Any] = field(default_factory=dict)

    async def queue(self, name: str) -> Any:
        """The named DBOS queue, registered on first use with this process's limits, then kept."""
        if name not in self.queues:
            settings = self.services.settings
            limit = queue_limit(name, settings)
            self.queues[name] = await DBOS.register_queue_async(
                name,
                worker_concurrency=settings.postcall_concurrency,
                polling_interval_sec=settings.postcall_poll_seconds,
                partition_limiter=None if limit is None else {"limit": limit["limit"], "period": limit["period"]},
            )
        return self.queues[name]


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the post-call engine is not started in this process")
    return _runtime


async def load_call(services: Services, record_id: str) -> tuple[CallRecord, Agent] | None:
    """The record and its agent, or None when either is gone."""
    record = await services.calls.by_id(record_id)
    agent = None if record is None or record.agent_id is None else await services.agents.get(record.agent_id)
    return None if record is None or agent is None else (record, agent)


def _after_calendar(job: str) -> bool:
    return job in _AFTER_CALENDAR or job.startswith((SECONDARY_CRM, HOOK_JOB))


def call_workflow_id(record: CallRecord) -> str:
    """One workflow per call: the platform's call id, scoped by agent and platform."""
    return f"postcall:{record.agent_id}:{record.platform}:{record.call_id}"


def job_queue(agent: Agent, job: str) -> str:
    """The queue of the integration doing `job`, e.g. `postcall.crm.hubspot`."""
    if job.startswith(SECONDARY_CRM):
        return f"postcall.crm.{job.removeprefix(SECONDARY_CRM)}"
    if job.startswith(HOOK_JOB):
        return HOOKS_QUEUE
    if job.startswith(CRM_UPDATE):
        return job_queue(agent, "crm")
    capability = _JOB_CAPABILITY.get(job)
    if capability is None:
        return f"postcall.{job}.webhook"
    connection = agent.connections.get(capability)
    return f"postcall.{job}.{connection.provider if connection else 'none'}"


async def start_job(
    record_id: str,
    job: str,
    workflow_id: str,
    queue_name: str,
    agent_id: str,
    *,
    then: list[list[str]] | None = None,
) -> None:
    """Enqueue `job`'s workflow (a no-op when `workflow_id` exists); `then` are [job, queue, agent]
    triples it starts, under ids next to its own, once it has ended."""
    queue = await _current().queue(queue_name)
    # Always keyed by agent: DBOS keeps a queue's limits in the database, so a queue partitioned
    # by another process's settings still finds every job's partition.
    with SetWorkflowID(workflow_id), SetEnqueueOptions(queue_partition_key=agent_id):
        if then:
            await queue.enqueue_async(sync_job, record_id, job, then)
        else:
            await queue.enqueue_async(sync_job, record_id, job)


# -- the call -------------------------------------------------------------------------------------


@DBOS.workflow(name="postcall.sync_call")
async def sync_call(record_id: str) -> list[str]:
    """Plan the call's jobs and start each on its integration's queue. Returns the job names.

    Jobs that read what the calendar job booked are handed to the calendar job, which starts
    them when it ends: this workflow holds its queue slot only while it plans, never while a
    provider answers (waiting here on the calendar job's result cost a slot and a 1 s poll).
    """
    planned = await prepare(record_id)
    base = DBOS.workflow_id
    assert base is not None
    jobs = {job for job, _, _ in planned}
    later = [[job, queue, agent_id] for job, queue, agent_id in planned if _after_calendar(job) and "calendar" in jobs]
    for job, queue_name, agent_id in planned:
        if [job, queue_name, agent_id] not in later:
            then = later if job == "calendar" else None
            await start_job(record_id, job, f"{base}:{job}", queue_name, agent_id, then=then)
    return [job for job, _, _ in planned]


@DBOS.step(name="postcall.prepare", retries_allowed=True, max_attempts=5, interval_seconds=1.0)
async def prepare(record_id: str) -> list[tuple[str, str, str]]:
    """Fill in what the platform left out, then record one pending step per job: (job, queue, agent)."""
    services = _current().services
    loaded = await load_call(services, record_id)
    if loaded is None:
        logger.warning("post-call sync: record %s or its agent is gone; nothing to do", record_id)
        return []
    record, agent = loaded
    # What the call did through our own tools comes first: its booking, the name the caller gave.
    # The three reads are independent: side by side, they cost one round trip's wait.
    effects, followups, subscribers = await asyncio.gather(
        read_call_effects(services.db, agent.id, record.call_id),
        services.followups.get(agent.id),
        services.hooks.of_agent(agent.id, "call.completed"),
    )
    enriched = effects.applied_to(record)
    if enriched is not record:
        record = enriched
        await services.calls.update(record_id, record)
    if needs_extraction(record) and "extraction" not in record.analysis:
        settings = ExtractionSettings.from_settings(services.settings)
        today = (record.ended_at or record.started_at or services.clock()).astimezone(agent.zone).date()
        extraction = await extract(record, settings, today=today, business_timezone=agent.timezone)
        record = apply(record, extraction)
        await services.calls.update(record_id, record)
    jobs = plan(agent, followups, [subscriber.id for subscriber in subscribers])
    await services.ledger.plan(record_id, agent.id, jobs, call_status="syncing" if jobs else "synced")
    return [(job, job_queue(agent, job), agent.id) for job in jobs]


# -- one job ----------------------------------------------------------------------------------------


@DBOS.workflow(name="postcall.sync_job")
async def sync_job(record_id: str, job: str, then: list[list[str]] | None = None) -> str:
    """Try one job until it is done, skipped, or failed for good; then start the `then` jobs.

    Returns the job's status. A text job held for the recipient's quiet hours waits durably (a
    restarted worker resumes the wait, it does not send early) and then tries again.
    """
    settings = _current().services.settings
    max_attempts = settings.postcall_max_attempts
    status, attempt = "failed", 1
    while attempt <= max_attempts:
        outcome = await attempt_job(record_id, job, attempt, attempt == max_attempts)
        status = str(outcome["status"])
        if status == "held":
            await _wait_until(str(outcome["until"]), settings.postcall_quiet_poll_seconds)
            continue
        if status != "retry":
            break
        await DBOS.sleep_async(float(outcome["wait"]))
        attempt += 1
    if then:
        # The calendar job's followers: started whatever it ended as, as when they waited on it.
        base = DBOS.workflow_id
        assert base is not None
        prefix = base.removesuffix(f":{job}")
        for follower, queue_name, *rest in then:
            # [job, queue] from a release before per-agent partitions: the record names the agent.
            agent_id = rest[0] if rest else await _agent_of(record_id)
            await start_job(record_id, follower, f"{prefix}:{follower}", queue_name, agent_id)
    return status


async def _agent_of(record_id: str) -> str:
    record = await _current().services.calls.by_id(record_id)
    return "" if record is None or record.agent_id is None else record.agent_id


async def _wait_until(until: str, poll_seconds: float) -> None:
    """Sleep durably until the server's clock reaches `until` (ISO), looking at it every `poll_seconds`."""
    while True:
        remaining = (datetime.fromisoformat(until) - datetime.fromisoformat(await read_clock())).total_seconds()
        if remaining <= 0:
            return
        await DBOS.sleep_async(min(remaining, poll_seconds))


def _quiet_until(services: Services, record: CallRecord, agent: Agent, followups: FollowUps) -> datetime | None:
    """When a text to the caller may go: None now, else the next allowed minute in their zone."""
    if not record.caller_phone:
        return None
    zone = recipient_zone(record.caller_phone, agent.zone)
    return next_allowed(services.clock(), zone, followups.quiet_hours)


@DBOS.step(name="postcall.clock")
async def read_clock() -> str:
    """The server's clock, checkpointed: a resumed wait compares against what it saw, not a new reading."""
    return _current().services.clock().isoformat()


@DBOS.step(name="postcall.attempt", retries_allowed=False)
async def attempt_job(record_id: str, job: str, attempt: int, last: bool) -> dict[str, Any]:
    """One try of `job`; its outcome is written to the ledger before the step is checkpointed.

    A text job outside the recipient's allowed hours is not tried: `held` until the next allowed minute.
    """
    services = _current().services
    # Independent reads and the attempt's mark side by side: two round trips' wait, not four.
    _, record = await asyncio.gather(
        services.ledger.attempt(record_id, job, attempt, DBOS.workflow_id), services.calls.by_id(record_id)
    )
    agent, followups = (None, None)
    if record is not None and record.agent_id is not None:
        agent, followups = await asyncio.gather(
            services.agents.get(record.agent_id), services.followups.get(record.agent_id)
        )
    if record is None or agent is None or followups is None:
        await services.ledger.finish(record_id, job, "failed", None, "the call record or its agent no longer exists")
        return {"status": "failed"}
    if job in TEXT_JOBS:
        until = _quiet_until(services, record, agent, followups)
        if until is not None:
            zone = recipient_zone(record.caller_phone or "", agent.zone)
            await services.ledger.note_error(
                record_id, job, f"held for quiet hours until {until.isoformat()} ({zone.key}, the recipient's time)"
            )
            return {"status": "held", "until": until.isoformat()}
    context = JobContext(services, agent, record_id, record, followups)
    try:
        result = await run_job(context, job)
    except JobFailedError as failure:
        error = failure
    except Exception as unexpected:
        logger.exception("post-call job %s for %s raised", job, record_id)
        error = JobFailedError(f"unexpected {type(unexpected).__name__}", retryable=True)
    else:
        finished: Status = "skipped" if "skipped" in result else "done"
        await services.ledger.finish(record_id, job, finished, result, None)
        return {"status": finished}
    if error.retryable and not last:
        wait = _backoff(services, attempt, error.retry_after)
        await services.ledger.note_error(record_id, job, f"{error.message} (next try in {wait:.1f} s)")
        return {"status": "retry", "wait": wait}
    await services.ledger.finish(record_id, job, "failed", None, error.message)
    return {"status": "failed"}


def _backoff(services: Services, attempt: int, retry_after: float | None) -> float:
    settings = services.settings
    # Jitter spreads the retries of many calls that failed together.
    doubled = settings.postcall_retry_base_seconds * 2 ** (attempt - 1) * random.uniform(0.9, 1.1)
    return float(min(max(doubled, retry_after or 0.0), settings.postcall_retry_max_seconds))


# -- REST-hook events outside a call's sync --------------------------------------------------------


@DBOS.workflow(name="hooks.deliver")
async def deliver_event(subscription_id: str, payload: dict[str, Any]) -> str:
    """Deliver one event to one subscriber, retried with backoff like a post-call job. Returns the outcome."""
    max_attempts = _current().services.settings.postcall_max_attempts
    status = "failed"
    for attempt in range(1, max_attempts + 1):
        outcome = await attempt_delivery(subscription_id, payload, attempt, attempt == max_attempts)
        status = str(outcome["status"])
        if status != "retry":
            break
        await DBOS.sleep_async(float(outcome["wait"]))
    return status


@DBOS.step(name="hooks.attempt", retries_allowed=False)
async def attempt_delivery(subscription_id: str, payload: dict[str, Any], attempt: int, last: bool) -> dict[str, Any]:
    services = _current().services
    try:
        result = await send_to_subscriber(services, subscription_id, payload)
    except JobFailedError as error:
        if error.retryable and not last:
            return {"status": "retry", "wait": _backoff(services, attempt, error.retry_after)}
        logger.warning("hook delivery %s to %s failed: %s", payload.get("id"), subscription_id, error.message)
        return {"status": "failed"}
    return {"status": "skipped" if "skipped" in result else "done"}


# -- payment receipts, outside any call's sync ---------------------------------------------------------


@DBOS.workflow(name="payments.receipt")
async def deliver_receipt(agent_id: str, provider: str, object_id: str) -> str:
    """Text one payment's receipt, retried with backoff like a post-call job. Returns the outcome."""
    max_attempts = _current().services.settings.postcall_max_attempts
    status = "failed"
    for attempt in range(1, max_attempts + 1):
        outcome = await attempt_receipt(agent_id, provider, object_id, attempt, attempt == max_attempts)
        status = str(outcome["status"])
        if status != "retry":
            break
        await DBOS.sleep_async(float(outcome["wait"]))
    return status


@DBOS.step(name="payments.receipt.attempt", retries_allowed=False)
async def attempt_receipt(agent_id: str, provider: str, object_id: str, attempt: int, last: bool) -> dict[str, Any]:
    services = _current().services
    try:
        result = await send_receipt(services, agent_id, provider, object_id)
    except JobFailedError as error:
        if error.retryable and not last:
            return {"status": "retry", "wait": _backoff(services, attempt, error.retry_after)}
        logger.warning("receipt for %s %s failed: %s", provider, object_id, error.message)
        return {"status": "failed"}
    return {"status": "skipped" if "skipped" in result else "done"}
