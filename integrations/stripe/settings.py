"""The non-secret settings of a Stripe connection. The secret key lives in the vault, never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["StripeSettings"]


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class StripeSettings(BaseModel):
    """Where Stripe is and where a payer lands after Checkout.

    `success_url` has no default: hosted Checkout requires one, and only the business knows its
    own "thank you" page. Stripe replaces `{CHECKOUT_SESSION_ID}` in it with the session id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="https://api.stripe.com",
        description="Stripe's API root; the sandbox emulator's URL in tests and demos.",
    )
    success_url: str = Field(description="Where Checkout sends the payer after a successful payment.")
    cancel_url: str | None = Field(
        default=None, description="Where Checkout's back link goes; without it Checkout shows none."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("success_url", "cancel_url")
    @classmethod
    def _page_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)
