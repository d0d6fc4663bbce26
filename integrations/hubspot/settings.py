"""The non-secret settings of a HubSpot connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HubSpotSettings"]


class HubSpotSettings(BaseModel):
    """Where the HubSpot API lives. Everything else a connection needs is a secret.

    Two kinds of credentials work, both held in the vault, never here:

    - an OAuth app install: `client_id`, `client_secret` and `refresh_token` (plus the
      `access_token` and `expires_at` the connector stores after each refresh);
    - a private-app token (`pat-…`): a vault holding only `access_token`, with no refresh token,
      is used as it is. Such tokens do not expire, so nothing is refreshed; if HubSpot ever
      refuses one, the connection is marked expired and tools answer NOT_CONNECTED.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default="https://api.hubapi.com",
        description="HubSpot API base URL; the sandbox emulator's URL in tests and demos.",
    )
