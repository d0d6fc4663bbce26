"""Idempotency records: the same write, asked again, gets the first answer and does nothing new.

A write claims its key by inserting a row; the unique index on (agent, key) makes the claim
atomic across every process sharing the database. A concurrent duplicate finds the running
claim and waits for its outcome. A claim whose process died is taken over after `stale_after`.
Waiters in the same process are woken at once; waiters in other processes poll the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tool_server.clock import Clock
from tool_server.errors import ErrorCode, ToolError
from tool_server.store.database import Database
from tool_server.store.tables import IdempotencyRow

__all__ = ["Claim", "IdempotencyStore", "Replay", "derive_key"]

_POLL_SECONDS = 0.05
_INSERT = insert(IdempotencyRow)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def derive_key(
    agent_id: str,
    tool: str,
    normalized_arguments: dict[str, Any],
    *,
    idempotency_key: str | None,
    call_id: str | None,
) -> tuple[str, str, bool]:
    """(key, request_hash, scoped): scoped is False when neither a key nor a call id was given.

    The key includes the agent, because providers receive it too and two agents may share one
    provider account. The request hash covers the tool and its normalized arguments, so reusing
    an Idempotency-Key for a different request is detected rather than silently replayed.
    """
    canonical = json.dumps(normalized_arguments, sort_keys=True, separators=(",", ":"), default=str)
    request_hash = _digest(tool, canonical)
    if idempotency_key:
        return _digest("key", agent_id, idempotency_key), request_hash, True
    if call_id:
        return _digest("call", agent_id, call_id, tool, canonical), request_hash, True
    return _digest("args", agent_id, tool, canonical), request_hash, False


@dataclass(frozen=True)
class Claim:
    """This caller owns the key and must `complete` or `release` it.

    `earlier_attempt_at` is set when the key was taken over from a claim whose process died
    mid-call: that attempt started then and may have reached the provider.
    """

    agent_id: str
    key: str
    earlier_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Replay:
    """The key was already answered; here is that answer."""

    outcome: dict[str, Any]


@dataclass(frozen=True)
class _Existing:
    row_id: int
    request_hash: str
    state: str
    outcome: dict[str, Any] | None
    expires_at: datetime
    stale_after: datetime
    created_at: datetime


class IdempotencyStore:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        ttl: timedelta,
        ttl_without_call: timedelta,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._ttl_without_call = ttl_without_call
        self._settled: dict[tuple[str, str], asyncio.Event] = {}

    async def begin(
        self, agent_id: str, key: str, tool: str, request_hash: str, *, scoped: bool, hold: timedelta
    ) -> Claim | Replay:
        """Claim `key`, or wait for whoever holds it and return their outcome.

        `hold` is how long a claim may run before another process may presume it dead. The
        caller's deadline bounds the wait (this coroutine is cancelled when it passes).
        """
        abandoned: datetime | None = None
        while True:
            now = self._clock()
            ttl = self._ttl if scoped else self._ttl_without_call
            claim = {
                "agent_id": agent_id,
                "key": key,
                "tool": tool,
                "request_hash": request_hash,
                "state": "running",
                "outcome": None,
                # A claim taken over keeps the first unanswered attempt's start, for the next one.
                "created_at": abandoned or now,
                "expires_at": now + ttl,
                "stale_after": now + hold,
            }
            try:
                await self._db.execute(partial(self._insert, values=claim))
            except IntegrityError:
                pass
            else:
                self._settled.setdefault((agent_id, key), asyncio.Event())
                return Claim(agent_id, key, earlier_attempt_at=abandoned)
            existing = await self._db.execute(partial(self._existing, agent_id=agent_id, key=key))
            if existing is None:
                continue
            dead = existing.state == "running" and existing.stale_after <= now
            if existing.expires_at <= now or dead or existing.state == "abandoned":
                if existing.state != "done":
                    abandoned = existing.created_at
                await self._db.execute(partial(self._delete, row_id=existing.row_id))
                continue
            if existing.request_hash != request_hash:
                raise ToolError(
                    ErrorCode.IDEMPOTENCY_CONFLICT,
                    "this Idempotency-Key was already used for a different tool or different arguments",
                    field="Idempotency-Key",
                )
            if existing.state == "done" and existing.outcome is not None:
                return Replay(existing.outcome)
            await self._wait(agent_id, key)

    async def complete(self, claim: Claim, outcome: dict[str, Any]) -> None:
        """Store the outcome every later duplicate will receive."""
        await self._db.execute(partial(self._settle, agent_id=claim.agent_id, key=claim.key, outcome=outcome))
        self._wake(claim)

    async def release(self, claim: Claim, *, ambiguous: bool = False) -> None:
        """Give the key up (the call failed in a retryable way), so a retry runs.

        `ambiguous`: the attempt may have reached the provider (it timed out, was cancelled, or
        failed unexpectedly). The row then stays as "abandoned" with the attempt's start, so the
        retry, in whatever process, is told to look for that attempt's effect first.
        """
        match = (IdempotencyRow.agent_id == claim.agent_id, IdempotencyRow.key == claim.key)
        if ambiguous:
            await self._db.run(
                lambda session: session.execute(update(IdempotencyRow).where(*match).values(state="abandoned"))
            )
        else:
            await self._db.run(lambda session: session.execute(delete(IdempotencyRow).where(*match)))
        self._wake(claim)

    # Units of work run on a database thread; Core statements keep this hot path light.

    @staticmethod
    def _insert(connection: Connection, values: dict[str, Any]) -> None:
        connection.execute(_INSERT, values)

    @staticmethod
    def _settle(connection: Connection, agent_id: str, key: str, outcome: dict[str, Any]) -> None:
        connection.execute(
            update(IdempotencyRow)
            .where(IdempotencyRow.agent_id == agent_id, IdempotencyRow.key == key)
            .values(state="done", outcome=outcome)
        )

    @staticmethod
    def _forget(connection: Connection, agent_id: str, key: str) -> None:
        connection.execute(delete(IdempotencyRow).where(IdempotencyRow.agent_id == agent_id, IdempotencyRow.key == key))

    @staticmethod
    def _delete(connection: Connection, row_id: int) -> None:
        connection.execute(delete(IdempotencyRow).where(IdempotencyRow.id == row_id))

    @staticmethod
    def _existing(connection: Connection, agent_id: str, key: str) -> _Existing | None:
        row = connection.execute(
            select(
                IdempotencyRow.id,
                IdempotencyRow.request_hash,
                IdempotencyRow.state,
                IdempotencyRow.outcome,
                IdempotencyRow.expires_at,
                IdempotencyRow.stale_after,
                IdempotencyRow.created_at,
            ).where(IdempotencyRow.agent_id == agent_id, IdempotencyRow.key == key)
        ).first()
        return None if row is None else _Existing(*row)

    def _wake(self, claim: Claim) -> None:
        event = self._settled.pop((claim.agent_id, claim.key), None)
        if event is not None:
            event.set()

    async def _wait(self, agent_id: str, key: str) -> None:
        event = self._settled.get((agent_id, key))
        if event is None:
            await asyncio.sleep(_POLL_SECONDS)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=_POLL_SECONDS * 4)
