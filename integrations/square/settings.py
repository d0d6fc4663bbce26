"""The non-secret settings of a Square connection. The access token lives in the vault, never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["SquareSettings"]


class SquareSettings(BaseModel):
    """Where Square is and which of the seller's locations orders, invoices and payment links belong to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="https://connect.squareup.com",
        description="Square's API root (https://connect.squareupsandbox.com for Square's own sandbox; "
        "the emulator's URL in tests and demos).",
    )
    location_id: str = Field(min_length=1, description="The Square location that owns orders, invoices and links.")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")
