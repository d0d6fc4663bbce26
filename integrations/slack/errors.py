"""Slack's answers and transport failures as `integrations.capabilities.errors`, in one function.

Slack's Web API answers almost everything with HTTP 200 and `{"ok": false, "error": "<code>"}`;
slack_sdk raises `SlackApiError` for those (`e.response["error"]`) and for non-200 answers
(`e.response.status_code`: 429 with Retry-After, 5xx). Transport failures come from urllib
unwrapped: `URLError` while connecting or sending, `TimeoutError` and `http.client` errors
while waiting for the answer.

A post Slack cannot deduplicate (it has no idempotency key) that fails after it may have reached
Slack (a 5xx, `fatal_error`, `internal_error`, a timeout waiting for the answer) is a
`MaybePostedError`: retryable, because the connector looks for the post in the channel's
history before posting again.
"""

from __future__ import annotations

import http.client
import math
import socket
from collections.abc import Mapping
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError

from integrations.capabilities.errors import (
    ConfigurationError,
    IntegrationError,
    RateLimitedError,
    UpstreamError,
)

__all__ = [
    "AUTH_REFUSALS",
    "PROVIDER",
    "SDK_ERRORS",
    "AuthRefusedError",
    "MaybePostedError",
    "channel_problem",
    "translate",
]

PROVIDER = "slack"

# What `translate` understands; anything else is a bug and goes up untouched.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    SlackClientError,
    URLError,
    OSError,
    http.client.HTTPException,
)

# https://docs.slack.dev/reference/methods/chat.postMessage#errors (and every method's common errors)
# Codes a refreshed token may cure (a rotated token expired, or was replaced) …
REFRESHABLE = frozenset({"token_expired", "invalid_auth"})
# … and codes it cannot: the app was uninstalled, the workspace or bot user deactivated.
AUTH_REFUSALS = REFRESHABLE | frozenset({"not_authed", "token_revoked", "account_inactive"})
# Slack's words for "we failed, and some of it may have happened" (fatal_error, internal_error)
# or "try again later" (service_unavailable, request_timeout is the client's own fault).
_SERVER_FAILURES = frozenset({"fatal_error", "internal_error", "service_unavailable"})
_RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


class AuthRefusedError(UpstreamError):
    """Slack refused the token (`code`): refreshed once if it may help, else the connection expired."""

    def __init__(self, code: str) -> None:
        super().__init__(PROVIDER, f"Slack refused the bot token ({code})", status=401, retryable=False)
        self.code = code


class MaybePostedError(UpstreamError):
    """The post may have reached the channel before the failure: look in its history before posting again."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(PROVIDER, f"{detail}; the message may have been posted", status=status, retryable=True)


def channel_problem(code: str, channel: str) -> ConfigurationError | None:
    """The `ConfigurationError` for a channel Slack will not post to, naming the fix; None for other codes."""
    if code == "not_in_channel":
        return ConfigurationError(
            "channel",
            f"the Slack app is not a member of {channel}; invite it there (type /invite @<app name> in the channel) "
            "or set channel to one it is in",
        )
    if code == "channel_not_found":
        return ConfigurationError(
            "channel",
            f"Slack has no channel {channel} the app can see; check the channel setting (an id like C0123ABCD, "
            "or #name), and for a private channel invite the app first (/invite @<app name>)",
        )
    if code == "is_archived":
        return ConfigurationError(
            "channel", f"the Slack channel {channel} is archived; unarchive it or set channel to another one"
        )
    return None


def translate(error: BaseException, *, write: bool, channel: str) -> IntegrationError:
    """The capability error for an SDK exception or a transport failure.

    `write` says the request posts a message (so an ambiguous failure is a `MaybePostedError`);
    `channel` is the configured channel, for the errors that name it.
    """
    if isinstance(error, SlackApiError):
        return _api_error(error, write=write, channel=channel)
    if isinstance(error, URLError) and _never_connected(error.reason):
        # Nothing reached Slack: always safe to try again.
        return UpstreamError(PROVIDER, "Slack unreachable", retryable=True)
    if isinstance(error, TimeoutError | socket.timeout):
        what = "Slack timed out"
    elif isinstance(error, SlackClientError):
        # SlackRequestError and friends: the SDK refused the arguments before sending anything.
        return UpstreamError(PROVIDER, f"request refused by the Slack SDK ({type(error).__name__})")
    else:
        what = f"the connection to Slack failed ({type(error).__name__})"
    if write:
        return MaybePostedError(what)
    return UpstreamError(PROVIDER, what, retryable=True)


def _api_error(error: SlackApiError, *, write: bool, channel: str) -> IntegrationError:
    response = error.response
    status = getattr(response, "status_code", None)
    status = status if isinstance(status, int) else None
    data = getattr(response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, Mapping) else ""
    if status == 429 or code in _RATE_LIMITED:
        return RateLimitedError(PROVIDER, _retry_after(getattr(response, "headers", None)))
    if (status is not None and status >= 500) or code in _SERVER_FAILURES:
        label = code if code in _SERVER_FAILURES else "server error"
        if write:
            return MaybePostedError(f"Slack failed ({label})", status=status if status != 200 else None)
        return UpstreamError(PROVIDER, f"Slack failed ({label})", status=status, retryable=True)
    if code in AUTH_REFUSALS:
        return AuthRefusedError(code)
    problem = channel_problem(code, channel)
    if problem is not None:
        return problem
    if code == "missing_scope" and isinstance(data, Mapping):
        needed = str(data.get("needed", "?"))
        return UpstreamError(PROVIDER, f"the Slack app lacks the {needed} scope; reinstall it with that scope")
    return UpstreamError(PROVIDER, f"Slack refused the request ({code or 'no error code'})", status=status)


def _never_connected(reason: Any) -> bool:
    # urllib wraps errors raised while connecting or sending in URLError; a refused connection or
    # an unresolvable host means no request was made. Anything else (a timeout or reset while the
    # request was being sent) may have reached Slack.
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _retry_after(headers: Any) -> float | None:
    if not isinstance(headers, Mapping):
        return None
    for name, value in headers.items():
        if str(name).lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, list | tuple) and value else value
        try:
            seconds = float(str(raw))
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None
