"""The non-secret settings of a Slack connection. Tokens and the app's client secret live in the vault."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CHANNEL_ID_PATTERN", "SlackSettings", "is_channel_id"]

# Conversation ids: C… public channels, G… older private channels, D… direct messages
# (the spec's `defs_channel`: ^[CGD][A-Z0-9]{8,}$).
CHANNEL_ID_PATTERN = r"^[CGD][A-Z0-9]{8,}$"
# A channel name as Slack allows it: lowercase letters, digits, hyphens and underscores, 80 at most.
_CHANNEL_NAME_PATTERN = r"^#[a-z0-9][a-z0-9_-]{0,79}$"
_CHANNEL_PATTERN = f"({CHANNEL_ID_PATTERN})|({_CHANNEL_NAME_PATTERN})"


def is_channel_id(channel: str) -> bool:
    """Whether `channel` is a conversation id (C…, G…, D…) rather than a `#name`."""
    return not channel.startswith("#")


class SlackSettings(BaseModel):
    """Which Slack workspace and channel the team's messages go to.

    The app is installed with OAuth v2 as a bot. Its token is a secret: `access_token` alone
    (an `xoxb-…` token of a workspace without token rotation), or `client_id`, `client_secret`
    and `refresh_token` (token rotation: 12-hour `xoxe.xoxb-…` tokens refreshed through
    `oauth.v2.access`). Bot scopes: `chat:write` to post, `channels:history` (`groups:history`
    for a private channel) to look for a post that may have landed before posting it again,
    `channels:read` (`groups:read`) for `#name` channels and the connection check.

    The bot must be a member of `channel`: invite it there with `/invite @<app name>`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        default="https://slack.com/api/",
        description="Slack's Web API root, ending in /api/; the sandbox emulator's URL in tests and demos.",
    )
    channel: str = Field(
        pattern=_CHANNEL_PATTERN,
        description="The channel to post to: its id (C0123ABCD, from the channel's details) or #name.",
    )
    team_id: str | None = Field(
        default=None,
        pattern=r"^T[A-Z0-9]{2,}$",
        description="The workspace (T…), needed only for an app installed on a whole Enterprise Grid org.",
    )

    @field_validator("base_url")
    @classmethod
    def _ends_with_a_slash(cls, value: str) -> str:
        # The SDK appends method names ("chat.postMessage") to the base URL as it is.
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else f"{value}/"

    @field_validator("channel", mode="before")
    @classmethod
    def _name_gets_its_hash(cls, value: object) -> object:
        # "front-desk" is as clear as "#front-desk"; ids are upper case, names lower case.
        if isinstance(value, str) and value and not value.startswith("#") and not value[:1].isupper():
            return f"#{value}"
        return value
