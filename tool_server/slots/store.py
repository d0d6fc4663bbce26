"""Slot holds in the server's database: the one place two callers' claims on a slot meet.

Every claim is written inside the agent's booking lock (the same row lock the built-in
calendar takes: a row lock on PostgreSQL, the write lock on SQLite), so however many server
processes share the database, two callers never hold overlapping time at once. The lock is held
for one short transaction, never across a provider call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, and_, insert, select, update
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


_COLUMNS = (
    SlotHoldRow.id,
    SlotHoldRow.kind,
    SlotHoldRow.start_at,
    SlotHoldRow.end_at,
    SlotHoldRow.expires_at,
    SlotHoldRow.call_id,
    SlotHoldRow.contact_phone,
    SlotHoldRow.contact_email,
    SlotHoldRow.reservation_id,
    SlotHoldRow.appointment_id,
    SlotHoldRow.released_at,
    SlotHoldRow.confirmed_at,
)


def _hold(row: Any) -> Hold:
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
    """Claims on an agent's slots, shared by every server process on one database.

    Every statement is a Core statement on a bare connection (`Database.execute`): they run on
    every availability check and booking, and the ORM's unit of work would double their cost.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def active(self, agent_id: str, start: datetime, end: datetime) -> list[Hold]:
        """Every active claim overlapping [start, end), whoever holds it."""
        now = self._clock()
        return await self._db.execute(lambda connection: _overlapping(connection, agent_id, start, end, now))

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
        hold = Hold(
            id=new_id("hold"),
            kind=kind,
            start=start,
            end=end,
            expires_at=now + ttl,
            call_id=claimant.call_id,
            contact_phone=claimant.phone,
            contact_email=claimant.email,
        )

        def work(connection: Connection) -> Hold:
            _lock(connection, agent_id)
            for other in _overlapping(connection, agent_id, start, end, now):
                if not claimant.owns(other):
                    raise SlotTakenError(other)
            connection.execute(
                insert(SlotHoldRow),
                {
                    "id": hold.id,
                    "agent_id": agent_id,
                    "kind": kind,
                    "start_at": start,
                    "end_at": end,
                    "expires_at": hold.expires_at,
                    "call_id": hold.call_id,
                    "contact_phone": hold.contact_phone,
                    "contact_email": hold.contact_email,
                    "created_at": now,
                },
            )
            return hold

        return await self._db.execute(work)

    def check_free(self, session: Session, agent_id: str, start: datetime, end: datetime, claimant: Claimant) -> None:
        """Inside a booking transaction that holds the agent's lock: raise `SlotTakenError` when
        another caller holds or is booking time overlapping [start, end)."""
        for other in _overlapping(session, agent_id, start, end, self._clock()):
            if not claimant.owns(other):
                raise SlotTakenError(other)

    async def confirm(self, hold: Hold, appointment_id: str) -> None:
        """The held slot was booked: the hold ends, pointing at its appointment."""
        now = self._clock()
        statement = (
            update(SlotHoldRow)
            .where(SlotHoldRow.id == hold.id)
            .values(appointment_id=appointment_id, confirmed_at=now, released_at=now)
        )
        await self._db.execute(lambda connection: connection.execute(statement))

    async def get(self, agent_id: str, hold_id: str) -> Hold | None:
        return await self._db.execute(lambda connection: _find(connection, agent_id, hold_id))

    async def release(self, agent_id: str, hold_id: str) -> Hold | None:
        """Release a hold. Releasing a released, expired or confirmed one changes nothing."""
        now = self._clock()

        def work(connection: Connection) -> Hold | None:
            connection.execute(
                update(SlotHoldRow)
                .where(
                    SlotHoldRow.id == hold_id,
                    SlotHoldRow.agent_id == agent_id,
                    SlotHoldRow.released_at.is_(None),
                    SlotHoldRow.expires_at > now,
                )
                .values(released_at=now)
            )
            return _find(connection, agent_id, hold_id)

        return await self._db.execute(work)

    async def note_reservation(self, hold_id: str, reservation_id: str) -> None:
        """Remember the vendor's own reservation behind a hold, to release it later."""
        statement = update(SlotHoldRow).where(SlotHoldRow.id == hold_id).values(reservation_id=reservation_id)
        await self._db.execute(lambda connection: connection.execute(statement))

    async def settle(
        self, claim: Hold, appointment_id: str, *, linger: timedelta, confirms: Hold | None = None
    ) -> None:
        """A booking landed: its claim keeps the slot for `linger` (a provider's free/busy may lag),
        and the hold it confirms is marked confirmed."""
        now = self._clock()

        def work(connection: Connection) -> None:
            connection.execute(
                update(SlotHoldRow)
                .where(SlotHoldRow.id == claim.id)
                .values(appointment_id=appointment_id, expires_at=now + linger)
            )
            if confirms is not None:
                connection.execute(
                    update(SlotHoldRow)
                    .where(SlotHoldRow.id == confirms.id)
                    .values(appointment_id=appointment_id, confirmed_at=now, released_at=now)
                )

        await self._db.execute(work)

    async def drop(self, claim: Hold) -> None:
        """A booking failed: its claim stops keeping the slot."""
        statement = update(SlotHoldRow).where(SlotHoldRow.id == claim.id).values(released_at=self._clock())
        await self._db.execute(lambda connection: connection.execute(statement))

    async def forget_appointment(self, agent_id: str, appointment_id: str) -> None:
        """An appointment moved or was cancelled: claims made by its booking stop keeping its old time."""
        statement = (
            update(SlotHoldRow)
            .where(
                SlotHoldRow.agent_id == agent_id,
                SlotHoldRow.appointment_id == appointment_id,
                SlotHoldRow.kind == "booking",
                SlotHoldRow.released_at.is_(None),
            )
            .values(released_at=self._clock())
        )
        await self._db.execute(lambda connection: connection.execute(statement))


def _lock(connection: Connection, agent_id: str) -> None:
    # The same first-statement write the built-in calendar uses: SQLite takes its write lock
    # before any read, PostgreSQL holds the agent's row lock until commit.
    connection.execute(update(AgentRow).where(AgentRow.id == agent_id).values(booking_seq=AgentRow.booking_seq + 1))


# Claims last minutes; a 24-hour look-back bounds the index scan like the calendar's busy query.
_LONGEST_CLAIM = timedelta(hours=24)


def _find(connection: Connection, agent_id: str, hold_id: str) -> Hold | None:
    row = connection.execute(
        select(*_COLUMNS).where(SlotHoldRow.id == hold_id, SlotHoldRow.agent_id == agent_id)
    ).first()
    return None if row is None else _hold(row)


def _overlapping(
    connection: Connection | Session, agent_id: str, start: datetime, end: datetime, now: datetime
) -> list[Hold]:
    rows = connection.execute(
        select(*_COLUMNS).where(
            and_(
                SlotHoldRow.agent_id == agent_id,
                SlotHoldRow.start_at < end,
                SlotHoldRow.start_at > start - _LONGEST_CLAIM,
                SlotHoldRow.end_at > start,
                SlotHoldRow.released_at.is_(None),
                SlotHoldRow.expires_at > now,
            )
        )
    )
    return [_hold(row) for row in rows]
