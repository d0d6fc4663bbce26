"""The non-secret settings of one Cal.com connection. The API key lives in the vault, never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integrations.common.zones import UnknownZoneError, canonical_zone_name

__all__ = ["CalcomSettings"]


class CalcomSettings(BaseModel):
    """Where Cal.com's API v2 is, and which event type callers book.

    Cal.com owns the business's rules (schedule, slot interval, notice, buffers): the slots come
    from `GET /v2/slots` for `event_type_id`, never from rules of ours. `length_minutes` is the
    event type's length, what the connector offers when a caller names no duration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="https://api.cal.com",
        description="Cal.com's API root (paths start /v2/); the sandbox emulator's URL in tests and demos.",
    )
    event_type_id: int = Field(gt=0, description="The Cal.com event type callers are booked into.")
    length_minutes: int = Field(default=30, ge=5, le=24 * 60, description="The event type's length in minutes.")
    timezone: str | None = Field(
        default=None,
        description="IANA zone slots are asked and shown in, and the attendee's zone; defaults to the agent's.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return canonical_zone_name(value)
        except UnknownZoneError as error:
            raise ValueError(f"unknown IANA timezone: {error}") from None

    def zone(self, agent_zone: str) -> str:
        """The connection's zone, falling back to the agent's."""
        return self.timezone or canonical_zone_name(agent_zone)
