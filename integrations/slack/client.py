"""Blocking calls to Slack's Web API through slack_sdk's `WebClient`, one method per endpoint, errors translated.

Each method takes the bot token and the HTTP timeout for this attempt and builds its own
`WebClient` (cheap: urllib keeps no pool), so a refreshed token or a shrinking deadline is
always the one used. Answers come back as Slack's own JSON, which `mappers` reads and `raw` keeps.

Retries: the SDK's default handler retries connection errors, which could post a message twice
(a connection reset after Slack took the post); it is replaced by Slack's 429 handler alone,
limited to one retry that must fit in the tool call's deadline. Every other retry is
`Resilience`'s, around these calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from integrations.common.deadline import remaining
from integrations.common.tls import tls_context
from integrations.slack.errors import SDK_ERRORS, translate

__all__ = ["HISTORY_PAGE", "SlackClient"]

# conversations.history's page for apps distributed outside the Marketplace (1 request a minute,
# 15 messages at most since 2025-05-29): a smaller page than Slack's default works for every app.
# https://docs.slack.dev/reference/methods/conversations.history
HISTORY_PAGE = 15
# The SDK's 429 handler sleeps Retry-After plus up to a second of jitter; an attempt after it
# needs at least this long to be worth making.
_JITTER = 1.0
_MIN_ATTEMPT = 0.5


class _RateLimitWithinDeadline(RateLimitErrorRetryHandler):
    """Slack's 429 handler (sleeps Retry-After, then retries once), only when the deadline leaves room.

    After the wait it shortens the client's timeout to what the deadline still leaves.
    """

    def __init__(self, client: WebClient, ceiling: float) -> None:
        super().__init__(max_retry_count=1)
        self._client = client
        self._ceiling = ceiling

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None  # a 429 always has an answer
        wait = _retry_after(response.headers)
        return wait is not None and wait + _JITTER + _MIN_ATTEMPT <= remaining()

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)
        self._client.timeout = _timeout(self._ceiling)  # type: ignore[assignment]  # urllib takes float seconds


def _retry_after(headers: Mapping[str, list[str] | str]) -> float | None:
    for name, values in headers.items():
        if name.lower() == "retry-after" and values:
            try:
                seconds = float(values if isinstance(values, str) else values[0])
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def _timeout(ceiling: float) -> float:
    return max(0.1, min(ceiling, remaining()))


class SlackClient:
    """The Web API methods the connector uses. Every method blocks; run it on a worker thread."""

    def __init__(self, base_url: str, *, channel: str, team_id: str | None = None) -> None:
        self._base_url = base_url
        self._team_id = team_id
        # The configured channel, for the errors that name it.
        self._channel = channel

    def post_message(self, token: str, timeout: float, request: dict[str, Any]) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/chat.postMessage
        return self._call(token, timeout, lambda web: web.chat_postMessage(**request), write=True)

    def history(
        self, token: str, timeout: float, channel_id: str, *, oldest: str, cursor: str | None
    ) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/conversations.history
        return self._call(
            token,
            timeout,
            lambda web: web.conversations_history(
                channel=channel_id,
                oldest=oldest,
                inclusive=True,
                include_all_metadata=True,
                limit=HISTORY_PAGE,
                cursor=cursor,
            ),
        )

    def conversation(self, token: str, timeout: float, channel_id: str) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/conversations.info
        return self._call(token, timeout, lambda web: web.conversations_info(channel=channel_id))

    def channels(self, token: str, timeout: float, cursor: str | None) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/conversations.list
        return self._call(
            token,
            timeout,
            lambda web: web.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=200, cursor=cursor
            ),
        )

    def auth_test(self, token: str, timeout: float) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/auth.test
        return self._call(token, timeout, lambda web: web.auth_test())

    def _call(
        self, token: str, timeout: float, request: Callable[[WebClient], SlackResponse], *, write: bool = False
    ) -> dict[str, Any]:
        web = WebClient(
            token=token,
            base_url=self._base_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds; the SDK annotates int
            ssl=tls_context(),
            team_id=self._team_id,
            retry_handlers=[],
        )
        web.retry_handlers.append(_RateLimitWithinDeadline(web, ceiling=timeout))
        try:
            response = request(web)
        except SDK_ERRORS as error:
            raise translate(error, write=write, channel=self._channel) from None
        data = response.data
        return dict(data) if isinstance(data, dict) else {}
