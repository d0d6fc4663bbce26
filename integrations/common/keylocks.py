"""Per-key asyncio locks: serialize work on one key in this process, and only on that key."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

__all__ = ["KeyLocks"]


class KeyLocks:
    """One lock per key in use, so work on one key runs one at a time and other keys never wait.

    Connectors use it where a look-then-write must not interleave for the same thing (the same
    idempotency key, the same phone or email, the same call) without serializing everything else.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._held.get(key, (asyncio.Lock(), 0))
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def hold_all(self, keys: Iterable[str | None]) -> AsyncIterator[None]:
        """Hold every key's lock; taken in sorted order, so two holders never deadlock."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted({key for key in keys if key is not None}):
                await stack.enter_async_context(self.hold(key))
            yield
