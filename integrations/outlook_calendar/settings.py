"""The non-secret settings of one Outlook (Microsoft Graph) calendar connection."""

from __future__ import annotations

from pydantic import Field, field_validator

from integrations.capabilities.scheduling import CalendarRulesSettings
from integrations.common.setting_types import HttpUrl

__all__ = ["GRAPH_SCOPES", "OutlookCalendarSettings"]

# Delegated scopes asked for again on every refresh (Microsoft's identity platform wants them);
# `offline_access` is what makes it hand back a new refresh token.
GRAPH_SCOPES = "https://graph.microsoft.com/Calendars.ReadWrite offline_access"


class OutlookCalendarSettings(CalendarRulesSettings):
    """Where Graph and the Microsoft identity platform live, whose calendar to use, and the booking rules.

    Outlook has working hours but no slot grid or booking notice, so the booking rules
    (`weekly_hours`, `slot_minutes`, …) are ours, as for Google; `timezone` defaults to the agent's
    zone. Busy time is the calendar owner's plus that of every mailbox in `schedules` (a shared
    room or a colleague), read with getSchedule; bookings go to the owner's default calendar.
    """

    base_url: HttpUrl = "https://graph.microsoft.com"
    login_url: HttpUrl = "https://login.microsoftonline.com"
    # The directory (tenant id or domain) the account signs in to; "common" for any work or personal account.
    tenant: str = Field(default="common", min_length=1, max_length=100)
    # None: the signed-in user's own calendar (/me). A user id or UPN: that user's (/users/{id}).
    user: str | None = Field(default=None, min_length=1, max_length=320)
    schedules: list[str] = Field(default_factory=list, max_length=19)

    @field_validator("tenant")
    @classmethod
    def _plain_tenant(cls, value: str) -> str:
        # It becomes a path segment of the token URL.
        if not set(value) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"):
            raise ValueError("a tenant is a GUID, a domain name, 'common' or 'organizations'")
        return value

    @field_validator("schedules")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if any("@" not in address or address != address.strip() for address in value):
            raise ValueError("schedules are SMTP addresses such as frontdesk@contoso.com")
        return value

    @property
    def token_url(self) -> str:
        """The identity platform's v2.0 token endpoint for this tenant."""
        return f"{self.login_url}/{self.tenant}/oauth2/v2.0/token"
