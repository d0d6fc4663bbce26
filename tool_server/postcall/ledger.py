"""The visible state of each integration's post-call work: pending, done, or failed with its error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tool_server.calls.store import SyncStatus
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import CallRecordRow, SyncStepRow

__all__ = ["Status", "StepState", "SyncLedger", "overall"]

Status = Literal["pending", "done", "failed", "skipped"]


class StepState(BaseModel):
    """One integration's post-call work as `GET /v1/calls/{id}` shows it."""

    job: str
    status: Status
    attempts: int
    error: str | None = None
    result: dict[str, Any] | None = None
    retries: int = 0


def overall(statuses: list[str]) -> SyncStatus:
    """A call's sync status from its steps' statuses: any pending is syncing, then any failed is failed."""
    if "pending" in statuses:
        return "syncing"
    if "failed" in statuses:
        return "failed"
    return "synced"


class SyncLedger:
    """Rows in `sync_steps`, written by the workflows (from any worker process)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def plan(
        self, record_id: str, agent_id: str, jobs: list[str], *, call_status: SyncStatus | None = None
    ) -> list[str]:
        """Make a pending row per job (existing rows are left as they are); answers the jobs added.

        With `call_status`, the call's sync status is set in the same transaction.
        """

        def work(connection: Connection) -> list[str]:
            now = self._clock()
            if call_status is not None:
                status_set = update(CallRecordRow).where(CallRecordRow.id == record_id)
                connection.execute(status_set.values(sync_status=call_status, updated_at=now))
            known = set(connection.execute(select(SyncStepRow.job).where(SyncStepRow.record_id == record_id)).scalars())
            added = [job for job in jobs if job not in known]
            if added:
                connection.execute(
                    insert(SyncStepRow),
                    [
                        {
                            "record_id": record_id,
                            "agent_id": agent_id,
                            "job": job,
                            "status": "pending",
                            "attempts": 0,
                            "retries": 0,
                            "updated_at": now,
                        }
                        for job in added
                    ],
                )
            return added

        try:
            return await self._db.execute(work)
        except IntegrityError:
            # A concurrent planner (a recovered workflow) made them first.
            return []

    async def attempt(self, record_id: str, job: str, attempt: int, workflow_id: str | None) -> None:
        await self._set(record_id, job, status="pending", attempts=attempt, workflow_id=workflow_id)

    async def note_error(self, record_id: str, job: str, error: str) -> None:
        """A failed try that will be tried again: still pending, with the error shown."""
        await self._set(record_id, job, last_error=error[:2000])

    async def finish(
        self, record_id: str, job: str, status: Status, result: dict[str, Any] | None, error: str | None
    ) -> SyncStatus:
        """End a job and set the call's sync status from all its steps, in one transaction."""

        def work(connection: Connection) -> SyncStatus:
            now = self._clock()
            # The first statement is a write on the call's row: SQLite takes its write lock and
            # PostgreSQL the row lock before anything is read, so two jobs ending together each
            # see the other's result and the last one to commit sets the final status.
            connection.execute(update(CallRecordRow).where(CallRecordRow.id == record_id).values(updated_at=now))
            connection.execute(
                update(SyncStepRow)
                .where(SyncStepRow.record_id == record_id, SyncStepRow.job == job)
                .values(status=status, result=result, last_error=error, updated_at=now)
            )
            statuses = list(
                connection.execute(select(SyncStepRow.status).where(SyncStepRow.record_id == record_id)).scalars()
            )
            settled = overall(statuses)
            connection.execute(update(CallRecordRow).where(CallRecordRow.id == record_id).values(sync_status=settled))
            return settled

        return await self._db.execute(work)

    async def states(self, record_id: str) -> list[StepState]:
        def work(session: Session) -> list[StepState]:
            rows = session.execute(
                select(SyncStepRow).where(SyncStepRow.record_id == record_id).order_by(SyncStepRow.id)
            ).scalars()
            return [
                StepState(
                    job=r.job,
                    status=r.status,
                    attempts=r.attempts,
                    error=r.last_error,
                    result=r.result,
                    retries=r.retries,
                )
                for r in rows
            ]

        return await self._db.run(work)

    async def reopen_failed(self, record_id: str) -> list[tuple[str, int]]:
        """Failed jobs set back to pending for a retry: (job, retry number) each."""

        def work(session: Session) -> list[tuple[str, int]]:
            rows = list(
                session.execute(
                    select(SyncStepRow).where(SyncStepRow.record_id == record_id, SyncStepRow.status == "failed")
                ).scalars()
            )
            for row in rows:
                row.status, row.retries, row.attempts, row.updated_at = "pending", row.retries + 1, 0, self._clock()
            return [(row.job, row.retries) for row in rows]

        return await self._db.run(work)

    async def _set(self, record_id: str, job: str, **values: Any) -> None:
        await self._db.execute(
            lambda connection: connection.execute(
                update(SyncStepRow)
                .where(SyncStepRow.record_id == record_id, SyncStepRow.job == job)
                .values(updated_at=self._clock(), **values)
            )
        )
