"""The non-secret settings of a QuickBooks Online connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["QuickBooksSettings"]


class QuickBooksSettings(BaseModel):
    """Where QuickBooks Online lives and which company (realm) this connection books into.

    Credentials (`client_id`, `client_secret`, `refresh_token`, and the `access_token` and
    `expires_at` the connector stores after each refresh) are secrets, never here.
    """

    model_config = ConfigDict(extra="forbid")

    realm_id: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[0-9A-Za-z]+$",
        description="The QuickBooks company id (realmId) Intuit returned when the app was connected.",
    )
    base_url: str = Field(
        default="https://quickbooks.api.intuit.com",
        description="Accounting API host (https://sandbox-quickbooks.api.intuit.com for Intuit's own sandbox; "
        "the emulator's URL in tests and demos). The connector appends /v3/company/{realm_id}.",
    )
    token_url: str = Field(
        default="https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        description="Intuit's OAuth 2 token endpoint (the emulator's in tests and demos).",
    )
    item_id: str = Field(
        default="1",
        min_length=1,
        description="The QuickBooks product/service (Item) invoice lines are booked against; "
        "'1' is the 'Services' item new companies start with.",
    )
    minor_version: int = Field(
        default=75,
        ge=75,
        description="The API minorversion sent on every request (Intuit enforces 75 or later).",
    )
