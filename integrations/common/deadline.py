"""The time a tool call has left, visible to connectors without threading it through every call.

Dispatch opens a `deadline_scope` around each tool call; connectors read `remaining()` to size
their HTTP timeouts and decide whether a retry (or a Retry-After wait) still fits. The value is
an absolute `time.monotonic()` instant in a context variable, so it follows the call across
awaits and into `asyncio.to_thread` workers (which copy the context).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["deadline_scope", "remaining"]

_DEADLINE: ContextVar[float | None] = ContextVar("tool_call_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(seconds: float) -> Iterator[None]:
    """Everything inside must finish within `seconds` (nested scopes keep the earlier deadline)."""
    candidate = time.monotonic() + seconds
    current = _DEADLINE.get()
    token = _DEADLINE.set(candidate if current is None else min(current, candidate))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining(default: float = 30.0) -> float:
    """Seconds left before the current deadline (never negative), or `default` outside any scope."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())
