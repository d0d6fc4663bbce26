"""Slack as the team channel: Block Kit posts through slack_sdk's `WebClient`, pointed at `settings.base_url`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from integrations.capabilities.errors import IntegrationError, ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import TeamMessage, TeamPost
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.slack import mappers
from integrations.slack.client import SlackClient
from integrations.slack.errors import PROVIDER, REFRESHABLE, AuthRefusedError, MaybePostedError, channel_problem
from integrations.slack.ledger import Attempt, PostLedger
from integrations.slack.settings import SlackSettings, is_channel_id
from integrations.slack.tokens import token_manager

__all__ = ["CLOCK_SKEW", "SlackTeam"]

T = TypeVar("T")
# Slack stamps `ts` with its own clock; a post this long before our attempt began still counts.
CLOCK_SKEW = timedelta(minutes=2)
# History pages read when looking for a post that may have landed (15 messages each), and
# conversations.list pages read to find a `#name` (200 channels each).
_HISTORY_PAGES = 4
_CHANNEL_PAGES = 10


class SlackTeam:
    """The `team` capability over Slack: posts to one channel of one workspace, as the app's bot user.

    Credentials come from the vault: a bot token alone (`access_token`, `xoxb-…`, no rotation),
    or an install with token rotation (`client_id`, `client_secret`, `refresh_token`; 12-hour
    access tokens refreshed a minute before expiry and once when Slack answers `token_expired`
    or `invalid_auth`). A token Slack refuses for good (`token_revoked`, `account_inactive`, or
    still refused after a refresh) marks the connection expired and raises
    `ProviderNotConnectedError`.

    No-double-post guarantee: every post carries its idempotency key in the message metadata. A
    key Slack confirmed answers from the connection's send records; after a post whose outcome is
    unknown (5xx, `fatal_error`, timeout), the next attempt under the key, in this call or a later
    one in any process sharing those records, reads the channel's recent history for a message
    with the key before posting. A lookup that fails raises: not knowing is no reason to post twice.
    """

    name = PROVIDER

    def __init__(self, settings: SlackSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._capability = env.capability or "team"
        self._client = SlackClient(settings.base_url, channel=settings.channel, team_id=settings.team_id)
        self._tokens = token_manager(settings.base_url, vault, env.clock, self._capability)
        self._resilience = Resilience(PROVIDER)
        self._ledger = PostLedger(env.send_records)
        self._keys = KeyLocks()
        # The channel's id: the setting itself, or learned from Slack for a `#name`.
        self._channel_id: str | None = settings.channel if is_channel_id(settings.channel) else None

    async def post_team_message(self, message: TeamMessage) -> TeamPost:
        """Post `message` to the connection's channel; the same `idempotency_key` never posts twice.

        Raises `ConfigurationError` (setting "channel") when the channel is unknown, archived or
        the app is not in it, `ProviderNotConnectedError` when the token is refused for good,
        `RateLimitedError` or `UpstreamError` otherwise.
        """
        key = message.idempotency_key
        async with self._keys.hold(key):
            attempt = await self._ledger.get(key) if key is not None else None
            if attempt is not None and attempt.post is not None:
                return attempt.post
            if attempt is None:
                attempt = Attempt(key=key or f"auto-{uuid.uuid4().hex}", started_at=datetime.now(UTC))
                await self._note(key, attempt)
            try:
                post = await self._authorized(lambda token: self._post_once(token, message, attempt, key))
            except IntegrationError:
                if key is not None and attempt.doubtful == 0:
                    await self._ledger.forget(key)
                raise
            attempt.post = post
            await self._note(key, attempt)
            return post

    async def check_connection(self) -> str:
        """`auth.test`, then the channel: it exists, is not archived, and the app is a member."""
        # https://docs.slack.dev/reference/methods/auth.test
        who = await self._authorized(
            lambda token: self._blocking(lambda: self._client.auth_test(token, self._timeout()))
        )
        channel = await self._authorized(self._conversation)
        name = f"#{channel.get('name')}" if channel.get("name") else self._settings.channel
        problem = None
        if channel.get("is_archived"):
            problem = channel_problem("is_archived", name)
        elif channel.get("is_channel") or channel.get("is_group"):
            # Direct messages have no membership to check; channels do.
            problem = None if channel.get("is_member") else channel_problem("not_in_channel", name)
        if problem is not None:
            raise problem
        return f"slack workspace {who.get('team')} as @{who.get('user')}, posting to {name} ({channel.get('id')})"

    # -- one attempt ------------------------------------------------------------------------------

    async def _post_once(self, token: str, message: TeamMessage, attempt: Attempt, key: str | None) -> TeamPost:
        """Look for a post that may have landed (if any may have), else post; `Resilience` repeats this.

        `key` is the caller's idempotency key (None: nothing is recorded); every change to the
        attempt's doubt is written to the records before it matters to another process.
        """
        if attempt.doubtful:
            found = await self._find_post(token, message, attempt)
            if found is not None:
                return found
        request = mappers.post_request(message, self._channel_id or self._settings.channel, attempt.key)
        # Counted, and recorded, before it is sent: a call cancelled while waiting, or a process
        # that dies, still leaves the post in doubt for a retry anywhere.
        attempt.doubtful += 1
        await self._note(key, attempt)
        try:
            answer = await self._blocking(lambda: self._client.post_message(token, self._timeout(), request))
        except MaybePostedError:
            # Retryable: the next attempt looks in the history first. Keep the count.
            raise
        except IntegrationError:
            # Slack refused this one: it is not in the channel.
            attempt.doubtful -= 1
            await self._note(key, attempt)
            raise
        # Recorded with the post by the caller.
        attempt.doubtful -= 1
        channel_id = str(answer.get("channel") or "")
        if channel_id and self._channel_id is None:
            self._channel_id = channel_id
        return mappers.to_team_post(answer, channel=channel_id or self._settings.channel, text=message.text)

    async def _note(self, key: str | None, attempt: Attempt) -> None:
        """Write `attempt` to the send records under the caller's key (a call without one keeps none)."""
        if key is not None:
            await self._ledger.put(key, attempt)

    async def _find_post(self, token: str, message: TeamMessage, attempt: Attempt) -> TeamPost | None:
        """The message carrying `attempt.key` among the channel's posts since the attempt began."""
        channel_id = await self._resolve_channel(token)
        oldest = f"{(attempt.started_at - CLOCK_SKEW).timestamp():.6f}"
        cursor: str | None = None
        for _page in range(_HISTORY_PAGES):
            page = await self._history_page(token, channel_id, oldest, cursor)
            for item in page.get("messages") or []:
                if isinstance(item, dict) and mappers.key_of(item) == attempt.key:
                    return mappers.to_team_post(item, channel=channel_id, text=message.text)
            cursor = _next_cursor(page)
            if not page.get("has_more") or cursor is None:
                return None
        detail = "too many posts in the channel since the failed attempt to rule out an earlier copy"
        raise UpstreamError(PROVIDER, detail, retryable=True)

    async def _history_page(self, token: str, channel_id: str, oldest: str, cursor: str | None) -> dict[str, Any]:
        return await self._blocking(
            lambda: self._client.history(token, self._timeout(), channel_id, oldest=oldest, cursor=cursor)
        )

    async def _channels_page(self, token: str, cursor: str | None) -> dict[str, Any]:
        return await self._blocking(lambda: self._client.channels(token, self._timeout(), cursor))

    async def _conversation(self, token: str) -> dict[str, Any]:
        channel_id = await self._resolve_channel(token)
        answer = await self._blocking(lambda: self._client.conversation(token, self._timeout(), channel_id))
        channel = answer.get("channel")
        return channel if isinstance(channel, dict) else {}

    async def _resolve_channel(self, token: str) -> str:
        """The channel's id; a `#name` is looked up once in `conversations.list`."""
        if self._channel_id is not None:
            return self._channel_id
        wanted = self._settings.channel.removeprefix("#")
        cursor: str | None = None
        for _page in range(_CHANNEL_PAGES):
            page = await self._channels_page(token, cursor)
            for channel in page.get("channels") or []:
                if isinstance(channel, dict) and channel.get("name") == wanted and channel.get("id"):
                    self._channel_id = str(channel["id"])
                    return self._channel_id
            cursor = _next_cursor(page)
            if cursor is None:
                break
        problem = channel_problem("channel_not_found", self._settings.channel)
        assert problem is not None
        raise problem

    # -- tokens and retries -----------------------------------------------------------------------

    async def _authorized(self, attempt: Callable[[str], Awaitable[T]]) -> T:
        """`attempt(token)` under `Resilience`, with the token refreshed once if Slack says it expired."""
        token, rotating = await self._token()
        try:
            return await self._resilience.call(lambda: attempt(token))
        except AuthRefusedError as refused:
            if not (rotating and refused.code in REFRESHABLE):
                raise await self._expired(refused) from None
        fresh = await self._tokens.refresh(stale=token)
        try:
            return await self._resilience.call(lambda: attempt(fresh))
        except AuthRefusedError as refused:
            raise await self._expired(refused) from None

    async def _token(self) -> tuple[str, bool]:
        """The bot token to use, and whether it rotates (an install with a refresh token)."""
        secrets = await self._vault.load()
        if secrets.get("refresh_token"):
            return await self._tokens.token(), True
        if secrets.get("access_token"):
            return secrets["access_token"], False
        reason = "the Slack connection holds no bot token; reinstall the Slack app"
        await self._vault.mark_expired(reason)
        raise ProviderNotConnectedError(self._capability, reason)

    async def _expired(self, refused: AuthRefusedError) -> ProviderNotConnectedError:
        reason = f"Slack refused the bot token ({refused.code}); reinstall the Slack app or store a new token"
        await self._vault.mark_expired(reason)
        return ProviderNotConnectedError(self._capability, reason)

    async def _blocking(self, request: Callable[[], T]) -> T:
        # A worker thread copies the context, so the deadline (and `_timeout`) follows the request.
        return await asyncio.to_thread(request)

    def _timeout(self) -> float:
        # Read at each attempt: the deadline keeps shrinking between retries.
        return self._resilience.attempt_timeout()


def _next_cursor(page: dict[str, Any]) -> str | None:
    metadata = page.get("response_metadata")
    cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None
