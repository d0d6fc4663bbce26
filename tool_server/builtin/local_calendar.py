"""The built-in calendar: booking rules from the agent's connection settings, bookings in the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.orm import Session

from integrations.capabilities import (
    Appointment,
    BookingRequest,
    BookingRules,
    NotFoundError,
    SlotUnavailableError,
    TimeSlot,
    candidate_slots,
    rule_violation,
)
from integrations.capabilities.models import elapsed
from integrations.capabilities.scheduling import CalendarRulesSettings, Interval
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import AgentRow, AppointmentRow, new_id

__all__ = ["LocalCalendar", "LocalCalendarSettings"]

PROVIDER = "local_calendar"
MAX_APPOINTMENT = timedelta(hours=24)


class LocalCalendarSettings(CalendarRulesSettings):
    """Settings of the built-in calendar: the booking rules, `timezone` defaulting to the agent's zone."""


def _to_appointment(row: AppointmentRow) -> Appointment:
    return Appointment(
        id=row.id,
        start=row.start_at,
        end=row.end_at,
        status="cancelled" if row.status == "cancelled" else "booked",
        attendee_name=row.attendee_name,
        attendee_phone=row.attendee_phone,
        attendee_email=row.attendee_email,
        notes=row.notes,
        provider=PROVIDER,
        raw={"id": row.id, "status": row.status},
    )


