"""The non-secret settings of a Xero connection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["XeroSettings"]


class XeroSettings(BaseModel):
    """Where Xero lives and which organisation (tenant) the connection acts in.

    Secrets (`client_id`, `client_secret`, the rotating `refresh_token`, and the `access_token`
    and `expires_at` saved after each refresh) live in the vault, never here.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default="https://api.xero.com",
        description="Xero API root (the Accounting API is under /api.xro/2.0); the sandbox's URL in tests and demos.",
    )
    identity_url: str = Field(
        default="https://identity.xero.com",
        description="Xero identity server (token endpoint /connect/token); the sandbox's URL in tests and demos.",
    )
    tenant_id: str = Field(
        description="The organisation's tenant id (GET https://api.xero.com/connections), sent as xero-tenant-id.",
    )
    sales_account_code: str = Field(
        default="200",
        description="Revenue account code for invoice lines (200 is Sales in Xero's default chart of accounts).",
    )
