"""The non-secret settings of one GoHighLevel (LeadConnector) connection. Tokens live in the vault."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.setting_types import HttpUrl, ZoneName
from integrations.common.zones import canonical_zone_name

__all__ = ["GoHighLevelSettings"]


class GoHighLevelSettings(BaseModel):
    """Which sub-account (location) and which calendar a connection works in.

    Credentials are secrets, held in the vault, never here. Two kinds work:

    - an OAuth app installed on the location: `client_id`, `client_secret` and `refresh_token`
      (plus the `access_token` and `expires_at` the connector stores after each refresh; the
      refresh token rotates at every refresh and the new one is saved each time);
    - a Private Integration token of the sub-account, stored alone as `access_token`: used as it
      is, never refreshed; if GoHighLevel refuses it the connection is marked expired.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://services.leadconnectorhq.com",
        description="The LeadConnector API root; the sandbox emulator's URL in tests and demos.",
    )
    location_id: str = Field(min_length=1, description="The sub-account (location) every request is scoped to.")
    calendar_id: str | None = Field(
        default=None, description="The calendar callers are booked into (needed for the calendar capability)."
    )
    slot_minutes: int = Field(
        default=30, ge=5, le=24 * 60, description="The calendar's slot length in minutes, offered by default."
    )
    timezone: ZoneName | None = Field(
        default=None, description="IANA zone slots are asked and booked in; defaults to the agent's."
    )
    default_region: str = Field(
        default="US",
        min_length=2,
        max_length=2,
        description="ISO country to read stored phones written without a country code (the location's country).",
    )

    def zone(self, agent_zone: str) -> str:
        """The connection's zone, falling back to the agent's."""
        return self.timezone or canonical_zone_name(agent_zone)
