"""The Slack emulator's fixed workspace, its error answer and the shapes of its JSON.

Ids follow Slack's formats as its spec states them (channels `C…`, users `U…`, bots `B…`, teams
`T…`, timestamps `1234567890.123456`); the sandbox OAuth app's credentials are fixed so that
`tool-server agents create --sandbox` can connect without a browser.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACCESS_TOKEN_SECONDS",
    "APP_ID",
    "ARCHIVED",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "FRONT_DESK",
    "GENERAL",
    "HISTORY_DEFAULT",
    "HISTORY_MAX",
    "INSTALLER_ID",
    "LIST_DEFAULT",
    "LIST_MAX",
    "MAX_TEXT",
    "SANDBOX_AUTH_CODE",
    "SANDBOX_BOT_TOKEN",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SCOPES",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TEAM_NAME",
    "SlackError",
    "conversation_object",
    "cursor",
    "flag",
    "json_argument",
    "limit_of",
    "public_message",
    "seed_channels",
    "timestamp",
    "uncursor",
    "valid_metadata",
]

TEAM_ID = "T0SANDBOX1"
TEAM_NAME = "Tool Server Sandbox"
TEAM_DOMAIN = "tool-server-sandbox"
APP_ID = "A0SANDAPP1"
BOT_ID = "B0SANDBOT1"
BOT_USER_ID = "U0SANDBOT1"
BOT_NAME = "tool-server"
INSTALLER_ID = "U0SANDOWNR"
FRONT_DESK = "C0FRONTDSK"
GENERAL = "C0GENERAL1"
ARCHIVED = "C0OLDNEWS1"

SANDBOX_CLIENT_ID = "4120000001.7310000001"
SANDBOX_CLIENT_SECRET = "sandbox0client0secret0c0ffee0123"
SANDBOX_REFRESH_TOKEN = "xoxe-1-sandbox-install-refresh-token"
SANDBOX_BOT_TOKEN = "xoxb-4120000001-sandbox-static-bot-token"
SANDBOX_AUTH_CODE = "4120000001.sandbox-oauth-code"
SCOPES = "chat:write,channels:history,groups:history,channels:read,groups:read"
# https://docs.slack.dev/authentication/using-token-rotation: rotated tokens live 12 hours.
ACCESS_TOKEN_SECONDS = 43200
# Slack truncates longer texts; unconfirmed: that it refuses beyond 40,000 with msg_too_long.
MAX_TEXT = 40000
HISTORY_DEFAULT, HISTORY_MAX = 100, 999
LIST_DEFAULT, LIST_MAX = 100, 1000
CREATED = 1_700_000_000


class SlackError(Exception):
    """An `{"ok": false, "error": code}` answer: HTTP 200 unless `status` says otherwise (429)."""

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = dict(headers or {})
        self.body: dict[str, Any] = {"ok": False, "error": code, **(extra or {})}


def seed_channels() -> list[dict[str, Any]]:
    return [
        {"id": FRONT_DESK, "name": "front-desk", "is_member": True, "is_archived": False},
        {"id": GENERAL, "name": "general", "is_member": False, "is_archived": False},
        {"id": ARCHIVED, "name": "old-news", "is_member": True, "is_archived": True},
    ]


def flag(value: Any) -> bool:
    # The SDK sends booleans as 1/0; people send true/false.
    return str(value).lower() in ("1", "true")


def cursor(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def uncursor(cursor: str, prefix: str) -> str:
    try:
        decoded = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not decoded.startswith(prefix):
        raise SlackError("invalid_cursor")
    return decoded.removeprefix(prefix)


def public_message(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A stored message as the Web API shows it; metadata only when asked (`include_all_metadata`)."""
    # unconfirmed: whether chat.postMessage's answer echoes the metadata it was given; it does not here.
    shown = {k: copy.deepcopy(v) for k, v in message.items() if k not in ("channel", "metadata")}
    if with_metadata and message.get("metadata") is not None:
        shown["metadata"] = copy.deepcopy(message["metadata"])
    return shown


def conversation_object(channel: dict[str, Any]) -> dict[str, Any]:
    name = str(channel["name"])
    blank = {"value": "", "creator": "", "last_set": 0}
    return {
        "id": channel["id"],
        "name": name,
        "name_normalized": name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": False,
        "is_archived": channel["is_archived"],
        "is_general": name == "general",
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_pending_ext_shared": False,
        "is_member": channel["is_member"],
        "created": CREATED,
        "creator": INSTALLER_ID,
        "unlinked": 0,
        "topic": dict(blank),
        "purpose": dict(blank),
        "previous_names": [],
        "pending_shared": [],
    }


def json_argument(value: Any, error: str) -> Any:
    """A JSON argument as sent: already parsed (a JSON body) or a JSON string (a form body)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise SlackError(error) from None


def valid_metadata(metadata: Any) -> bool:
    return (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and bool(metadata["event_type"])
        and isinstance(metadata.get("event_payload"), dict)
    )


def timestamp(raw: str | None, error: str, default: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SlackError(error) from None
    if not math.isfinite(value):
        raise SlackError(error)
    return value


def limit_of(raw: str | None, default: int, most: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        return default
    return min(max(value, 1), most)
