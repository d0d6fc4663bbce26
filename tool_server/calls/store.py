"""Recording call events: one record per call, each (platform, call id, event) taken once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tool_server.calls.models import AppointmentMention, CallRecord
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import CallEventRow, CallRecordRow, new_id

__all__ = ["CallStore", "Recorded", "SyncStatus"]

SyncStatus = Literal["waiting", "queued", "syncing", "synced", "failed"]


@dataclass(frozen=True)
class Recorded:
    """The record after an event, and whether the event had been delivered before."""

    record: CallRecord
    duplicate: bool
    record_id: str
    ready: bool = False
    """True when this event made the call ready for its post-call sync (its final event arrived)."""
    resync: tuple[str, ...] = ()
    """Fields this event added or changed after the call's sync had started: the CRM needs an update."""


class CallStore:
    """Call records in the database. Safe under concurrent, replayed deliveries from any process."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self, agent_id: str, event: str, incoming: CallRecord, payload: Any, *, final: bool = True
    ) -> Recorded:
        """Take one delivered event. A replay of the same (platform, call id, event) changes nothing.

        A `final` event (the platform's last word on the call) queues the post-call sync once;
        earlier events only update the record, which waits.
        """
        incoming = incoming.model_copy(update={"agent_id": agent_id, "events": [event], "payloads": {event: payload}})
        for _attempt in range(3):
            try:
                return await self._db.run(lambda session: self._apply(session, agent_id, event, incoming, final))
            except IntegrityError:
                # Another delivery for this call won a race; re-read and decide again.
                continue
        raise RuntimeError("call event kept colliding with concurrent deliveries")

    async def get(self, agent_id: str, call_id: str) -> CallRecord | None:
        def work(session: Session) -> CallRecord | None:
            row = (
                session.execute(
                    select(CallRecordRow)
                    .where(CallRecordRow.agent_id == agent_id, CallRecordRow.call_id == call_id)
                    .order_by(CallRecordRow.created_at)
                )
                .scalars()
                .first()
            )
            return None if row is None else _to_record(row)

        return await self._db.run(work)

    async def by_id(self, record_id: str) -> CallRecord | None:
        # Core, not the ORM: every post-call step reads its record, and this costs half as much.
        query = select(CallRecordRow.record, CallRecordRow.payloads, CallRecordRow.sync_status).where(
            CallRecordRow.id == record_id
        )

        def work(connection: Connection) -> CallRecord | None:
            row = connection.execute(query).first()
            return None if row is None else _record_of(row.record, row.payloads, row.sync_status, record_id)

        return await self._db.execute(work)

    async def update(self, record_id: str, record: CallRecord) -> None:
        """Save fields the post-call sync filled in (extraction); payloads and status are kept."""

        def work(session: Session) -> None:
            row = session.get(CallRecordRow, record_id)
            if row is not None:
                row.record = record.model_dump(mode="json", exclude={"payloads", "sync_status", "record_id"})
                row.updated_at = self._clock()

        await self._db.run(work)

    async def set_appointment(self, record_id: str, appointment: AppointmentMention) -> None:
        """Record the appointment the post-call sync booked or confirmed; nothing else changes."""
        mention = appointment.model_dump(mode="json")

        def work(connection: Connection) -> None:
            where = CallRecordRow.id == record_id
            record = connection.execute(select(CallRecordRow.record).where(where).with_for_update()).scalar()
            if record is not None:
                connection.execute(
                    update(CallRecordRow)
                    .where(where)
                    .values(record={**record, "appointment": mention}, updated_at=self._clock())
                )

        await self._db.execute(work)

    async def set_status(self, record_id: str, status: SyncStatus) -> None:
        statement = update(CallRecordRow).where(CallRecordRow.id == record_id)
        await self._db.execute(
            lambda connection: connection.execute(statement.values(sync_status=status, updated_at=self._clock()))
        )

    async def queued(self, *, before: datetime, limit: int = 500) -> list[str]:
        """Records whose sync was queued before `before` but never started (e.g. a crash in between)."""
        query = (
            select(CallRecordRow.id)
            .where(CallRecordRow.sync_status == "queued", CallRecordRow.updated_at < before)
            .order_by(CallRecordRow.updated_at)
            .limit(limit)
        )
        return await self._db.run(lambda session: list(session.execute(query).scalars()))

    async def give_up_waiting(self, *, before: datetime, limit: int = 500) -> list[str]:
        """Queue records still waiting for a final event last heard of before `before`.

        A platform's last word can be switched off (Retell sends `call_analyzed` only with
        analysis on): the call is then synced with what arrived rather than never.
        """

        def work(session: Session) -> list[str]:
            rows = list(
                session.execute(
                    select(CallRecordRow)
                    .where(CallRecordRow.sync_status == "waiting", CallRecordRow.updated_at < before)
                    .order_by(CallRecordRow.updated_at)
                    .limit(limit)
                ).scalars()
            )
            for row in rows:
                row.sync_status = "queued"
            return [row.id for row in rows]

        return await self._db.run(work)

    def _apply(self, session: Session, agent_id: str, event: str, incoming: CallRecord, final: bool) -> Recorded:
        seen = session.execute(
            select(CallEventRow.id).where(
                CallEventRow.agent_id == agent_id,
                CallEventRow.platform == incoming.platform,
                CallEventRow.call_id == incoming.call_id,
                CallEventRow.event == event,
            )
        ).first()
        row = session.execute(
            select(CallRecordRow).where(
                CallRecordRow.agent_id == agent_id,
                CallRecordRow.platform == incoming.platform,
                CallRecordRow.call_id == incoming.call_id,
            )
        ).scalar_one_or_none()
        if seen is not None and row is not None:
            return Recorded(_to_record(row), duplicate=True, record_id=row.id)
        now = self._clock()
        session.add(
            CallEventRow(
                agent_id=agent_id, platform=incoming.platform, call_id=incoming.call_id, event=event, received_at=now
            )
        )
        if row is None:
            record = incoming.model_copy(update={"received_at": now})
            row = CallRecordRow(
                id=new_id("call"),
                agent_id=agent_id,
                platform=incoming.platform,
                call_id=incoming.call_id,
                record=record.model_dump(mode="json", exclude={"payloads", "sync_status", "record_id"}),
                payloads=record.payloads,
                sync_status="queued" if final else "waiting",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        else:
            before = _to_record(row)
            record = before.merged(incoming)
            started = row.sync_status not in ("waiting", "queued")
            row.record = record.model_dump(mode="json", exclude={"payloads", "sync_status", "record_id"})
            row.payloads = record.payloads
            # A call syncs once: events after its sync started update the record, and what they
            # add to the call note goes to the CRM as an update (`resync`).
            ready = final and row.sync_status == "waiting"
            if ready:
                row.sync_status = "queued"
            row.updated_at = now
            session.flush()
            resync = record.resync_fields(before) if started else ()
            return Recorded(_to_record(row), duplicate=False, record_id=row.id, ready=ready, resync=resync)
        session.flush()
        return Recorded(_to_record(row), duplicate=False, record_id=row.id, ready=final)


def _to_record(row: CallRecordRow) -> CallRecord:
    return _record_of(row.record, row.payloads, row.sync_status, row.id)


def _record_of(record: dict[str, Any], payloads: dict[str, Any], sync_status: str, record_id: str) -> CallRecord:
    return CallRecord.model_validate(
        {**record, "payloads": payloads, "sync_status": sync_status, "record_id": record_id}
    )
