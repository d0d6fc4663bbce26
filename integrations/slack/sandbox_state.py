"""The Slack emulator's in-memory workspace: channels, the messages posted to them, the app's tokens.

The workspace has the sandbox app installed as a bot user that is a member of `#front-desk`
(`FRONT_DESK`) and of the archived `#old-news`, but not of `#general`. Tokens come in both
kinds Slack issues: a bot token that never expires (`SANDBOX_BOT_TOKEN`, a workspace without
token rotation) and, with rotation, 12-hour `xoxe.xoxb-…` access tokens from `oauth.v2.access`,
each refresh issuing a new refresh token and revoking the one it used. The install's own refresh
token (`SANDBOX_REFRESH_TOKEN`) stays valid so that every sandbox connection can start from it.

Posting is rate limited per channel the way Slack describes it, one message a second with short
bursts allowed (https://docs.slack.dev/apis/web-api/rate-limits): a bucket of `burst` posts that
refills at one a second. Tests drive the rest: `seed_message`, `archive`, `set_member`,
`revoke_bot_token`, `fail_next_post_after_saving`.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.slack.sandbox_blocks import block_problems
from integrations.slack.sandbox_wire import (
    ACCESS_TOKEN_SECONDS,
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    HISTORY_DEFAULT,
    HISTORY_MAX,
    INSTALLER_ID,
    LIST_DEFAULT,
    LIST_MAX,
    MAX_TEXT,
    SANDBOX_AUTH_CODE,
    SANDBOX_BOT_TOKEN,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SCOPES,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    SlackError,
    conversation_object,
    cursor,
    flag,
    json_argument,
    limit_of,
    public_message,
    seed_channels,
    timestamp,
    uncursor,
    valid_metadata,
)

__all__ = ["SNAPSHOT_VERSION", "SlackState"]

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1
_MESSAGE_FIELDS = frozenset({"channel", "ts", "type", "text"})


class _Snapshot(BaseModel):
    """The workspace as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    channels: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    # Each rotated access token's expiry, in Unix seconds.
    access_tokens: dict[str, float]
    refresh_tokens: list[str]
    install_revoked: bool
    bot_token_revoked: bool
    codes_used: list[str]
    last_ts: float


