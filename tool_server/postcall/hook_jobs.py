"""Delivering events to REST-hook subscribers: one signed POST, and the call.completed job of each call."""

from __future__ import annotations

from typing import Any

from tool_server.hooks.events import envelope
from tool_server.hooks.sender import HookGoneError, HookRefusedError, HookRetryError, deliver_once
from tool_server.postcall.followup_jobs import catch_hook_payload
from tool_server.postcall.job_kit import JobContext, JobFailedError
from tool_server.services import Services

__all__ = ["HOOK_JOB", "call_completed_hook_job", "send_to_subscriber"]

HOOK_JOB = "hook:"


async def send_to_subscriber(services: Services, subscription_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST `payload` to the subscriber, signed with its secret. A 410 removes the subscription.

    Raises `JobFailedError` (retryable for 5xx, 429, timeouts and refused connections).
    """
    subscription = await services.hooks.get(subscription_id)
    if subscription is None:
        return {"skipped": "the subscription was removed"}
    try:
        status = await deliver_once(
            subscription.target_url,
            subscription.secret,
            payload,
            subscription_id=subscription.id,
            timestamp=int(services.clock().timestamp()),
        )
    except HookGoneError:
        await services.hooks.unsubscribe(None, subscription_id)
        return {"skipped": "the subscriber answered 410 Gone; the subscription was removed"}
    except HookRetryError as error:
        raise JobFailedError(str(error), retryable=True, retry_after=error.retry_after) from None
    except HookRefusedError as error:
        raise JobFailedError(str(error), retryable=False) from None
    return {"status": status, "event_id": payload.get("id")}


async def call_completed_hook_job(context: JobContext, subscription_id: str) -> dict[str, Any]:
    """`call.completed` for this call to one subscriber; the event id is the record's, so it is the same on retry."""
    record = context.record
    at = record.ended_at or record.started_at or context.services.clock()
    payload = envelope(
        "call.completed", f"call.completed:{context.record_id}", context.agent.id, catch_hook_payload(record), at
    )
    return await send_to_subscriber(context.services, subscription_id, payload)
