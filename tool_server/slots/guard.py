"""The agent's calendar as the tools see it: the provider's free time minus other callers' claims.

With an external provider (Google, Outlook, Cal.com, Calendly), a booking first claims its slot
in the server's database, then books at the provider, then keeps the claim a little longer (a
provider's free/busy may lag its writes). The built-in calendar, which books in the same database
under the same lock, checks the claims inside its own booking transaction instead. A caller's
hold is a claim held for minutes. So 20 callers racing for one slot through any number of server processes get
one appointment, and the others a SLOT_UNAVAILABLE with alternatives that skip held time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from integrations.capabilities import (
    Appointment,
    BookingRequest,
    CalendarProvider,
    IntegrationError,
    NotFoundError,
    SlotReservations,
    SlotUnavailableError,
    TimeSlot,
)
from tool_server.slots.store import Claimant, Hold, HoldKind, SlotHolds, SlotTakenError

__all__ = ["GuardedCalendar"]

log = logging.getLogger(__name__)

# A booking claim outlives the provider call that fills it by this much when the process dies.
_BOOKING_CLAIM = timedelta(seconds=60)
# After a booking lands, its claim keeps the slot this long, in case the provider's free/busy lags.
_LINGER = timedelta(seconds=120)


@runtime_checkable
class BooksUnderLock(Protocol):
    """A calendar that books inside the agent's booking lock in the server's own database (the
    built-in one): the claim check runs in its booking transaction instead of beside it."""

    async def book_under_lock(self, request: BookingRequest, check: Callable[[Session], None]) -> Appointment: ...


def _unavailable(taken: SlotTakenError) -> SlotUnavailableError:
    doing = "booking" if taken.holder.kind == "booking" else "holding"
    return SlotUnavailableError(f"another caller is {doing} that time")


def _overlaps(start: datetime, end: datetime, hold: Hold) -> bool:
    return start < hold.end and hold.start < end


class GuardedCalendar:
    """One agent's calendar with the server's slot claims applied, for one caller."""

    def __init__(
        self, calendar: CalendarProvider, holds: SlotHolds, agent_id: str, claimant: Claimant, hold_minutes: int
    ) -> None:
        self.provider = calendar
        self._holds = holds
        self._agent_id = agent_id
        self._claimant = claimant
        self._hold_minutes = hold_minutes

    @property
    def default_duration(self) -> timedelta:
        return self.provider.default_duration

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """The provider's free slots, without time another caller holds or is booking, and with
        this caller's own held slots (a vendor reservation hides them at the vendor)."""
        # The claims are read while the provider answers: an availability check costs no extra wait.
        slots, claims = await asyncio.gather(
            self.provider.free_slots(start, end, duration), self._holds.active(self._agent_id, start, end + duration)
        )
        others = [hold for hold in claims if not self._claimant.owns(hold)]
        free = [slot for slot in slots if not any(_overlaps(slot.start, slot.end, hold) for hold in others)]
        offered = {slot.start for slot in free}
        zone = slots[0].start.tzinfo if slots else start.tzinfo
        mine = [
            TimeSlot(start=hold.start.astimezone(zone), end=hold.end.astimezone(zone))
            for hold in claims
            if hold.kind == "hold"
            and self._claimant.owns(hold)
            and start <= hold.start < end
            and hold.end - hold.start == duration
            and hold.start not in offered
        ]
        return sorted(free + mine, key=lambda slot: slot.start) if mine else free

    async def hold(self, start: datetime, duration: timedelta) -> Hold:
        """Keep [start, start + duration) for this caller for the agent's hold minutes.

        Raises `SlotUnavailableError` when the provider has no such free slot or another caller
        holds it. Where the vendor can reserve slots itself (Cal.com), it reserves there too.
        """
        end = start.astimezone(UTC) + duration
        for claim in await self._holds.active(self._agent_id, start, end):
            if claim.kind == "hold" and self._claimant.owns(claim) and (claim.start, claim.end) == (start, end):
                return claim  # the same caller asking again (a retry, a second leg of the call)
        offered = await self.provider.free_slots(start, start + timedelta(minutes=1), duration)
        if not any(slot.start == start for slot in offered):
            raise SlotUnavailableError("that time is not free")
        hold = await self._claim(start, end, "hold", timedelta(minutes=self._hold_minutes))
        if isinstance(self.provider, SlotReservations):
            try:
                reservation = await self.provider.reserve(start, end, self._hold_minutes)
            except IntegrationError as error:
                # The hold in our database already keeps every caller of this server away.
                log.warning("vendor reservation failed; holding in the server only: %s", error)
            else:
                await self._holds.note_reservation(hold.id, reservation)
                hold = hold.model_copy(update={"reservation_id": reservation})
        return hold

    async def release(self, hold_id: str) -> Hold:
        """Release a hold; releasing it again (or after it expired) is harmless."""
        hold = await self._holds.release(self._agent_id, hold_id)
        if hold is None:
            raise NotFoundError("hold", hold_id)
        if hold.reservation_id and isinstance(self.provider, SlotReservations):
            await self._release_reservation(hold.reservation_id)
        return hold

    async def held(self, hold_id: str) -> Hold:
        hold = await self._holds.get(self._agent_id, hold_id)
        if hold is None or hold.kind != "hold":
            raise NotFoundError("hold", hold_id)
        return hold

    async def book(self, request: BookingRequest, hold: Hold | None = None) -> Appointment:
        """Book through a claim on the slot, confirming `hold` when the booking is the held one."""
        claimant = self._claimant
        if hold is not None:
            claimant = Claimant(claimant.call_id, claimant.phone, claimant.email, hold_id=hold.id)
        if isinstance(self.provider, BooksUnderLock):
            return await self._book_under_lock(self.provider, request, claimant, hold)
        booking = await self._claim(request.start, request.end, "booking", _BOOKING_CLAIM, claimant)
        try:
            if hold is not None and hold.reservation_id and isinstance(self.provider, SlotReservations):
                # Cal.com would refuse our own booking of the slot we reserved.
                await self._release_reservation(hold.reservation_id)
            appointment = await self.provider.book(request)
        except BaseException:
            await asyncio.shield(self._holds.drop(booking))
            raise
        # A booking made with a hold ends the hold, whether or not the caller kept its time.
        await self._holds.settle(booking, appointment.id, linger=_LINGER, confirms=hold)
        return appointment

    async def _book_under_lock(
        self, provider: BooksUnderLock, request: BookingRequest, claimant: Claimant, hold: Hold | None
    ) -> Appointment:
        def check(session: Session) -> None:
            try:
                self._holds.check_free(session, self._agent_id, request.start, request.end, claimant)
            except SlotTakenError as taken:
                raise _unavailable(taken) from None

        appointment = await provider.book_under_lock(request, check)
        if hold is not None:
            await self._holds.confirm(hold, appointment.id)
        return appointment

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move an appointment through a claim on its new time; its old time is freed for others."""
        # The appointment's own recent claim must not stand in the way of moving it a little.
        await self._holds.forget_appointment(self._agent_id, appointment_id)
        booking = await self._claim(start, end, "booking", _BOOKING_CLAIM)
        try:
            moved = await self.provider.reschedule(appointment_id, start, end)
        except BaseException:
            await asyncio.shield(self._holds.drop(booking))
            raise
        await self._holds.settle(booking, moved.id, linger=_LINGER)
        return moved

    async def cancel(self, appointment_id: str) -> Appointment:
        cancelled = await self.provider.cancel(appointment_id)
        await self._holds.forget_appointment(self._agent_id, appointment_id)
        return cancelled

    async def _claim(
        self, start: datetime, end: datetime, kind: HoldKind, ttl: timedelta, claimant: Claimant | None = None
    ) -> Hold:
        try:
            return await self._holds.claim(
                self._agent_id, start, end, kind=kind, claimant=claimant or self._claimant, ttl=ttl
            )
        except SlotTakenError as taken:
            raise _unavailable(taken) from None

    async def _release_reservation(self, reservation_id: str) -> None:
        assert isinstance(self.provider, SlotReservations)
        try:
            await self.provider.release(reservation_id)
        except IntegrationError as error:
            # Vendor reservations expire by themselves; a failed release only delays that.
            log.warning("could not release the vendor reservation: %s", error)
