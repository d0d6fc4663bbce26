"""Retries, backoff and a circuit breaker around provider calls, all inside the call's deadline.

Connectors wrap each SDK request in `Resilience.call`. A request that fails with a retryable
`UpstreamError` (5xx, timeouts, connection errors) or a `RateLimitedError` is retried with
exponential backoff, honouring Retry-After, but only while the tool call's deadline leaves room
for the wait *and* another attempt; otherwise the error goes up as it is and dispatch turns it
into a sentence an agent can say. A breaker per connection opens after repeated failures, so a
dead provider fails fast for the rest of a call instead of eating every caller's deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from integrations.capabilities.errors import RateLimitedError, UpstreamError
from integrations.common.deadline import remaining

__all__ = ["CircuitBreaker", "Resilience", "RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. Attempts include the first one."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0
    # Never start an attempt with less time than this left: it could not finish anyway.
    min_attempt_seconds: float = 0.5


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` lets one trial call through."""

    provider: str
    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def before_call(self) -> None:
        if self.opened_at is None:
            return
        if self._clock() - self.opened_at < self.cooldown:
            raise UpstreamError(self.provider, "circuit open after repeated failures", retryable=True)
        # Half-open: let this call through as the trial; a failure re-opens at once.
        self.opened_at = None
        self.failures = self.threshold - 1

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self._clock()

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self._clock() - self.opened_at < self.cooldown


class Resilience:
    """Runs provider calls with retries inside the deadline and one circuit breaker."""

    def __init__(self, provider: str, policy: RetryPolicy | None = None, breaker: CircuitBreaker | None = None):
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(provider)

    def attempt_timeout(self, ceiling: float = 10.0) -> float:
        """The HTTP timeout for one attempt: what the deadline leaves, capped at `ceiling`."""
        return max(0.1, min(ceiling, remaining()))

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt()` until it succeeds, a non-retryable error occurs, or time runs out.

        `attempt` must raise only `IntegrationError`s (connectors translate SDK exceptions).
        """
        for number in range(1, self.policy.attempts + 1):
            self.breaker.before_call()
            try:
                result = await attempt()
            except (RateLimitedError, UpstreamError) as error:
                if error.retryable:
                    self.breaker.failed()
                wait = self._wait_before_retry(error, number)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            self.breaker.succeeded()
            return result
        raise AssertionError("unreachable: the last attempt either returns or raises")

    async def run_sync(self, request: Callable[[], T]) -> T:
        """`call` for a blocking SDK request: each attempt runs on a worker thread.

        `request` must translate the SDK's exceptions into `IntegrationError`s itself.
        """

        async def attempt() -> T:
            return await asyncio.to_thread(request)

        return await self.call(attempt)

    def _wait_before_retry(self, error: UpstreamError, number: int) -> float | None:
        if not error.retryable or number >= self.policy.attempts:
            return None
        backoff = min(self.policy.max_delay, self.policy.base_delay * 2 ** (number - 1))
        wait: float = backoff * (0.5 + random.random() / 2)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            wait = max(wait, float(error.retry_after))
        if wait + self.policy.min_attempt_seconds > remaining():
            return None
        return wait