class LocalCalendar:
    """A calendar kept in the tool server's database, one per agent.

    Bookings for one agent are serialized by a row lock on the agent (PostgreSQL) or the
    database write lock (SQLite), so two callers can never take the same slot.
    """

    name = PROVIDER

    def __init__(self, db: Database, agent_id: str, rules: BookingRules, clock: Clock) -> None:
        self._db = db
        self._agent_id = agent_id
        self.rules = rules
        self._clock = clock

    @property
    def default_duration(self) -> timedelta:
        return timedelta(minutes=self.rules.slot_minutes)

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        busy = await self._db.run(lambda session: self._busy(session, start, end.astimezone(UTC) + duration))
        return candidate_slots(self.rules, start, end, duration, busy, self._clock())

    async def book(self, request: BookingRequest) -> Appointment:
        return await self.book_under_lock(request, lambda _session: None)

    async def book_under_lock(self, request: BookingRequest, check: Callable[[Session], None]) -> Appointment:
        """Book, running `check` inside the booking transaction, under the agent's booking lock.

        The server's slot claims live in the same database under the same lock, so `check`
        (which raises `SlotUnavailableError` when another caller holds the time) replaces a
        separate claim and its settlement: two write transactions fewer per booking.
        """
        if elapsed(request.start, request.end) > MAX_APPOINTMENT:
            raise SlotUnavailableError("appointments last at most 24 hours")
        violation = rule_violation(self.rules, request.start, elapsed(request.start, request.end), self._clock())
        if violation:
            raise SlotUnavailableError(violation)
        return await self._db.run(lambda session: self._book(session, request, check))

    def _book(self, session: Session, request: BookingRequest, check: Callable[[Session], None]) -> Appointment:
        self._lock(session)
        same_caller = self._same_caller_booking(session, request)
        if same_caller is not None:
            return _to_appointment(same_caller)
        check(session)
        if self._busy(session, request.start, request.end):
            raise SlotUnavailableError("that time is already booked")
        now = self._clock()
        row = AppointmentRow(
            id=new_id("apt"),
            agent_id=self._agent_id,
            start_at=request.start,
            end_at=request.end,
            status="booked",
            attendee_name=request.attendee_name,
            attendee_phone=request.attendee_phone,
            attendee_email=request.attendee_email,
            notes=request.notes,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return _to_appointment(row)

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        def work(session: Session) -> Appointment:
            self._lock(session)
            row = self._row(session, appointment_id)
            if row.status != "booked":
                raise NotFoundError("booked appointment", appointment_id)
            if row.start_at == start and row.end_at == end:
                return _to_appointment(row)
            if elapsed(start, end) > MAX_APPOINTMENT:
                raise SlotUnavailableError("appointments last at most 24 hours")
            violation = rule_violation(self.rules, start, elapsed(start, end), self._clock())
            if violation:
                raise SlotUnavailableError(violation)
            if self._busy(session, start, end, excluding=row.id):
                raise SlotUnavailableError("that time is already booked")
            row.start_at, row.end_at, row.updated_at = start, end, self._clock()
            session.flush()
            return _to_appointment(row)

        return await self._db.run(work)

    async def cancel(self, appointment_id: str) -> Appointment:
        def work(session: Session) -> Appointment:
            row = self._row(session, appointment_id)
            if row.status != "cancelled":
                row.status, row.updated_at = "cancelled", self._clock()
                session.flush()
            return _to_appointment(row)

        return await self._db.run(work)

    async def get(self, appointment_id: str) -> Appointment:
        return await self._db.run(lambda session: _to_appointment(self._row(session, appointment_id)))

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        matches = []
        if phone:
            matches.append(AppointmentRow.attendee_phone == phone)
        if email:
            matches.append(AppointmentRow.attendee_email == email)
        if not matches:
            return []
        query = (
            select(AppointmentRow)
            .where(
                AppointmentRow.agent_id == self._agent_id,
                AppointmentRow.status == "booked",
                AppointmentRow.end_at > since,
                or_(*matches),
            )
            .order_by(AppointmentRow.start_at)
        )
        return await self._db.run(lambda session: [_to_appointment(row) for row in session.execute(query).scalars()])

    def _lock(self, session: Session) -> None:
        # The first statement of the transaction is a write, so SQLite takes its write lock
        # before any read (no deadlocked upgrade) and PostgreSQL holds the agent row lock.
        session.execute(
            update(AgentRow).where(AgentRow.id == self._agent_id).values(booking_seq=AgentRow.booking_seq + 1)
        )

    def _row(self, session: Session, appointment_id: str) -> AppointmentRow:
        row = session.execute(
            select(AppointmentRow).where(AppointmentRow.id == appointment_id, AppointmentRow.agent_id == self._agent_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError("appointment", appointment_id)
        return row

    def _same_caller_booking(self, session: Session, request: BookingRequest) -> AppointmentRow | None:
        same_person = []
        if request.attendee_phone:
            same_person.append(AppointmentRow.attendee_phone == request.attendee_phone)
        if request.attendee_email:
            same_person.append(AppointmentRow.attendee_email == request.attendee_email)
        if not same_person:
            return None
        query = select(AppointmentRow).where(
            AppointmentRow.agent_id == self._agent_id,
            AppointmentRow.status == "booked",
            AppointmentRow.start_at == request.start,
            AppointmentRow.end_at == request.end,
            or_(*same_person),
        )
        return session.execute(query).scalars().first()

    def _busy(
        self, session: Session, start: datetime, end: datetime, *, excluding: str | None = None
    ) -> list[Interval]:
        """Booked intervals that could collide with [start, end) once buffers are applied."""
        return [(row[0], row[1]) for row in session.execute(self.busy_query(start, end, excluding=excluding)).all()]

    def busy_query(self, start: datetime, end: datetime, *, excluding: str | None = None) -> Select[datetime, datetime]:
        """The query behind `_busy`; public so tests can check its plan."""
        buffer = timedelta(minutes=self.rules.buffer_minutes)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        query = select(AppointmentRow.start_at, AppointmentRow.end_at).where(
            and_(
                AppointmentRow.agent_id == self._agent_id,
                AppointmentRow.status == "booked",
                # The lower bound on start_at lets the (agent_id, start_at) index bound the scan from
                # both sides; without it every booking read every earlier appointment.
                AppointmentRow.start_at > start - buffer - MAX_APPOINTMENT,
                AppointmentRow.start_at < end + buffer,
                AppointmentRow.end_at > start - buffer,
            )
        )
        if excluding is not None:
            query = query.where(AppointmentRow.id != excluding)
        return query