class SlackState:
    """One sandbox workspace. Every method is safe to call from any thread."""

    def __init__(self, *, burst: int = 10) -> None:
        self._lock = threading.Lock()
        # Posts a channel takes at once before the one-a-second limit applies.
        self.burst = burst
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.channels: list[dict[str, Any]] = seed_channels()
        self.messages: list[dict[str, Any]] = []
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.install_revoked = False
        self.bot_token_revoked = False
        self.codes_used: set[str] = set()
        self.last_ts = 0.0
        # Channel id → (posts left in the bucket, when it was last filled, monotonic seconds).
        self._buckets: dict[str, tuple[float, float]] = {}
        self._fail_after_saving: list[str] = []

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "team": {"id": TEAM_ID, "name": TEAM_NAME, "bot_user_id": BOT_USER_ID},
                "channels": copy.deepcopy(self.channels),
                "messages": copy.deepcopy(self.messages),
            }

    def reset(self) -> None:
        with self._lock:
            self._reset_locked()

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()
            self.install_revoked = True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            saved = _Snapshot(
                version=SNAPSHOT_VERSION,
                channels=self.channels,
                messages=self.messages,
                access_tokens=self.access_tokens,
                refresh_tokens=sorted(self.refresh_tokens),
                install_revoked=self.install_revoked,
                bot_token_revoked=self.bot_token_revoked,
                codes_used=sorted(self.codes_used),
                last_ts=self.last_ts,
            )
            # A JSON dump builds new containers all the way down: nothing is shared with the state.
            return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a slack sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for message in saved.messages:
            missing = _MESSAGE_FIELDS - message.keys()
            if missing:
                raise KeyError(f"a saved message lacks {sorted(missing)}")
        for channel in saved.channels:
            if not {"id", "name", "is_member", "is_archived"} <= channel.keys():
                raise KeyError("a saved channel lacks id, name, is_member or is_archived")
        with self._lock:
            self._reset_locked()
            self.channels = saved.channels
            self.messages = saved.messages
            self.access_tokens = saved.access_tokens
            self.refresh_tokens = set(saved.refresh_tokens)
            self.install_revoked = saved.install_revoked
            self.bot_token_revoked = saved.bot_token_revoked
            self.codes_used = set(saved.codes_used)
            self.last_ts = saved.last_ts

    # -- auth and OAuth --------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> None:
        """Raises the `SlackError` Slack answers a request carrying `token` (None: no token at all)."""
        if not token:
            raise SlackError("not_authed")
        with self._lock:
            if token == SANDBOX_BOT_TOKEN:
                if self.bot_token_revoked:
                    raise SlackError("token_revoked")
                return
            expires = self.access_tokens.get(token)
        if expires is None:
            raise SlackError("invalid_auth")
        if expires <= time.time():
            raise SlackError("token_expired")

    def oauth_access(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """`oauth.v2.access`: an authorization code or a refresh token for a rotating bot token."""
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != SANDBOX_CLIENT_ID:
            raise SlackError("invalid_client_id")
        if client_secret != SANDBOX_CLIENT_SECRET:
            raise SlackError("bad_client_secret")
        grant = form.get("grant_type") or ("authorization_code" if form.get("code") else "")
        with self._lock:
            if grant == "refresh_token":
                used = form.get("refresh_token", "")
                if used == SANDBOX_REFRESH_TOKEN and not self.install_revoked:
                    pass  # the install's own token: every sandbox connection starts from it
                elif used in self.refresh_tokens:
                    self.refresh_tokens.remove(used)  # rotation: the used token stops working
                else:
                    raise SlackError("invalid_refresh_token")
            elif grant == "authorization_code":
                code = form.get("code", "")
                if code != SANDBOX_AUTH_CODE or code in self.codes_used:
                    raise SlackError("invalid_code")
                self.codes_used.add(code)
            else:
                raise SlackError("invalid_grant_type")
            access_token = f"xoxe.xoxb-1-{secrets.token_hex(24)}"
            refresh_token = f"xoxe-1-{secrets.token_hex(24)}"
            self.access_tokens[access_token] = time.time() + ACCESS_TOKEN_SECONDS
            self.refresh_tokens.add(refresh_token)
        # unconfirmed: the refresh answer's fields beyond access_token, token_type, expires_in and
        # refresh_token (the ones slack_sdk's TokenRotator reads) are modelled on the install answer.
        return {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": INSTALLER_ID},
            "scope": SCOPES,
            "token_type": "bot",
            "access_token": access_token,
            "bot_user_id": BOT_USER_ID,
            "refresh_token": refresh_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def auth_test(self) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    # -- chat.postMessage ------------------------------------------------------------------------

    def post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`chat.postMessage` with a JSON or form body; the answer, or the `SlackError` instead."""
        blocks = json_argument(body.get("blocks"), "invalid_blocks_format")
        metadata = json_argument(body.get("metadata"), "invalid_metadata_format")
        text = body.get("text")
        text = text if isinstance(text, str) else ""
        with self._lock:
            channel = self._channel(body.get("channel"))
            if channel["is_archived"]:
                raise SlackError("is_archived")
            if not channel["is_member"]:
                raise SlackError("not_in_channel")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks)
            if problems:
                raise SlackError("invalid_blocks", extra={"response_metadata": {"messages": problems}})
        if metadata is not None and not valid_metadata(metadata):
            # unconfirmed: the error code Slack gives malformed metadata.
            raise SlackError("invalid_metadata_format")
        with self._lock:
            self._take_from_bucket(channel["id"])
            message = self._append(channel["id"], text, blocks=blocks, metadata=metadata)
            failure = self._fail_after_saving.pop(0) if self._fail_after_saving else None
        if failure is not None:
            raise SlackError(failure)
        return {"ok": True, "channel": channel["id"], "ts": message["ts"], "message": public_message(message, False)}

    def _take_from_bucket(self, channel_id: str) -> None:
        now = time.monotonic()
        left, filled = self._buckets.get(channel_id, (float(self.burst), now))
        left = min(float(self.burst), left + (now - filled))  # one post a second refills
        if left < 1:
            wait = math.ceil(1 - left)
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})
        self._buckets[channel_id] = (left - 1, now)

    def _append(
        self, channel_id: str, text: str, *, blocks: Any = None, metadata: Any = None, user: str = BOT_USER_ID
    ) -> dict[str, Any]:
        # ts is unique per channel and increasing: Unix seconds with six decimals.
        self.last_ts = max(time.time(), self.last_ts + 0.000001)
        message: dict[str, Any] = {"channel": channel_id, "type": "message", "text": text, "ts": f"{self.last_ts:.6f}"}
        message["user"] = user
        if user == BOT_USER_ID:
            # Slack adds app_id too nowadays; the spec's message object does not know it, so it is left out.
            message["bot_id"] = BOT_ID
        message["team"] = TEAM_ID
        if blocks:
            message["blocks"] = blocks
        if metadata is not None:
            message["metadata"] = metadata
        self.messages.append(message)
        return message

    # -- reads -----------------------------------------------------------------------------------

    def history(self, query: Mapping[str, str]) -> dict[str, Any]:
        """`conversations.history`: the channel's messages, newest first, a page at a time."""
        with self._lock:
            channel = self._channel(query.get("channel"))
            if not channel["is_member"]:
                raise SlackError("not_in_channel")
            listed = [m for m in self.messages if m["channel"] == channel["id"]]
        oldest = timestamp(query.get("oldest"), "invalid_ts_oldest", 0.0)
        latest = timestamp(query.get("latest"), "invalid_ts_latest", math.inf)
        inclusive = flag(query.get("inclusive"))
        limit = limit_of(query.get("limit"), HISTORY_DEFAULT, HISTORY_MAX)
        before = uncursor(query["cursor"], "next_ts:") if query.get("cursor") else None

        def wanted(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            low = ts >= oldest if inclusive else ts > oldest
            high = ts <= latest if inclusive else ts < latest
            return low and high and (before is None or ts < float(before))

        matching = sorted((m for m in listed if wanted(m)), key=lambda m: float(m["ts"]), reverse=True)
        page = matching[:limit]
        metadata = flag(query.get("include_all_metadata"))
        answer: dict[str, Any] = {
            "ok": True,
            "messages": [public_message(m, metadata) for m in page],
            "has_more": len(matching) > limit,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if answer["has_more"]:
            answer["response_metadata"] = {"next_cursor": cursor(f"next_ts:{page[-1]['ts']}")}
        return answer

    def conversation(self, channel_ref: str | None) -> dict[str, Any]:
        """`conversations.info`: any channel of the workspace (public channels need no membership)."""
        with self._lock:
            return {"ok": True, "channel": conversation_object(self._channel(channel_ref))}

    def list_channels(self, query: Mapping[str, str]) -> dict[str, Any]:
        """`conversations.list`: the workspace's channels in id order, `limit` a page."""
        limit = limit_of(query.get("limit"), LIST_DEFAULT, LIST_MAX)
        after = uncursor(query["cursor"], "channel:") if query.get("cursor") else ""
        with self._lock:
            listed = sorted(self.channels, key=lambda c: str(c["id"]))
        if flag(query.get("exclude_archived")):
            listed = [c for c in listed if not c["is_archived"]]
        listed = [c for c in listed if str(c["id"]) > after]
        page = listed[:limit]
        more = len(listed) > limit
        return {
            "ok": True,
            "channels": [conversation_object(c) for c in page],
            "response_metadata": {"next_cursor": cursor(f"channel:{page[-1]['id']}") if more else ""},
        }

    def _channel(self, ref: Any) -> dict[str, Any]:
        """The channel an id or a `#name` (or bare name) names; `channel_not_found` otherwise."""
        if not isinstance(ref, str) or not ref:
            raise SlackError("channel_not_found")
        name = ref.removeprefix("#")
        for channel in self.channels:
            if ref == channel["id"] or name == channel["name"]:
                return channel
        raise SlackError("channel_not_found")

    # -- what tests drive -------------------------------------------------------------------------

    def seed_message(
        self, channel_id: str, text: str, *, key: str | None = None, user: str = BOT_USER_ID
    ) -> dict[str, Any]:
        """A message already in the channel (the bot's own, with `key` in its metadata, or a person's)."""
        payload = {"idempotency_key": key}
        metadata = None if key is None else {"event_type": "tool_server_post", "event_payload": payload}
        with self._lock:
            self._channel(channel_id)
            return dict(self._append(channel_id, text, metadata=metadata, user=user))

    def archive(self, channel_id: str) -> None:
        with self._lock:
            self._channel(channel_id)["is_archived"] = True

    def set_member(self, channel_id: str, is_member: bool) -> None:
        with self._lock:
            self._channel(channel_id)["is_member"] = is_member

    def revoke_bot_token(self) -> None:
        """The app was uninstalled: the non-rotating bot token answers `token_revoked`."""
        with self._lock:
            self.bot_token_revoked = True

    def fail_next_post_after_saving(self, code: str = "fatal_error") -> None:
        """The next post lands in the channel, but Slack answers `{"ok": false, "error": code}`.

        Slack documents `fatal_error` and `internal_error` as "it's possible some aspect of the
        operation succeeded": the case the connector's history lookup exists for.
        """
        with self._lock:
            self._fail_after_saving.append(code)

    def posted(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The messages in the workspace (or one channel), oldest first."""
        with self._lock:
            return [dict(m) for m in self.messages if channel_id is None or m["channel"] == channel_id]
