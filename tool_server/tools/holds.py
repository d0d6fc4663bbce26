"""hold_slot and release_hold: keep a slot for the caller while the agent gathers their details."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from integrations.capabilities import SlotUnavailableError
from tool_server.spoken import spoken_datetime, zone_label
from tool_server.tools.alternatives import slot_unavailable
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.calendar_access import calendar_for, future_start, zone_for
from tool_server.tools.fields import DateTimeText, Email, Phone, TimeZoneName

__all__ = ["HOLD_SLOT", "RELEASE_HOLD"]


class HoldSlotInput(ToolInput):
    start: DateTimeText = Field(
        description="Start as ISO 8601, from check_availability. Without an offset it is read in `timezone` "
        "(or the business's timezone).",
        examples=["2026-03-09T10:00"],
    )
    duration_minutes: int | None = Field(
        default=None, ge=5, le=480, description="Appointment length. Defaults to the business's slot length."
    )
    timezone: TimeZoneName | None = None
    contact_phone: Phone | None = None
    contact_email: Email | None = None


class HoldResult(ToolResult):
    hold_id: str = Field(description="Pass to book_appointment as hold_id to book the held slot.")
    start: str = Field(description="Held start, ISO 8601 with offset.")
    end: str = Field(description="Held end, ISO 8601 with offset.")
    expires_at: str = Field(description="When the hold lapses by itself, ISO 8601 with offset.")
    status: str = Field(description="held, released, expired or booked.")


class ReleaseHoldInput(ToolInput):
    hold_id: str = Field(min_length=1, max_length=64, description="Id from hold_slot.")
    timezone: TimeZoneName | None = None


async def hold_slot(ctx: ToolContext, args: HoldSlotInput) -> HoldResult:
    zone = zone_for(ctx, args.timezone)
    start = future_start(ctx, args.start, zone, "start")
    calendar = calendar_for(ctx, phone=args.contact_phone, email=args.contact_email)
    duration = timedelta(minutes=args.duration_minutes) if args.duration_minutes else calendar.default_duration
    try:
        hold = await calendar.hold(start, duration)
    except SlotUnavailableError as error:
        raise await slot_unavailable(ctx, calendar, start, duration, zone, error.reason) from None
    spoken = spoken_datetime(start.astimezone(zone), ctx.now.astimezone(zone).date())
    minutes = round((hold.expires_at - ctx.now).total_seconds() / 60)
    return HoldResult(
        hold_id=hold.id,
        start=hold.start.astimezone(zone).isoformat(),
        end=hold.end.astimezone(zone).isoformat(),
        expires_at=hold.expires_at.astimezone(zone).isoformat(),
        status="held",
        speech=f"I'm holding {spoken} {zone_label(zone)} for you for the next {minutes} minutes.",
    )


async def release_hold(ctx: ToolContext, args: ReleaseHoldInput) -> HoldResult:
    zone = zone_for(ctx, args.timezone)
    hold = await calendar_for(ctx).release(args.hold_id)
    if hold.confirmed_at is not None:
        status, speech = "booked", "That time is already booked for you, so there's nothing to release."
    elif hold.released_at is not None:
        status, speech = "released", "Okay, I've let that time go."
    else:
        status, speech = "expired", "That hold had already lapsed, so the time is free again."
    return HoldResult(
        hold_id=hold.id,
        start=hold.start.astimezone(zone).isoformat(),
        end=hold.end.astimezone(zone).isoformat(),
        expires_at=hold.expires_at.astimezone(zone).isoformat(),
        status=status,
        speech=speech,
    )


HOLD_SLOT = ToolSpec(
    name="hold_slot",
    title="Hold a slot",
    description=(
        "Keep a free slot (from check_availability) for this caller for a few minutes while you ask "
        "for their name and contact details; no other caller can book or hold it meanwhile. Then call "
        "book_appointment with the hold_id. The hold lapses by itself; call release_hold if the caller "
        "changes their mind. If the time was taken, the error is SLOT_UNAVAILABLE with "
        "details.alternatives."
    ),
    input_model=HoldSlotInput,
    output_model=HoldResult,
    run=hold_slot,
    capability="calendar",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="contact_phone",
    examples=[{"start": "2026-03-09T10:00"}, {"start": "2026-03-09T15:00", "timezone": "America/Los_Angeles"}],
)

RELEASE_HOLD = ToolSpec(
    name="release_hold",
    title="Release a held slot",
    description=(
        "Give back a slot held with hold_slot, e.g. when the caller picks another time. "
        "Releasing twice, or after the hold lapsed, succeeds and changes nothing."
    ),
    input_model=ReleaseHoldInput,
    output_model=HoldResult,
    run=release_hold,
    capability="calendar",
    read_only=False,
    destructive=False,
    idempotent=True,
    examples=[{"hold_id": "hold_3f9c2a7d1e0b4c5a6d7e"}],
)
