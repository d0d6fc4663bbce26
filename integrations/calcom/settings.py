"""The non-secret settings of one Cal.com connection. The API key lives in the vault, never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.setting_types import HttpUrl, ZoneName
from integrations.common.zones import canonical_zone_name

__all__ = ["CalcomSettings"]


class CalcomSettings(BaseModel):
    """Where Cal.com's API v2 is, and which event type callers book.

    Cal.com owns the business's rules (schedule, slot interval, notice, buffers): the slots come
    from `GET /v2/slots` for `event_type_id`, never from rules of ours. `length_minutes` is the
    event type's length, what the connector offers when a caller names no duration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://api.cal.com",
        description="Cal.com's API root (paths start /v2/); the sandbox emulator's URL in tests and demos.",
    )
    event_type_id: int = Field(gt=0, description="The Cal.com event type callers are booked into.")
    length_minutes: int = Field(default=30, ge=5, le=24 * 60, description="The event type's length in minutes.")
    timezone: ZoneName | None = Field(
        default=None,
        description="IANA zone slots are asked and shown in, and the attendee's zone; defaults to the agent's.",
    )

    def zone(self, agent_zone: str) -> str:
        """The connection's zone, falling back to the agent's."""
        return self.timezone or canonical_zone_name(agent_zone)
