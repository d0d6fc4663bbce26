"""The non-secret settings of one Housecall Pro connection. The API key lives in the vault, never here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.setting_types import HttpUrl, ZoneName
from integrations.common.zones import canonical_zone_name

__all__ = ["HousecallProSettings"]


class HousecallProSettings(BaseModel):
    """Where Housecall Pro's public API is, and how a caller's booking lands there.

    Housecall Pro owns the availability: free time is what its booking windows
    (`GET /company/schedule_availability/booking_windows`, the company's Online Booking settings)
    offer. A booking becomes a job (`book_as="job"`) or an estimate visit (`book_as="estimate"`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://api.housecallpro.com",
        description="Housecall Pro's API root; the sandbox emulator's URL in tests and demos.",
    )
    book_as: Literal["job", "estimate"] = Field(
        default="job", description="What a booking creates in Housecall Pro: a scheduled job or an estimate visit."
    )
    appointment_minutes: int = Field(
        default=60, ge=15, le=24 * 60, description="The visit length offered when a caller names none."
    )
    timezone: ZoneName | None = Field(
        default=None, description="The company's IANA zone (days of availability); defaults to the agent's."
    )
    phone_region: str = Field(
        default="US",
        min_length=2,
        max_length=2,
        description="ISO region for reading stored phones written without a country code.",
    )
    company_id: str | None = Field(
        default=None, description="For multi-location accounts: the location, sent as X-Company-Id."
    )

    def zone(self, agent_zone: str) -> str:
        """The connection's zone, falling back to the agent's."""
        return self.timezone or canonical_zone_name(agent_zone)
