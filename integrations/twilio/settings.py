"""The non-secret settings of a Twilio connection. The auth token lives in the vault, never here."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "ACCOUNT_SID_PATTERN",
    "CONTENT_SID_PATTERN",
    "E164_PATTERN",
    "MESSAGING_SERVICE_SID_PATTERN",
    "TwilioSettings",
]

ACCOUNT_SID_PATTERN = r"^AC[0-9a-fA-F]{32}$"
MESSAGING_SERVICE_SID_PATTERN = r"^MG[0-9a-fA-F]{32}$"
# A Content Template (Content API) SID, as the Messages API's ContentSid parameter requires it.
CONTENT_SID_PATTERN = r"^HX[0-9a-fA-F]{32}$"
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"

# The same bounds as `WhatsAppTemplate.name`, so every configured name can be asked for.
TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ContentSid = Annotated[str, StringConstraints(pattern=CONTENT_SID_PATTERN)]


class TwilioSettings(BaseModel):
    """Which Twilio account sends, and from which senders.

    SMS: exactly one sender, a phone number of the account (`from_number`) or a Messaging
    Service (`messaging_service_sid`), which picks a number from its pool and applies its own
    compliance features. Twilio refuses a message that names neither (21603), so a connection
    must too (a WhatsApp-only connection still names one today).

    WhatsApp (optional): `whatsapp_from` is the account's WhatsApp sender, and
    `whatsapp_templates` maps the template names the tool server asks for to the approved
    Content Templates (HX…) Twilio sends outside the 24-hour customer-service window.
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
    whatsapp_from: str | None = Field(
        default=None,
        pattern=E164_PATTERN,
        description="The account's WhatsApp sender in E.164 (sent as From=whatsapp:+…); unset: no WhatsApp.",
    )
    whatsapp_templates: dict[TemplateName, ContentSid] = Field(
        default_factory=dict,
        description="Template name -> the approved Content Template SID (HX…) it sends, e.g. "
        '{"booking_confirmation": "HX…"}.',
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
