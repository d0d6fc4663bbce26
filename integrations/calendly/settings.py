"""The non-secret settings of one Calendly connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integrations.common.setting_types import HttpUrl, ZoneName

__all__ = ["CalendlySettings"]


class CalendlySettings(BaseModel):
    """Where Calendly's API lives, which event type callers book, and how a caller is written down.

    Calendly owns the business's rules: opening hours, the slot grid, notice and horizon come from
    the event type's availability in Calendly, not from these settings. `event_type` is the URI of
    the event type to book (`https://api.calendly.com/event_types/…`); left out, the account's
    first active event type is used. `timezone` is the zone slots are presented in (the agent's
    zone by default). Calendly requires an invitee email; a caller who gives none is booked under
    `placeholder_email` with `{digits}` replaced by their phone's digits.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = "https://api.calendly.com"
    token_url: HttpUrl = "https://auth.calendly.com/oauth/token"
    event_type: str | None = None
    timezone: ZoneName | None = None
    # The event type's custom question that receives the caller's notes (matched by its text);
    # when the event type has no such question, its first enabled text question is used.
    notes_question: str = "Please share anything that will help prepare for our meeting."
    placeholder_email: str = "caller-{digits}@phone-booking.invalid"
    # Ceiling for one HTTP attempt; the tool call's deadline may make it shorter.
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("event_type")
    @classmethod
    def _event_type_uri(cls, value: str | None) -> str | None:
        if value is not None and "/event_types/" not in value:
            raise ValueError("must be an event type URI such as https://api.calendly.com/event_types/<uuid>")
        return value

    @field_validator("placeholder_email")
    @classmethod
    def _placeholder(cls, value: str) -> str:
        if "{digits}" not in value or "@" not in value:
            raise ValueError("must contain {digits} and an @, e.g. caller-{digits}@example.com")
        return value
