"""Dispatch: the one path every tool call takes, whatever the transport.

It validates and normalizes the arguments, applies the deadline, makes writes idempotent,
writes the audit record and turns every failure into a stable code with a speakable message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from integrations.common.deadline import deadline_scope
from tool_server.agents.models import Agent
from tool_server.clock import Clock
from tool_server.dispatch.audit import AuditEntry, AuditLog
from tool_server.dispatch.guard import MAX_ARGUMENTS, screen_arguments
from tool_server.dispatch.idempotency import Claim, IdempotencyStore, Replay, derive_key
from tool_server.dispatch.translate import from_exception, from_problems, problems_of
from tool_server.errors import ErrorCode, ErrorInfo, ToolError
from tool_server.message_log import MessageLog
from tool_server.payment_log import PaymentLog
from tool_server.providers import ProviderRegistry
from tool_server.slots.store import SlotHolds
from tool_server.tools.base import ToolContext, ToolSpec
from tool_server.tools.catalogue import Catalogue

__all__ = ["CallInfo", "Deadlines", "Dispatcher", "ToolOutcome"]

logger = logging.getLogger(__name__)

# Outcomes a retry could change are not remembered: the next attempt runs afresh.
# Failures after which the provider may still have done it: the retry is told to look first.
_MAYBE_DONE = {ErrorCode.TIMEOUT, ErrorCode.PROVIDER_ERROR, ErrorCode.INTERNAL_ERROR}
_NOT_REMEMBERED = {
    ErrorCode.TIMEOUT,
    ErrorCode.PROVIDER_ERROR,
    ErrorCode.RATE_LIMITED,
    ErrorCode.NOT_CONNECTED,
    ErrorCode.INTERNAL_ERROR,
}


@dataclass(frozen=True)
class CallInfo:
    """Where a tool call came from. `call_id` is the voice platform's call, when there is one."""

    transport: str
    call_id: str | None = None
    idempotency_key: str | None = None
    # The caller's number as the voice platform reports it; fills a tool's missing caller phone.
    caller_phone: str | None = None
    # The call record a post-call job acts for, so what it sends can be traced back to the call.
    record_id: str | None = None


@dataclass(frozen=True)
class Deadlines:
    read_seconds: float = 5.0
    write_seconds: float = 10.0
    per_tool: dict[str, float] | None = None

    def for_tool(self, spec: ToolSpec[Any, Any]) -> float:
        if self.per_tool and spec.name in self.per_tool:
            return self.per_tool[spec.name]
        return self.read_seconds if spec.read_only else self.write_seconds


class ToolOutcome(BaseModel):
    """A tool call's answer: `result` (the tool's output) or `error`, never both."""

    tool: str
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def speech(self) -> str:
        if self.error is not None:
            return self.error.speech
        assert self.result is not None
        return str(self.result.get("speech", ""))

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"replayed"})


# Told of each write that succeeded (not replays): (agent, tool, result, call). Hooks subscribe here.
ToolObserver = Callable[[Agent, str, dict[str, Any], CallInfo], Awaitable[None]]


