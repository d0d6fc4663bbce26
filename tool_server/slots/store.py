"""Slot holds in the server's database: the one place two callers' claims on a slot meet.

Every claim is written inside the agent's booking lock (the same row lock the built-in
calendar takes: a row lock on PostgreSQL, the write lock on SQLite), so however many server
processes share the database, two callers never hold overlapping time at once. The lock is held
for one short transaction, never across a provider call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import AgentRow, SlotHoldRow, new_id

__all__ = ["Claimant", "Hold", "HoldKind", "SlotHolds", "SlotTakenError"]

HoldKind = Literal["hold", "booking"]


class Hold(BaseModel):
    """One claim on a slot: a caller's hold, or a booking on its way to the calendar."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: HoldKind
    start: datetime
    end: datetime
    expires_at: datetime
    call_id: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    reservation_id: str | None = None
    appointment_id: str | None = None
    released_at: datetime | None = None
    confirmed_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.released_at is None and self.expires_at > now


@dataclass(frozen=True)
class Claimant:
    """Who is asking: the same caller by call id, phone or email, or by presenting a hold's id."""

    call_id: str | None = None
    phone: str | None = None
    email: str | None = None
    hold_id: str | None = None

    def owns(self, hold: Hold) -> bool:
        return bool(
            (self.hold_id and hold.id == self.hold_id)
            or (self.call_id and hold.call_id == self.call_id)
            or (self.phone and hold.contact_phone == self.phone)
            or (self.email and hold.contact_email and hold.contact_email.lower() == self.email.lower())
        )


class SlotTakenError(Exception):
    """Another caller holds (or is booking) time overlapping the requested slot."""

    def __init__(self, holder: Hold) -> None:
        super().__init__(f"{holder.kind} {holder.id} overlaps")
        self.holder = holder


def _hold(row: SlotHoldRow) -> Hold:
    return Hold(
        id=row.id,
        kind="booking" if row.kind == "booking" else "hold",
        start=row.start_at,
        end=row.end_at,
        expires_at=row.expires_at,
        call_id=row.call_id,
        contact_phone=row.contact_phone,
        contact_email=row.contact_email,
        reservation_id=row.reservation_id,
        appointment_id=row.appointment_id,
        released_at=row.released_at,
        confirmed_at=row.confirmed_at,
    )


class SlotHolds:
    """Claims on an agent's slots, shared by every server process on one database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def active(self, agent_id: str, start: datetime, end: datetime) -> list[Hold]:
        """Every active claim overlapping [start, end), whoever holds it."""
        now = self._clock()

        def work(session: Session) -> list[Hold]:
            return list(_overlapping(session, agent_id, start, end, now))

        return await self._db.run(work)

    async def claim(
        self,
        agent_id: str,
        start: datetime,
        end: datetime,
        *,
        kind: HoldKind,
        claimant: Claimant,
        ttl: timedelta,
    ) -> Hold:
        """Claim [start, end) for `claimant` for `ttl`; raises `SlotTakenError` when another caller has it."""
        now = self._clock()

        def work(session: Session) -> Hold:
            _lock(session, agent_id)
            for other in _overlapping(session, agent_id, start, end, now):
                if not claimant.owns(other):
                    raise SlotTakenError(other)
            row = SlotHoldRow(
                id=new_id("hold"),
                agent_id=agent_id,
                kind=kind,
                start_at=start,
                end_at=end,
                expires_at=now + ttl,
                call_id=claimant.call_id,
                contact_phone=claimant.phone,
                contact_email=claimant.email,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _hold(row)

        return await self._db.run(work)

    async def get(self, agent_id: str, hold_id: str) -> Hold | None:
        def work(session: Session) -> Hold | None:
            row = session.get(SlotHoldRow, hold_id)
            return _hold(row) if row is not None and row.agent_id == agent_id else None

        return await self._db.run(work)

    async def release(self, agent_id: str, hold_id: str) -> Hold | None:
        """Release a hold. Releasing a released, expired or confirmed one changes nothing."""
        now = self._clock()

        def work(session: Session) -> Hold | None:
            row = session.get(SlotHoldRow, hold_id)
            if row is None or row.agent_id != agent_id:
                return None
            if row.released_at is None and row.expires_at > now:
                row.released_at = now
            return _hold(row)

        return await self._db.run(work)

    async def note_reservation(self, hold_id: str, reservation_id: str) -> None:
        """Remember the vendor's own reservation behind a hold, to release it later."""

        def work(session: Session) -> None:
            session.execute(update(SlotHoldRow).where(SlotHoldRow.id == hold_id).values(reservation_id=reservation_id))

        await self._db.run(work)

    async def settle(
        self, claim: Hold, appointment_id: str, *, linger: timedelta, confirms: Hold | None = None
    ) -> None:
        """A booking landed: its claim keeps the slot for `linger` (a provider's free/busy may lag),
        and the hold it confirms is marked confirmed."""
        now = self._clock()

        def work(session: Session) -> None:
            session.execute(
                update(SlotHoldRow)
                .where(SlotHoldRow.id == claim.id)
                .values(appointment_id=appointment_id, expires_at=now + linger)
            )
            if confirms is not None:
                session.execute(
                    update(SlotHoldRow)
                    .where(SlotHoldRow.id == confirms.id)
                    .values(appointment_id=appointment_id, confirmed_at=now, released_at=now)
                )

        await self._db.run(work)

    async def drop(self, claim: Hold) -> None:
        """A booking failed: its claim stops keeping the slot."""
        now = self._clock()

        def work(session: Session) -> None:
            session.execute(update(SlotHoldRow).where(SlotHoldRow.id == claim.id).values(released_at=now))

        await self._db.run(work)

    async def forget_appointment(self, agent_id: str, appointment_id: str) -> None:
        """An appointment moved or was cancelled: claims made by its booking stop keeping its old time."""
        now = self._clock()

        def work(session: Session) -> None:
            session.execute(
                update(SlotHoldRow)
                .where(
                    SlotHoldRow.agent_id == agent_id,
                    SlotHoldRow.appointment_id == appointment_id,
                    SlotHoldRow.kind == "booking",
                    SlotHoldRow.released_at.is_(None),
                )
                .values(released_at=now)
            )

        await self._db.run(work)


def _lock(session: Session, agent_id: str) -> None:
    # The same first-statement write the built-in calendar uses: SQLite takes its write lock
    # before any read, PostgreSQL holds the agent's row lock until commit.
    session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(booking_seq=AgentRow.booking_seq + 1))


# Claims last minutes; a 24-hour look-back bounds the index scan like the calendar's busy query.
_LONGEST_CLAIM = timedelta(hours=24)


def _overlapping(session: Session, agent_id: str, start: datetime, end: datetime, now: datetime) -> Sequence[Hold]:
    rows = session.execute(
        select(SlotHoldRow).where(
            and_(
                SlotHoldRow.agent_id == agent_id,
                SlotHoldRow.start_at < end,
                SlotHoldRow.start_at > start - _LONGEST_CLAIM,
                SlotHoldRow.end_at > start,
                SlotHoldRow.released_at.is_(None),
                SlotHoldRow.expires_at > now,
            )
        )
    ).scalars()
    return [_hold(row) for row in rows]
