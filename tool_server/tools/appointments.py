"""book_appointment, reschedule_appointment, cancel_appointment and find_appointments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field

from integrations.capabilities import BookingRequest, SlotUnavailableError
from integrations.capabilities.models import Appointment, elapsed
from tool_server.errors import ToolError
from tool_server.slots.store import Hold
from tool_server.spoken import spoken_list, zone_label
from tool_server.tools.alternatives import slot_unavailable
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.calendar_access import calendar_for, future_start, zone_for
from tool_server.tools.fields import DateTimeText, Email, Phone, TimeZoneName
from tool_server.tools.views import AppointmentView, appointment_view

__all__ = ["BOOK_APPOINTMENT", "CANCEL_APPOINTMENT", "FIND_APPOINTMENTS", "RESCHEDULE_APPOINTMENT"]

# Provider ids, not ours: a Microsoft Graph event id runs to about 150 characters.
APPOINTMENT_ID_LENGTH = 255

_START_DESCRIPTION = (
    "Start as ISO 8601. Without an offset it is read as local time in `timezone` "
    "(or the business's timezone). Use a start returned by check_availability."
)


class BookAppointmentInput(ToolInput):
    free_text_fields = frozenset({"notes"})

    start: DateTimeText | None = Field(
        default=None,
        description=_START_DESCRIPTION + " May be left out when hold_id is given (the held start is used).",
        examples=["2026-03-09T10:00", "2026-03-09T10:00:00-04:00"],
    )
    hold_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Id from hold_slot: books the held slot, which no other caller could take meanwhile.",
    )
    duration_minutes: int | None = Field(
        default=None, ge=5, le=480, description="Appointment length. Defaults to the business's slot length."
    )
    timezone: TimeZoneName | None = None
    caller_name: str = Field(min_length=1, max_length=200, description="The caller's full name.")
    caller_phone: Phone | None = None
    caller_email: Email | None = None
    caller_address: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Street address for a visit at the caller's place (field service), as the caller said it.",
    )
    notes: str | None = Field(default=None, max_length=2000, description="Reason for the visit, in a few words.")


class AppointmentResult(ToolResult):
    appointment: AppointmentView


class RescheduleAppointmentInput(ToolInput):
    appointment_id: str = Field(
        min_length=1,
        max_length=APPOINTMENT_ID_LENGTH,
        description="Id from book_appointment or find_appointments.",
    )
    new_start: DateTimeText = Field(description=_START_DESCRIPTION, examples=["2026-03-10T14:30"])
    duration_minutes: int | None = Field(
        default=None, ge=5, le=480, description="New length. Defaults to the current length."
    )
    timezone: TimeZoneName | None = None


class CancelAppointmentInput(ToolInput):
    appointment_id: str = Field(
        min_length=1,
        max_length=APPOINTMENT_ID_LENGTH,
        description="Id from book_appointment or find_appointments.",
    )
    timezone: TimeZoneName | None = None


class FindAppointmentsInput(ToolInput):
    caller_phone: Phone | None = None
    caller_email: Email | None = None
    timezone: TimeZoneName | None = None


class FindAppointmentsResult(ToolResult):
    appointments: list[AppointmentView] = Field(description="Upcoming booked appointments, soonest first.")


def _booked(ctx: ToolContext, appointment: Appointment, zone: ZoneInfo) -> AppointmentResult:
    view = appointment_view(appointment, zone, ctx.now.astimezone(zone).date())
    return AppointmentResult(appointment=view, speech=f"You're booked for {view.spoken} {zone_label(zone)}.")


def _requested_start(ctx: ToolContext, args: BookAppointmentInput, zone: ZoneInfo, hold: Hold | None) -> datetime:
    if args.start:
        return future_start(ctx, args.start, zone, "start")
    if hold is None:
        raise ToolError.invalid("start", "give start (or the hold_id of a held slot)")
    if hold.start <= ctx.now:
        raise ToolError.invalid(
            "hold_id", "the held slot has already started", speech="That time has already passed. When else works?"
        )
    return hold.start


async def book_appointment(ctx: ToolContext, args: BookAppointmentInput) -> AppointmentResult:
    zone = zone_for(ctx, args.timezone)
    if not args.caller_phone and not args.caller_email:
        raise ToolError.invalid(
            "caller_phone",
            "give caller_phone or caller_email so the booking can be found again",
            speech="What's the best phone number to reach you?",
        )
    calendar = calendar_for(ctx, phone=args.caller_phone, email=args.caller_email)
    hold = await calendar.held(args.hold_id) if args.hold_id else None
    if hold is not None and hold.appointment_id and hold.confirmed_at:
        # The hold was already turned into this appointment (a retry with a new key).
        return _booked(ctx, await calendar.provider.get(hold.appointment_id), zone)
    start = _requested_start(ctx, args, zone, hold)
    if args.duration_minutes:
        duration = timedelta(minutes=args.duration_minutes)
    elif hold is not None and hold.start == start:
        duration = elapsed(hold.start, hold.end)
    else:
        duration = calendar.default_duration
    request = BookingRequest(
        start=start,
        end=start.astimezone(UTC) + duration,
        attendee_name=args.caller_name,
        attendee_phone=args.caller_phone,
        attendee_email=args.caller_email,
        attendee_address=args.caller_address,
        notes=args.notes,
        idempotency_key=ctx.idempotency_key,
    )
    try:
        appointment = await calendar.book(request, hold)
    except SlotUnavailableError as error:
        raise await slot_unavailable(ctx, calendar, start, duration, zone, error.reason) from None
    return _booked(ctx, appointment, zone)


async def reschedule_appointment(ctx: ToolContext, args: RescheduleAppointmentInput) -> AppointmentResult:
    zone = zone_for(ctx, args.timezone)
    start = future_start(ctx, args.new_start, zone, "new_start")
    calendar = calendar_for(ctx)
    current = await calendar.provider.get(args.appointment_id)
    duration = (
        timedelta(minutes=args.duration_minutes) if args.duration_minutes else elapsed(current.start, current.end)
    )
    try:
        moved = await calendar.reschedule(args.appointment_id, start, start.astimezone(UTC) + duration)
    except SlotUnavailableError as error:
        raise await slot_unavailable(ctx, calendar, start, duration, zone, error.reason) from None
    view = appointment_view(moved, zone, ctx.now.astimezone(zone).date())
    return AppointmentResult(appointment=view, speech=f"Done. You're now booked for {view.spoken} {zone_label(zone)}.")


async def cancel_appointment(ctx: ToolContext, args: CancelAppointmentInput) -> AppointmentResult:
    zone = zone_for(ctx, args.timezone)
    cancelled = await calendar_for(ctx).cancel(args.appointment_id)
    view = appointment_view(cancelled, zone, ctx.now.astimezone(zone).date())
    return AppointmentResult(
        appointment=view, speech=f"Your appointment on {view.spoken} {zone_label(zone)} is cancelled."
    )


async def find_appointments(ctx: ToolContext, args: FindAppointmentsInput) -> FindAppointmentsResult:
    if not args.caller_phone and not args.caller_email:
        raise ToolError.invalid("caller_phone", "give caller_phone or caller_email")
    zone = zone_for(ctx, args.timezone)
    today = ctx.now.astimezone(zone).date()
    found = await ctx.providers.calendar().find(phone=args.caller_phone, email=args.caller_email, since=ctx.now)
    views = [appointment_view(appointment, zone, today) for appointment in found]
    if not views:
        speech = "I don't see any upcoming appointments for you."
    elif len(views) == 1:
        speech = f"You have one appointment, on {views[0].spoken} {zone_label(zone)}."
    else:
        speech = (
            f"You have {len(views)} appointments: {spoken_list([v.spoken for v in views[:3]], 'and')}"
            f"{' and more' if len(views) > 3 else ''}, {zone_label(zone)}."
        )
    return FindAppointmentsResult(appointments=views, speech=speech)


BOOK_APPOINTMENT = ToolSpec(
    name="book_appointment",
    title="Book an appointment",
    description=(
        "Book an appointment for the caller. Call check_availability first and use one of its slot "
        "starts. The slot is re-checked; if it was taken meanwhile the error is SLOT_UNAVAILABLE and "
        "details.alternatives holds the nearest free slots to offer instead. Needs the caller's name and "
        "a phone or an email. If you held the slot with hold_slot, pass its hold_id. "
        "Retrying the same booking never books twice."
    ),
    input_model=BookAppointmentInput,
    output_model=AppointmentResult,
    run=book_appointment,
    capability="calendar",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="caller_phone",
    examples=[
        {
            "start": "2026-03-09T10:00",
            "caller_name": "Jane Doe",
            "caller_phone": "+12125550142",
            "notes": "Cleaning",
        }
    ],
    wait_message="One moment while I book that.",
)

RESCHEDULE_APPOINTMENT = ToolSpec(
    name="reschedule_appointment",
    title="Reschedule an appointment",
    description=(
        "Move an existing appointment to a new start. Find the appointment_id with find_appointments. "
        "If the new time is taken the error is SLOT_UNAVAILABLE with details.alternatives."
    ),
    input_model=RescheduleAppointmentInput,
    output_model=AppointmentResult,
    run=reschedule_appointment,
    capability="calendar",
    read_only=False,
    destructive=False,
    idempotent=True,
    examples=[{"appointment_id": "apt_3f9c2a7d1e0b4c5a6d7e", "new_start": "2026-03-10T14:30"}],
    wait_message="Let me move that for you.",
)

CANCEL_APPOINTMENT = ToolSpec(
    name="cancel_appointment",
    title="Cancel an appointment",
    description=(
        "Cancel an appointment by id (from find_appointments). Confirm with the caller first. "
        "Cancelling an already cancelled appointment succeeds and changes nothing."
    ),
    input_model=CancelAppointmentInput,
    output_model=AppointmentResult,
    run=cancel_appointment,
    capability="calendar",
    read_only=False,
    destructive=True,
    idempotent=True,
    examples=[{"appointment_id": "apt_3f9c2a7d1e0b4c5a6d7e"}],
    wait_message="One moment while I cancel that.",
)

FIND_APPOINTMENTS = ToolSpec(
    name="find_appointments",
    title="Find a caller's appointments",
    description="List the caller's upcoming appointments by phone or email, soonest first.",
    input_model=FindAppointmentsInput,
    output_model=FindAppointmentsResult,
    run=find_appointments,
    capability="calendar",
    read_only=True,
    idempotent=True,
    caller_phone_field="caller_phone",
    examples=[{"caller_phone": "+12125550142"}],
)
