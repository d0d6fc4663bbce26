"""The calendar capability: find free time and manage appointments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from integrations.capabilities.models import Appointment, BookingRequest, TimeSlot

__all__ = ["CalendarProvider", "SlotReservations"]


@runtime_checkable
class CalendarProvider(Protocol):
    """A calendar a caller can book into.

    Every datetime in and out is timezone-aware. Providers enforce their own booking rules
    (business hours, buffers, notice) and raise `SlotUnavailableError` when a time breaks them.
    """

    name: str

    @property
    def default_duration(self) -> timedelta:
        """The appointment length to offer when the caller names none."""
        ...

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        """Every bookable slot of `duration` that starts in [start, end), in time order."""
        ...

    async def book(self, request: BookingRequest) -> Appointment:
        """Book the slot after re-checking it is free.

        Booking the same start again for the same attendee (same phone or email) returns the
        existing appointment instead of a second one. Raises `SlotUnavailableError` otherwise.
        """
        ...

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        """Move a booked appointment; raises `SlotUnavailableError` or `NotFoundError`."""
        ...

    async def cancel(self, appointment_id: str) -> Appointment:
        """Cancel an appointment. Cancelling a cancelled appointment returns it unchanged."""
        ...

    async def get(self, appointment_id: str) -> Appointment:
        """One appointment by id; raises `NotFoundError`."""
        ...

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        """Booked appointments for an attendee's phone or email that end after `since`."""
        ...


@runtime_checkable
class SlotReservations(Protocol):
    """A calendar whose vendor can reserve a slot for a few minutes (Cal.com's slot reservations).

    Optional: the tool server keeps every hold in its own database for every provider, and also
    reserves at the vendor when the connector offers this, so the vendor's own booking page
    stops offering the slot too. The server releases the reservation before it books the held
    slot, and when the hold is released; a reservation left behind expires at the vendor.
    """

    async def reserve(self, start: datetime, end: datetime, minutes: int) -> str:
        """Reserve [start, end) for `minutes`; returns the vendor's reservation id."""
        ...

    async def release(self, reservation_id: str) -> None:
        """Drop a reservation. Releasing one that expired or was already released is not an error."""
        ...
