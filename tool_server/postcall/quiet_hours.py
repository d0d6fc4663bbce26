"""Quiet hours: when a follow-up text may reach a person, in their own time zone.

A follow-up due outside the allowed hours waits (durably, see `workflows.sync_job`) for the next
allowed minute. Live sends during a call are never held: the caller asked for them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones
from pydantic import BaseModel, ConfigDict, Field, model_validator

from integrations.common.zones import zone_info

__all__ = ["QuietHours", "next_allowed", "recipient_zone"]


class QuietHours(BaseModel):
    """The local hours in which follow-up texts may be sent (08:00 to 21:00 unless set)."""

    model_config = ConfigDict(extra="forbid")

    allowed_from: time = Field(default=time(8, 0), description="Earliest local time a follow-up text may arrive.")
    allowed_until: time = Field(default=time(21, 0), description="Texts due at or after this local time wait.")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.allowed_from == self.allowed_until:
            raise ValueError("allowed_from and allowed_until must differ")
        return self

    def allows(self, local: time) -> bool:
        start, end = self.allowed_from, self.allowed_until
        if start < end:
            return start <= local < end
        # An overnight window, e.g. 20:00-02:00 for a business whose callers keep late hours.
        return local >= start or local < end


def recipient_zone(phone: str, fallback: ZoneInfo) -> ZoneInfo:
    """The recipient's zone from their number: its one zone, or the business's when it is among several.

    A number whose region spans zones (US toll-free, most of Australia's mobiles) and does not
    include the business's zone gets the business's zone too: nothing better is known.
    """
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return fallback
    known = [name for name in zones if name != number_zones.UNKNOWN_TIMEZONE]
    if len(known) == 1:
        return zone_info(known[0])
    return fallback


def next_allowed(now: datetime, zone: ZoneInfo, hours: QuietHours) -> datetime | None:
    """None when a text may go now; otherwise the next allowed minute, as an aware instant."""
    local = now.astimezone(zone)
    if hours.allows(local.time()):
        return None
    day = local.date()
    for offset in (0, 1):
        candidate = datetime.combine(day + timedelta(days=offset), hours.allowed_from, tzinfo=zone)
        if candidate > local:
            return candidate
    raise AssertionError("an allowed start lies within a day")  # pragma: no cover
