"""The non-secret settings of a SendGrid connection. The API key lives in the vault, never here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from integrations.common.setting_types import HttpUrl

__all__ = ["EMAIL_PATTERN", "SendGridSettings"]

# One address, no display name: "bookings@example.com". SendGrid checks deliverability itself.
EMAIL_PATTERN = r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$"


class SendGridSettings(BaseModel):
    """Which SendGrid region sends, and as whom.

    `from_email` must be a verified Sender Identity of the account (a single verified sender or
    an address on an authenticated domain); SendGrid refuses any other with a 403, which the
    connector reports as a configuration error naming `from_email`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(
        default="https://api.sendgrid.com",
        description=(
            "SendGrid's v3 API root: https://api.sendgrid.com, or https://api.eu.sendgrid.com for EU "
            "regional subusers; the sandbox emulator's URL in tests and demos."
        ),
    )
    from_email: str = Field(pattern=EMAIL_PATTERN, description="The verified sender address mail is sent from.")
    from_name: str | None = Field(default=None, max_length=256, description="The sender's display name.")
    reply_to: str | None = Field(default=None, pattern=EMAIL_PATTERN, description="Where replies should go.")
    status_events: bool = Field(
        default=True,
        description=(
            "This connection takes SendGrid's Event Webhook (delivery, bounce, open) at "
            "/webhooks/sendgrid/<connection>/events; set that URL in SendGrid's Mail Settings."
        ),
    )