class Dispatcher:
    """Runs catalogue tools for an agent."""

    def __init__(
        self,
        catalogue: Catalogue,
        providers: ProviderRegistry,
        idempotency: IdempotencyStore,
        audit: AuditLog,
        clock: Clock,
        deadlines: Deadlines,
        messages: MessageLog | None = None,
        holds: SlotHolds | None = None,
        payments: PaymentLog | None = None,
    ) -> None:
        self.catalogue = catalogue
        self._payments = payments
        self._messages = messages
        self._holds = holds
        self._providers = providers
        self._idempotency = idempotency
        self._audit = audit
        self._clock = clock
        self.deadlines = deadlines
        self.observers: list[ToolObserver] = []

    async def execute(self, agent: Agent, tool_name: str, arguments: Any, call: CallInfo) -> ToolOutcome:
        """Run one tool call to an outcome. Never raises: whatever goes wrong becomes an error outcome.

        (Only cancellation propagates: the caller went away.)
        """
        started = time.perf_counter()
        spec = self.catalogue.get(tool_name)
        audited: dict[str, Any] | None = None
        try:
            if spec is None:
                outcome = self._failure(
                    tool_name,
                    ToolError(
                        ErrorCode.UNKNOWN_TOOL,
                        f"there is no tool named {tool_name[:64]!r}; available: {', '.join(self.catalogue.names())}",
                    ),
                )
            else:
                outcome, audited = await self._execute(spec, agent, arguments, call)
        except Exception as error:
            # A bug, not the caller's doing: logged here, and the caller still gets a clean answer.
            logger.error("tool %s failed unexpectedly before it ran", tool_name[:64], exc_info=error)
            outcome = self._failure(
                tool_name, ToolError(ErrorCode.INTERNAL_ERROR, "the call failed unexpectedly; it was logged")
            )
        self._audit.record(
            AuditEntry(
                agent_id=agent.id,
                call_id=call.call_id,
                tool=tool_name[:64],
                transport=call.transport,
                arguments=audited if audited is not None else _bounded(arguments),
                outcome="OK" if outcome.error is None else outcome.error.code.value,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                replayed=outcome.replayed,
                created_at=self._clock(),
                result=outcome.result if outcome.result is not None and spec and not spec.read_only else None,
            )
        )
        return outcome

    async def _execute(
        self, spec: ToolSpec[Any, Any], agent: Agent, arguments: Any, call: CallInfo
    ) -> tuple[ToolOutcome, dict[str, Any] | None]:
        """The outcome, and the validated arguments (None when they were refused) for the audit log."""
        if not isinstance(arguments, dict):
            return self._failure(spec.name, ToolError.invalid("arguments", "arguments must be a JSON object")), None
        field = spec.caller_phone_field
        if field and call.caller_phone and not arguments.get(field):
            arguments = {**arguments, field: call.caller_phone}
        # Sizes and shapes first, so validation below never reads an oversized or malformed value.
        problems, safe = screen_arguments(spec, arguments)
        try:
            parsed = spec.input_model.model_validate(safe, context={"phone_region": agent.phone_region})
        except ValidationError as error:
            # Every argument at fault is listed, those screened out first.
            screened = {problem["field"] for problem in problems}
            problems += [problem for problem in problems_of(error) if problem["field"] not in screened]
        except ToolError as error:
            return self._failure(spec.name, error), None
        if problems:
            return self._failure(spec.name, from_problems(problems)), None
        normalized = parsed.model_dump(mode="json", exclude_none=True)
        return await self._run(spec, agent, parsed, normalized, call), normalized

    async def _run(
        self, spec: ToolSpec[Any, Any], agent: Agent, parsed: BaseModel, normalized: dict[str, Any], call: CallInfo
    ) -> ToolOutcome:

        deadline = self.deadlines.for_tool(spec)
        # One absolute deadline covers waiting for a duplicate and running the tool.
        expires = asyncio.get_running_loop().time() + deadline
        if spec.read_only:
            context = self._context(agent, call, None)
            return await self._run_with_deadline(spec, context, parsed, deadline, expires)

        key, request_hash, scoped = derive_key(
            agent.id, spec.name, normalized, idempotency_key=call.idempotency_key, call_id=call.call_id
        )
        try:
            async with asyncio.timeout_at(expires):
                claim = await self._idempotency.begin(
                    agent.id, key, spec.name, request_hash, scoped=scoped, hold=timedelta(seconds=deadline + 5)
                )
        except TimeoutError:
            return self._failure(spec.name, self._timeout(spec, deadline))
        except ToolError as error:
            return self._failure(spec.name, error)
        if isinstance(claim, Replay):
            return ToolOutcome.model_validate({**claim.outcome, "replayed": True})
        context = self._context(agent, call, key, claim.earlier_attempt_at)
        return await self._run_claimed(spec, context, parsed, deadline, expires, claim)

    async def _run_claimed(
        self,
        spec: ToolSpec[Any, Any],
        context: ToolContext,
        parsed: BaseModel,
        deadline: float,
        expires: float,
        claim: Claim,
    ) -> ToolOutcome:
        try:
            outcome = await self._run_with_deadline(spec, context, parsed, deadline, expires)
        except BaseException:
            # Cancelled (the client went away): free the key so a retry is not blocked.
            await asyncio.shield(self._idempotency.release(claim, ambiguous=True))
            raise
        if outcome.error is not None and outcome.error.code in _NOT_REMEMBERED:
            await self._idempotency.release(claim, ambiguous=outcome.error.code in _MAYBE_DONE)
        else:
            await self._idempotency.complete(claim, outcome.stored())
        if outcome.result is not None:
            await self._tell_observers(context, spec.name, outcome.result)
        return outcome

    async def _tell_observers(self, context: ToolContext, tool: str, result: dict[str, Any]) -> None:
        call = CallInfo(transport="observer", call_id=context.call_id, record_id=context.record_id)
        for observer in self.observers:
            try:
                await observer(context.agent, tool, result, call)
            except Exception:
                # What the caller asked for is done; a failing observer must not turn it into an error.
                logger.exception("an observer of %s failed", tool)

    async def _run_with_deadline(
        self, spec: ToolSpec[Any, Any], context: ToolContext, parsed: BaseModel, deadline: float, expires: float
    ) -> ToolOutcome:
        try:
            # The deadline scope lets connectors size timeouts and retries to the time left.
            with deadline_scope(expires - asyncio.get_running_loop().time()):
                async with asyncio.timeout_at(expires) as scope:
                    result = await spec.run(context, parsed)
        except TimeoutError as error:
            if scope.expired():
                return self._failure(spec.name, self._timeout(spec, deadline))
            return self._failure(spec.name, from_exception(error, spec.name))
        except Exception as error:
            return self._failure(spec.name, from_exception(error, spec.name))
        return ToolOutcome(tool=spec.name, result=result.model_dump(mode="json"))

    def _context(
        self, agent: Agent, call: CallInfo, key: str | None, earlier_attempt_at: datetime | None = None
    ) -> ToolContext:
        return ToolContext(
            agent=agent,
            now=self._clock(),
            providers=self._providers.for_agent(agent),
            call_id=call.call_id,
            record_id=call.record_id,
            idempotency_key=key,
            earlier_attempt_at=earlier_attempt_at,
            messages=self._messages,
            holds=self._holds,
            payments=self._payments,
        )

    @staticmethod
    def _timeout(spec: ToolSpec[Any, Any], deadline: float) -> ToolError:
        return ToolError(ErrorCode.TIMEOUT, f"{spec.name} did not finish within its {deadline:g} s deadline")

    @staticmethod
    def _failure(tool: str, error: ToolError) -> ToolOutcome:
        return ToolOutcome(tool=tool[:64], error=error.info())


def _bounded(arguments: Any) -> dict[str, Any]:
    """Refused arguments as the audit log keeps them: names and (cut) values, never their bulk."""
    if not isinstance(arguments, dict):
        return {"_raw": type(arguments).__name__}
    return {str(name)[:64]: value for name, value in list(arguments.items())[:MAX_ARGUMENTS]}
