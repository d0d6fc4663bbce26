"""The non-secret settings of a Twilio connection. The auth token lives in the vault, never here."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ACCOUNT_SID_PATTERN", "E164_PATTERN", "MESSAGING_SERVICE_SID_PATTERN", "TwilioSettings"]

ACCOUNT_SID_PATTERN = r"^AC[0-9a-fA-F]{32}$"
MESSAGING_SERVICE_SID_PATTERN = r"^MG[0-9a-fA-F]{32}$"
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"


class TwilioSettings(BaseModel):
    """Which Twilio account sends, and from which sender.

    Exactly one sender: a phone number of the account (`from_number`) or a Messaging Service
    (`messaging_service_sid`), which picks a number from its pool and applies its own compliance
    features. Twilio refuses a message that names neither (21603), so a connection must too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio's REST API root; the sandbox emulator's URL in tests and demos.",
    )
    account_sid: str = Field(pattern=ACCOUNT_SID_PATTERN, description="The account SID (AC…), from the Console.")
    from_number: str | None = Field(
        default=None, pattern=E164_PATTERN, description="An SMS-capable number of the account, in E.164."
    )
    messaging_service_sid: str | None = Field(
        default=None, pattern=MESSAGING_SERVICE_SID_PATTERN, description="A Messaging Service SID (MG…)."
    )
    status_callback: bool = Field(
        default=True,
        description="Ask Twilio to report delivery status to this server's /webhooks/twilio/<connection>/status.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_sender(self) -> Self:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("give exactly one of from_number or messaging_service_sid")
        return self
