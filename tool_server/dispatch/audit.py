"""The audit log: one row per tool call, written off the hot path.

Rows are queued in memory and written in batches by a background task, so a tool call never
waits on an audit insert. A crash can lose the last fraction of a second of audit rows, never a
tool call's effect. `flush()` writes everything queued (tests and shutdown call it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, insert

from tool_server.redaction import redact
from tool_server.store.database import Database
from tool_server.store.tables import ToolCallRow

__all__ = ["AuditEntry", "AuditLog"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    """One tool call: who, which call, what, how it ended and how long it took.

    `arguments` and `result` are held as given; phones and emails are masked when the entry is
    written, on a database thread, so masking costs the tool call nothing.
    """

    agent_id: str
    call_id: str | None
    tool: str
    transport: str
    arguments: dict[str, Any]
    outcome: str
    latency_ms: float
    replayed: bool
    created_at: datetime
    # What a write did (its result), so the post-call sync can link what the call made.
    result: dict[str, Any] | None = None


def _insert_rows(connection: Connection, entries: list[AuditEntry]) -> None:
    rows = []
    for entry in entries:
        row = asdict(entry)
        row["arguments"] = redact(entry.arguments)
        row["result"] = None if entry.result is None else redact(entry.result)
        rows.append(row)
    connection.execute(insert(ToolCallRow), rows)


class AuditLog:
    """Batches audit entries into the `tool_calls` table."""

    def __init__(self, db: Database, *, flush_interval: float = 0.05, max_batch: int = 500) -> None:
        self._db = db
        self._interval = flush_interval
        self._max_batch = max_batch
        self._pending: list[AuditEntry] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, entry: AuditEntry) -> None:
        """Queue an entry. Never blocks and never raises into the tool call."""
        self._pending.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-flusher")
        if len(self._pending) >= self._max_batch:
            self._wakeup.set()

    async def flush(self) -> None:
        """Write everything queued so far."""
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
                try:
                    await self._db.execute(partial(_insert_rows, entries=batch))
                except Exception:
                    # The audit log must never take the server down; losing rows is logged loudly.
                    logger.exception("could not write %d audit rows", len(batch))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval)
            self._wakeup.clear()
            await self.flush()
