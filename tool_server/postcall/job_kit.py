"""What every post-call job shares: its context, its failure, and the two ways it reaches a provider.

Provider actions go through dispatch with the platform's call id, exactly as a mid-call tool
call does (`call_tool`). So a booking made after the call carries the same idempotency key as
the same booking made during it, a job re-run after a crash replays instead of repeating, and
every action lands in the audit log. What no tool covers goes through `provider_call`, under the
write deadline. Jobs raise `JobFailedError`; the workflow decides whether to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from integrations.common.deadline import deadline_scope
from tool_server.agents.models import Agent
from tool_server.calls.models import CallRecord
from tool_server.dispatch import CallInfo
from tool_server.dispatch.translate import from_exception
from tool_server.errors import ErrorInfo
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services

__all__ = ["JobContext", "JobFailedError", "call_tool", "provider_call"]

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


async def call_tool(
    context: JobContext, name: str, arguments: dict[str, Any], *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Run a catalogue tool for the job under the call's id (or `idempotency_key`); its result, or `JobFailedError`."""
    arguments = {key: value for key, value in arguments.items() if value is not None}
    call = CallInfo(
        transport="postcall",
        call_id=context.record.call_id,
        idempotency_key=idempotency_key,
        record_id=context.record_id,
    )
    outcome = await context.services.dispatcher.execute(context.agent, name, arguments, call)
    if outcome.error is not None:
        raise JobFailedError.of(name, outcome.error)
    assert outcome.result is not None
    return outcome.result


async def provider_call(context: JobContext, action: str, write: Callable[[], Awaitable[T]]) -> T:
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
