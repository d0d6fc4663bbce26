"""The agent as the rest of the server sees it."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.spec import CAPABILITIES, Capability

__all__ = ["CAPABILITIES", "Agent", "Capability", "Connection", "ConnectionRole", "ConnectionStatus"]


ConnectionStatus = Literal["active", "expired"]
ConnectionRole = Literal["primary", "secondary"]


class Connection(BaseModel):
    """Which provider serves one capability for an agent, and with what (non-secret) settings.

    Secrets are never on this model: they stay sealed in the database and reach a connector
    only through its credential vault.
    """

    model_config = ConfigDict(frozen=True)

    capability: Capability
    provider: str
    settings: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    status: ConnectionStatus = "active"
    status_detail: str | None = None
    # The primary connection serves the live tools; a secondary CRM is written by the post-call sync too.
    role: ConnectionRole = "primary"


class Agent(BaseModel):
    """A voice or chat agent: one business's tenant. A key reaches only its own agent."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    timezone: str = Field(description="IANA business timezone; bare local times are read in it.")
    phone_region: str = Field(description="ISO 3166 alpha-2 region for phone numbers without a country code.")
    hold_minutes: int = Field(default=5, ge=1, le=60, description="How long hold_slot keeps a slot for a caller.")
    connections: dict[Capability, Connection] = Field(
        default_factory=dict, description="The primary connection of each capability: what the tools use."
    )
    secondary_connections: list[Connection] = Field(
        default_factory=list, description="More CRMs the post-call sync writes each call to, besides the primary."
    )

    def with_primary(self, connection: Connection) -> Agent:
        """This agent as if `connection` were its primary for its capability (a secondary CRM's sync)."""
        primary = connection.model_copy(update={"role": "primary"})
        return self.model_copy(update={"connections": {**self.connections, connection.capability: primary}})

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
