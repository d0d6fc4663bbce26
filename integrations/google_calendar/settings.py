"""The non-secret settings of one Google Calendar connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from integrations.capabilities.scheduling import CalendarRulesSettings
from integrations.common.setting_types import HttpUrl

__all__ = ["GoogleCalendarSettings", "SendUpdates"]

SendUpdates = Literal["all", "externalOnly", "none"]


class GoogleCalendarSettings(CalendarRulesSettings):
    """Where the Calendar API lives, which calendars to use, and the business's booking rules.

    Google Calendar has no notion of opening hours or a slot grid, so the booking rules
    (`weekly_hours`, `slot_minutes`, …) are ours; `timezone` defaults to the agent's zone.
    Every calendar in `calendar_ids` counts as busy time; bookings go to the first one.
    """

    base_url: HttpUrl = "https://www.googleapis.com"
    token_url: HttpUrl = "https://oauth2.googleapis.com/token"
    calendar_ids: list[str] = Field(default_factory=lambda: ["primary"], min_length=1)
    # Whether Google emails the caller an invitation (and updates) for the booked event.
    send_updates: SendUpdates = "all"

    @field_validator("calendar_ids")
    @classmethod
    def _no_blank_ids(cls, value: list[str]) -> list[str]:
        if any(not calendar_id.strip() for calendar_id in value):
            raise ValueError("calendar ids must not be blank")
        return value
