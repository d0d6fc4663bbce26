"""An emulator of the Slack Web API methods a team post uses, over `sandbox_state.SlackState`.

Mounted under `/sandbox/slack`, so `{base_url}` is `…/sandbox/slack/api/` and the SDK's
`chat.postMessage` lands at `/api/chat.postMessage`, as on slack.com. Like Slack it takes
arguments as a query string, a form or (with the token in the Authorization header) a JSON body,
by GET or POST, and answers HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": …}`; only
rate limits are a 429, with Retry-After (https://docs.slack.dev/apis/web-api/).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.slack.sandbox_state import SlackState
from integrations.slack.sandbox_wire import (
    FRONT_DESK,
    SANDBOX_AUTH_CODE,
    SANDBOX_BOT_TOKEN,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SlackError,
)

__all__ = [
    "FRONT_DESK",
    "OAUTH_PATH",
    "SANDBOX_AUTH_CODE",
    "SANDBOX_BOT_TOKEN",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SlackState",
    "build_sandbox",
    "slack_error",
]

OAUTH_PATH = "/api/oauth.v2.access"
Method = Callable[[dict[str, Any]], dict[str, Any]]


async def _arguments(request: Request) -> dict[str, Any]:
    """The method's arguments: query string, then the form or JSON body."""
    arguments: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if not body:
        return arguments
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(body)
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise SlackError("json_not_object")
        arguments.update(parsed)
    else:
        # Parsed by hand: Starlette's form parser needs python-multipart, which the server does not.
        arguments.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return arguments


def _bearer(request: Request, arguments: dict[str, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    given = arguments.pop("token", None)
    return given if isinstance(given, str) and given else None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return user, password


def slack_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as Slack answers it: `ratelimited` with Retry-After, or a 5xx."""
    if status == 429:
        # Retry-After is whole seconds; slack_sdk's retry handler reads it with int().
        # unconfirmed: the 429's body (Slack documents the status and Retry-After, not the body).
        wait = math.ceil(retry_after if retry_after is not None else 1.0)
        return JSONResponse({"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": str(wait)})
    # unconfirmed: the body of a Slack 5xx (often an HTML page from its edge); slack_sdk only reads the status.
    return JSONResponse({"ok": False, "error": "internal_error"}, status_code=status)


class _Api:
    """Slack's Web API methods over one `SlackState`."""

    def __init__(self, state: SlackState) -> None:
        self.state = state

    def method(self, handler: Method) -> Callable[[Request], Any]:
        """An endpoint that authenticates the bot token, then answers `handler(arguments)`."""

        async def endpoint(request: Request) -> Response:
            try:
                arguments = await _arguments(request)
                self.state.authenticate(_bearer(request, arguments))
                return JSONResponse(handler(arguments))
            except SlackError as error:
                return JSONResponse(error.body, status_code=error.status, headers=error.headers)

        return endpoint

    async def oauth_access(self, request: Request) -> Response:
        # https://docs.slack.dev/reference/methods/oauth.v2.access: client credentials by Basic
        # auth (recommended) or as arguments.
        try:
            arguments = await _arguments(request)
            form = {key: str(value) for key, value in arguments.items()}
            return JSONResponse(self.state.oauth_access(form, _basic(request)))
        except SlackError as error:
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)

    def routes(self) -> list[Route]:
        both = ["GET", "POST"]
        return [
            Route(OAUTH_PATH, self.oauth_access, methods=both),
            # https://docs.slack.dev/reference/methods/chat.postMessage
            Route("/api/chat.postMessage", self.method(self.state.post), methods=["POST"]),
            # https://docs.slack.dev/reference/methods/auth.test
            Route("/api/auth.test", self.method(lambda _arguments: self.state.auth_test()), methods=both),
            # https://docs.slack.dev/reference/methods/conversations.history
            Route("/api/conversations.history", self.method(self.state.history), methods=both),
            # https://docs.slack.dev/reference/methods/conversations.info
            Route(
                "/api/conversations.info",
                self.method(lambda arguments: self.state.conversation(arguments.get("channel"))),
                methods=both,
            ),
            # https://docs.slack.dev/reference/methods/conversations.list
            Route("/api/conversations.list", self.method(self.state.list_channels), methods=both),
        ]


def build_sandbox() -> Sandbox:
    """A fresh Slack emulator: the sandbox workspace with the app installed in #front-desk."""
    state = SlackState()
    return Sandbox(
        name="slack",
        state=state,
        routes=_Api(state).routes(),
        error=slack_error,
        exempt_paths=(OAUTH_PATH,),
    )
