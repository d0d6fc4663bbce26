"""The Slack connector against its emulator on a real 127.0.0.1 socket, and the emulator against Slack's spec."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from integrations.capabilities.errors import (
    ConfigurationError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.capabilities.models import TeamMessage
from integrations.capabilities.team import TeamNotifier
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.slack import SPEC, SlackTeam, mappers
from integrations.slack.client import SlackClient
from integrations.slack.errors import AuthRefusedError, MaybePostedError, translate
from integrations.slack.sandbox import OAUTH_PATH
from integrations.slack.sandbox_state import SlackState
from integrations.slack.sandbox_wire import (
    ARCHIVED,
    FRONT_DESK,
    GENERAL,
    SANDBOX_AUTH_CODE,
    SANDBOX_BOT_TOKEN,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
)
from integrations.slack.tokens import SlackTokenDialect
from tests.integrations.sandbox_restarts import restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import SPECS

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
POST = "/api/chat.postMessage"
HISTORY = "/api/conversations.history"
# oauth.v2.access is not in the 2021 spec: its arguments as Slack's method page lists them.
# https://docs.slack.dev/reference/methods/oauth.v2.access
OAUTH_ARGUMENTS = {"client_id", "client_secret", "code", "code_verifier", "redirect_uri", "grant_type", "refresh_token"}
# Arguments newer than the 2021 spec, as slack_sdk 3.48 types them and Slack's method pages list them.
NEWER_ARGUMENTS = {"chat.postMessage": {"metadata"}, "conversations.history": {"include_all_metadata"}}


# -- Slack's Swagger 2.0 spec ------------------------------------------------------------------------


class SlackSpec:
    """Slack's Web API spec (Swagger 2.0, 2021): the trimmed copy plus the two paths added beside it.

    A Web API method takes its arguments as a query string or a form (or JSON) body, by GET or
    POST alike (https://docs.slack.dev/apis/web-api/#basics): the spec lists one verb and one
    location per argument, so a request is checked by method name, on the union of its arguments.
    """

    def __init__(self) -> None:
        self.document = json.loads((SPECS / "slack/slack_web_openapi_v2.chat-postMessage.json").read_text())
        extra = json.loads((SPECS / "slack/slack_web_openapi_v2.conversations-history-info.json").read_text())
        self.document["paths"].update(extra["paths"])

    def operation(self, method: str) -> dict[str, Any] | None:
        item = self.document["paths"].get(f"/{method}")
        return next(iter(item.values())) if item else None

    def check_request(self, request: RecordedRequest) -> list[str]:
        label = f"{request.method} {request.path}"
        method = request.path.removeprefix("/api/")
        operation = self.operation(method)
        if operation is None:
            return [f"{label}: no such method in the spec"]
        arguments = {name: values[0] for name, values in request.query.items()}
        if isinstance(request.body, dict):
            arguments.update(request.body)
        parameters = operation.get("parameters", [])
        known = {p["name"] for p in parameters if p["in"] in ("query", "formData")}
        problems = [
            f"{label}: argument {name!r} is not in the spec"
            for name in arguments
            if name not in known and name not in NEWER_ARGUMENTS.get(method, set())
        ]
        for parameter in parameters:
            if not parameter.get("required"):
                continue
            if parameter["in"] == "header" and not request.headers.get("authorization", "").startswith("Bearer "):
                problems.append(f"{label}: missing the {parameter['name']} (Authorization: Bearer)")
            elif parameter["in"] != "header" and parameter["name"] not in arguments:
                problems.append(f"{label}: missing required argument {parameter['name']!r}")
        return problems

    def validate(self, method: str, answer: dict[str, Any]) -> list[str]:
        """Problems with an answer of `method`: the success schema for ok true, the error schema else."""
        operation = self.operation(method)
        assert operation is not None, method
        response = operation["responses"]["200" if answer.get("ok") else "default"]
        schema = {**response["schema"], "definitions": self.document["definitions"]}
        return [
            f"{method}: {'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in Draft4Validator(schema).iter_errors(answer)
        ]


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"slack": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_workspace(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> SlackState:
    assert isinstance(sandbox.state, SlackState)
    return sandbox.state


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    """The emulator's Web API root, as settings hold it (ending in /api/)."""
    return f"{served.url('slack')}/api/"


@pytest.fixture
def vault(served: ServedSandboxes) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(served.url("slack")).secrets)


@pytest.fixture
def team(served: ServedSandboxes, vault: MemoryVault) -> SlackTeam:
    return connect(served, vault)


def connect(served: ServedSandboxes, vault: MemoryVault, **settings: Any) -> SlackTeam:
    connection = SPEC.sandbox_connection(served.url("slack"))
    values = {**connection.settings, **settings}
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", capability="team")
    connector = SPEC.build(SPEC.settings_model.model_validate(values), vault, env)
    assert isinstance(connector, SlackTeam)
    return connector


def sent(sandbox: Sandbox, path: str) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.path == path]


def a_message(key: str | None = "call-1:notify_team", **changes: Any) -> TeamMessage:
    fields = {"Caller": "Jane Doe", "Phone": "+12125550142"}
    values: dict[str, Any] = {"text": "Jane Doe called about a leak.", "title": "Front desk", "fields": fields}
    return TeamMessage(**{**values, **changes, "idempotency_key": key})


def bot(base_url: str) -> httpx.Client:
    """A plain HTTP client on the emulator, with the sandbox's non-rotating bot token."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"})


async def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Wait for the emulator to finish a request the client stopped waiting for (a slow fault)."""
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the emulator never got there"
        await asyncio.sleep(0.02)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def slack_api_error(status: int, body: dict[str, Any], headers: dict[str, Any] | None = None) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data=body,
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("The request to the Slack API failed.", response)


# -- the integration as the registry sees it ----------------------------------------------------------


def test_the_spec_declares_a_team_provider_over_an_oauth_install(served: ServedSandboxes) -> None:
    connection = SPEC.sandbox_connection(served.url("slack"))

    assert SPEC.name == "slack"
    assert SPEC.capabilities == frozenset({"team"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert SPEC.optional_secrets == ("access_token", "expires_at")
    assert set(connection.secrets) == set(SPEC.required_secrets)
    assert connection.settings == {"base_url": f"{served.url('slack')}/api/", "channel": FRONT_DESK}


def test_the_connector_is_a_team_notifier_that_can_check_its_connection(team: SlackTeam) -> None:
    assert isinstance(team, TeamNotifier)
    assert isinstance(team, Checkable)
    assert team.name == "slack"


def test_settings_take_a_channel_id_or_name_and_default_to_slacks_api() -> None:
    by_id = SPEC.settings_model.model_validate({"channel": "C0123ABCD"}).model_dump()
    by_name = SPEC.settings_model.model_validate({"channel": "front-desk", "base_url": "http://127.0.0.1:1/api"})

    assert by_id["base_url"] == "https://slack.com/api/"
    assert by_id["channel"] == "C0123ABCD"
    assert by_name.model_dump()["channel"] == "#front-desk"
    assert by_name.model_dump()["base_url"] == "http://127.0.0.1:1/api/"


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "Front Desk"), ("channel", "#"), ("team_id", "workspace"), ("base_url", "slack.com/api"), ("x", 1)],
)
def test_settings_refuse_malformed_values_and_unknown_fields(field: str, value: object) -> None:
    values: dict[str, object] = {"channel": FRONT_DESK, field: value}

    with pytest.raises(ValidationError) as raised:
        SPEC.settings_model.model_validate(values)

    assert raised.value.errors()[0]["loc"] == (field,)


# -- Block Kit ----------------------------------------------------------------------------------------


def test_a_message_is_laid_out_as_a_header_a_text_section_and_a_section_of_fields() -> None:
    layout = mappers.blocks(a_message())

    assert layout == [
        {"type": "header", "text": {"type": "plain_text", "text": "Front desk"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Jane Doe called about a leak.", "verbatim": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Caller*\nJane Doe", "verbatim": True},
                {"type": "mrkdwn", "text": "*Phone*\n+12125550142", "verbatim": True},
            ],
        },
    ]


def test_a_message_without_title_or_fields_is_a_text_section_alone() -> None:
    layout = mappers.blocks(TeamMessage(text="Call back Jane."))

    assert [block["type"] for block in layout] == ["section"]


def test_caller_text_can_neither_ping_the_channel_nor_form_a_link() -> None:
    hostile = "<!channel> see <https://evil.example|your bank> & <@U0SANDBOT1>"
    request = mappers.post_request(
        TeamMessage(text=hostile, title="<!here>", fields={"<!everyone>": "<#C0GENERAL1>"}), FRONT_DESK, "k"
    )

    marked_up = json.dumps({**request, "blocks": request["blocks"][1:]})
    assert "<" not in marked_up
    assert ">" not in marked_up
    assert request["text"] == ("&lt;!channel&gt; see &lt;https://evil.example|your bank&gt; &amp; &lt;@U0SANDBOT1&gt;")
    section, fields = request["blocks"][1], request["blocks"][2]
    assert section["text"] == {"type": "mrkdwn", "text": request["text"], "verbatim": True}
    assert fields["fields"][0]["text"] == "*&lt;!everyone&gt;*\n&lt;#C0GENERAL1&gt;"
    # The header is plain_text, which Slack does not parse for mentions or links.
    assert request["blocks"][0]["text"] == {"type": "plain_text", "text": "<!here>"}
    assert request["unfurl_links"] is False
    assert request["unfurl_media"] is False


def test_long_parts_are_cut_to_slacks_limits_without_splitting_an_escape() -> None:
    message = TeamMessage(
        text="&" * 5000,
        title="T" * 400,
        fields={f"Label {n}": "v" * 2500 for n in range(23)},
    )

    layout = mappers.blocks(message)

    header, section, *field_sections = layout
    assert len(header["text"]["text"]) == mappers.HEADER_CHARS
    assert header["text"]["text"].endswith("…")
    assert len(section["text"]["text"]) <= mappers.SECTION_CHARS
    assert section["text"]["text"].removesuffix("…").endswith("&amp;")
    assert [len(block["fields"]) for block in field_sections] == [10, 10, 3]
    assert all(len(field["text"]) <= mappers.FIELD_CHARS for block in field_sections for field in block["fields"])


async def test_the_emulator_accepts_a_message_at_every_limit(team: SlackTeam, state: SlackState) -> None:
    message = TeamMessage(text="<" * 5000, title="T" * 400, fields={f"L{n}": ">" * 2500 for n in range(23)})

    post = await team.post_team_message(message)

    [posted] = state.posted()
    assert posted["ts"] == post.id
    assert len(posted["blocks"]) == 5


# -- posting ------------------------------------------------------------------------------------------


async def test_a_post_lands_in_the_channel_with_its_key_in_the_metadata(team: SlackTeam, state: SlackState) -> None:
    post = await team.post_team_message(a_message())

    [posted] = state.posted(FRONT_DESK)
    assert (post.id, post.channel, post.provider) == (posted["ts"], FRONT_DESK, "slack")
    assert post.text == "Jane Doe called about a leak."
    assert post.raw["ts"] == post.id
    assert posted["metadata"] == {
        "event_type": "tool_server_post",
        "event_payload": {"idempotency_key": "call-1:notify_team"},
    }
    assert posted["bot_id"].startswith("B")


async def test_posting_again_with_the_same_key_answers_the_first_post_without_asking_slack(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    first = await team.post_team_message(a_message())
    second = await team.post_team_message(a_message())

    assert second == first
    assert len(state.posted()) == 1
    assert len(sent(sandbox, POST)) == 1


async def test_concurrent_posts_with_the_same_key_post_once(team: SlackTeam, state: SlackState) -> None:
    posts = await asyncio.gather(*(team.post_team_message(a_message()) for _ in range(5)))

    assert len({post.id for post in posts}) == 1
    assert len(state.posted()) == 1


async def test_posts_without_a_key_each_post(team: SlackTeam, state: SlackState) -> None:
    await team.post_team_message(a_message(key=None))
    await team.post_team_message(a_message(key=None))

    keys = [mappers.key_of(message) for message in state.posted()]
    assert len(keys) == 2
    assert len(set(keys)) == 2


async def test_a_post_that_landed_before_slack_failed_is_found_in_the_history_not_posted_again(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    state.fail_next_post_after_saving("fatal_error")

    post = await team.post_team_message(a_message())

    [posted] = state.posted()
    assert post.id == posted["ts"]
    assert post.channel == FRONT_DESK
    assert [r.path for r in sandbox.provider_requests() if r.path != OAUTH_PATH] == [POST, HISTORY]
    [lookup] = sent(sandbox, HISTORY)
    assert lookup.body["channel"] == FRONT_DESK
    assert lookup.body["include_all_metadata"] == "1"


async def test_a_post_that_failed_without_landing_is_posted_after_the_lookup_finds_nothing(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503, path=POST, times=1))

    post = await team.post_team_message(a_message())

    assert [m["ts"] for m in state.posted()] == [post.id]
    assert [r.path for r in sandbox.provider_requests() if r.path != OAUTH_PATH] == [POST, HISTORY, POST]


async def test_a_timed_out_post_is_looked_up_by_the_next_call_with_the_same_key(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    await team.check_connection()  # the token first, outside the slow window
    sandbox.inject(Fault(kind="slow", seconds=1.2, path=POST, times=1))

    with deadline_scope(0.8), pytest.raises(MaybePostedError) as caught:
        await team.post_team_message(a_message())
    await eventually(lambda: len(state.posted()) == 1)
    retried = await team.post_team_message(a_message())

    assert caught.value.retryable is True
    assert retried.id == state.posted()[0]["ts"]
    assert len(state.posted()) == 1
    assert len(sent(sandbox, POST)) == 1
    assert len(sent(sandbox, HISTORY)) == 1


async def test_a_failed_lookup_raises_and_posts_nothing_more(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    state.fail_next_post_after_saving("internal_error")
    sandbox.inject(Fault(kind="server_error", status=503, path=HISTORY, times=0))

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await team.post_team_message(a_message())
    sandbox.faults.clear()
    found = await team.post_team_message(a_message())

    assert caught.value.retryable is True
    assert len(sent(sandbox, POST)) == 1
    assert [m["ts"] for m in state.posted()] == [found.id]


async def test_a_lookup_ignores_other_posts_and_a_persons_messages(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    state.seed_message(FRONT_DESK, "an earlier post", key="call-0:notify_team")
    state.seed_message(FRONT_DESK, "Jane Doe called about a leak.", user="U0SANDOWNR")
    state.fail_next_post_after_saving()

    post = await team.post_team_message(a_message())

    assert mappers.key_of(post.raw) == "call-1:notify_team"
    assert len(state.posted()) == 3


async def test_a_channel_name_is_resolved_to_its_id_for_the_lookup(
    served: ServedSandboxes, vault: MemoryVault, state: SlackState, sandbox: Sandbox
) -> None:
    team = connect(served, vault, channel="#front-desk")
    state.fail_next_post_after_saving()

    post = await team.post_team_message(a_message())

    assert post.channel == FRONT_DESK
    [posted] = sent(sandbox, POST)
    assert posted.body["channel"] == "#front-desk"
    assert sent(sandbox, HISTORY)[0].body["channel"] == FRONT_DESK
    assert len(state.posted()) == 1


# -- channels Slack will not post to ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "fix"),
    [
        (GENERAL, "/invite @<app name>"),
        ("C0NOSUCHCH", "check the channel setting"),
        ("#no-such-channel", "check the channel setting"),
        (ARCHIVED, "unarchive it"),
    ],
)
async def test_a_channel_slack_refuses_is_a_configuration_error_naming_the_fix(
    served: ServedSandboxes, vault: MemoryVault, state: SlackState, channel: str, fix: str
) -> None:
    team = connect(served, vault, channel=channel)

    with pytest.raises(ConfigurationError) as caught:
        await team.post_team_message(a_message())

    assert caught.value.setting == "channel"
    assert fix in str(caught.value)
    assert channel in str(caught.value)
    assert state.posted() == []


async def test_after_the_app_is_invited_the_same_key_posts(
    served: ServedSandboxes, vault: MemoryVault, state: SlackState
) -> None:
    team = connect(served, vault, channel=GENERAL)
    with pytest.raises(ConfigurationError):
        await team.post_team_message(a_message())
    state.set_member(GENERAL, True)

    post = await team.post_team_message(a_message())

    assert [m["ts"] for m in state.posted(GENERAL)] == [post.id]


async def test_check_connection_names_the_workspace_the_bot_and_the_channel(team: SlackTeam) -> None:
    line = await team.check_connection()

    assert line == f"slack workspace Tool Server Sandbox as @tool-server, posting to #front-desk ({FRONT_DESK})"


@pytest.mark.parametrize(("channel", "fix"), [(GENERAL, "/invite"), (ARCHIVED, "unarchive"), ("C0NOSUCHCH", "check")])
async def test_check_connection_says_what_to_fix_in_the_channel(
    served: ServedSandboxes, vault: MemoryVault, channel: str, fix: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await connect(served, vault, channel=channel).check_connection()

    assert caught.value.setting == "channel"
    assert fix in str(caught.value)


# -- Slack's answers as capability errors -------------------------------------------------------------


@pytest.mark.parametrize("code", ["invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"])
def test_a_refused_token_is_an_auth_refusal(code: str) -> None:
    error = translate(slack_api_error(200, {"ok": False, "error": code}), write=True, channel=FRONT_DESK)

    assert isinstance(error, AuthRefusedError)
    assert error.code == code


@pytest.mark.parametrize(
    ("status", "body", "headers", "retry_after"),
    [
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": ["7"]}, 7.0),
        (429, {"ok": False, "error": "ratelimited"}, {"retry-after": "3"}, 3.0),
        (200, {"ok": False, "error": "ratelimited"}, {}, None),
    ],
)
def test_a_rate_limit_carries_slacks_retry_after(
    status: int, body: dict[str, Any], headers: dict[str, Any], retry_after: float | None
) -> None:
    error = translate(slack_api_error(status, body, headers), write=True, channel=FRONT_DESK)

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == retry_after


@pytest.mark.parametrize(
    ("status", "code"), [(200, "fatal_error"), (200, "internal_error"), (500, "internal_error"), (503, "")]
)
def test_a_server_failure_is_retryable_and_a_failed_post_may_have_landed(status: int, code: str) -> None:
    body = {"ok": False, "error": code} if code else {"ok": False, "error": "Received a response in a non-JSON format"}

    on_post = translate(slack_api_error(status, body), write=True, channel=FRONT_DESK)
    on_read = translate(slack_api_error(status, body), write=False, channel=FRONT_DESK)

    assert isinstance(on_post, MaybePostedError)
    assert on_post.retryable
    assert on_read.retryable
    assert not isinstance(on_read, MaybePostedError)


def test_a_missing_scope_names_the_scope_to_add() -> None:
    body = {"ok": False, "error": "missing_scope", "needed": "channels:history", "provided": "chat:write"}

    error = translate(slack_api_error(200, body), write=False, channel=FRONT_DESK)

    assert isinstance(error, UpstreamError)
    assert error.retryable is False
    assert "channels:history" in str(error)


def test_any_other_refusal_is_a_permanent_upstream_error_naming_the_code() -> None:
    error = translate(slack_api_error(200, {"ok": False, "error": "msg_too_long"}), write=True, channel=FRONT_DESK)

    assert type(error) is UpstreamError
    assert error.retryable is False
    assert "msg_too_long" in str(error)


# -- tokens -------------------------------------------------------------------------------------------


async def test_an_access_token_is_fetched_and_the_rotated_refresh_token_saved(
    team: SlackTeam, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await team.post_team_message(a_message())

    assert vault.secrets["access_token"].startswith("xoxe.xoxb-")
    assert vault.secrets["refresh_token"].startswith("xoxe-1-")
    assert vault.secrets["refresh_token"] != SANDBOX_REFRESH_TOKEN
    assert datetime.fromisoformat(vault.secrets["expires_at"]) == NOW + timedelta(hours=12)
    [refresh] = sent(sandbox, OAUTH_PATH)
    assert refresh.body["grant_type"] == "refresh_token"
    assert refresh.body["refresh_token"] == SANDBOX_REFRESH_TOKEN
    assert set(refresh.body) <= OAUTH_ARGUMENTS


async def test_a_used_refresh_token_stops_working_and_the_next_refresh_uses_its_replacement(
    team: SlackTeam, vault: MemoryVault, sandbox: Sandbox, base_url: str
) -> None:
    await team.post_team_message(a_message("k-1"))
    issued = vault.secrets["refresh_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))
    await team.post_team_message(a_message("k-2"))
    spent = {"grant_type": "refresh_token", "refresh_token": issued}

    async with httpx.AsyncClient() as client:
        refused = await client.post(
            f"{base_url}oauth.v2.access", data=spent, auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET)
        )

    by_connector = [r.body["refresh_token"] for r in sent(sandbox, OAUTH_PATH)][:2]
    assert by_connector == [SANDBOX_REFRESH_TOKEN, issued]
    assert vault.secrets["refresh_token"] not in (issued, SANDBOX_REFRESH_TOKEN)
    assert (refused.status_code, refused.json()) == (200, {"ok": False, "error": "invalid_refresh_token"})


async def test_an_expired_access_token_is_refreshed_silently_and_the_post_made_once(
    team: SlackTeam, vault: MemoryVault, state: SlackState, sandbox: Sandbox
) -> None:
    await team.check_connection()
    stale = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    post = await team.post_team_message(a_message())

    assert vault.secrets["access_token"] != stale
    assert vault.expired_reason is None
    assert len(sent(sandbox, OAUTH_PATH)) == 2
    assert len(sent(sandbox, POST)) == 2
    assert [m["ts"] for m in state.posted()] == [post.id]


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    team: SlackTeam, vault: MemoryVault, sandbox: Sandbox, state: SlackState
) -> None:
    await team.post_team_message(a_message("k-1"))
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    with pytest.raises(ProviderNotConnectedError) as caught:
        await team.post_team_message(a_message("k-2"))

    assert caught.value.capability == "team"
    assert vault.expired_reason is not None
    assert "reconnect" in vault.expired_reason
    assert vault.secrets["refresh_token"] not in str(caught.value)
    assert len(state.posted()) == 1


async def test_a_wrong_client_secret_marks_the_connection_expired(served: ServedSandboxes) -> None:
    vault = MemoryVault({**SPEC.sandbox_connection(served.url("slack")).secrets, "client_secret": "rotated-away"})

    with pytest.raises(ProviderNotConnectedError):
        await connect(served, vault).post_team_message(a_message())

    assert vault.expired_reason is not None
    assert "invalid_client" in vault.expired_reason


async def test_a_bot_token_without_rotation_is_used_as_it_is(
    served: ServedSandboxes, sandbox: Sandbox, state: SlackState
) -> None:
    vault = MemoryVault({"access_token": SANDBOX_BOT_TOKEN})

    await connect(served, vault).post_team_message(a_message())

    assert sent(sandbox, OAUTH_PATH) == []
    assert sent(sandbox, POST)[0].headers["authorization"] == f"Bearer {SANDBOX_BOT_TOKEN}"
    assert vault.secrets == {"access_token": SANDBOX_BOT_TOKEN}
    assert len(state.posted()) == 1


async def test_a_revoked_bot_token_marks_the_connection_expired_without_refreshing(
    served: ServedSandboxes, sandbox: Sandbox, state: SlackState
) -> None:
    vault = MemoryVault({"access_token": SANDBOX_BOT_TOKEN})
    state.revoke_bot_token()

    with pytest.raises(ProviderNotConnectedError) as caught:
        await connect(served, vault).post_team_message(a_message())

    assert "token_revoked" in str(caught.value)
    assert vault.expired_reason is not None
    assert sent(sandbox, OAUTH_PATH) == []
    assert len(sent(sandbox, POST)) == 1


async def test_a_connection_without_any_token_is_not_connected(served: ServedSandboxes, sandbox: Sandbox) -> None:
    vault = MemoryVault({})

    with pytest.raises(ProviderNotConnectedError):
        await connect(served, vault).post_team_message(a_message())

    assert vault.expired_reason is not None
    assert sandbox.provider_requests() == []


@pytest.mark.parametrize(
    ("code", "status", "oauth_error"),
    [
        ("invalid_refresh_token", 400, "invalid_grant"),
        ("invalid_client_id", 401, "invalid_client"),
        ("bad_client_secret", 401, "invalid_client"),
        ("ratelimited", 429, "slow_down"),
        ("fatal_error", 503, "temporarily_unavailable"),
        ("something_new", 400, "something_new"),
    ],
)
async def test_the_token_dialect_rewrites_slacks_refusals_as_oauth_answers(
    code: str, status: int, oauth_error: str
) -> None:
    transport = SlackTokenDialect(
        inner=lambda: httpx.MockTransport(lambda _request: httpx.Response(200, json={"ok": False, "error": code}))
    )
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.post("http://127.0.0.1:9/api/oauth.v2.access", data={"grant_type": "refresh_token"})

    assert answer.status_code == status
    assert answer.json() == {"error": oauth_error, "error_description": code}


async def test_the_token_dialect_passes_a_granted_token_through_unchanged() -> None:
    granted = {"ok": True, "access_token": "xoxe.xoxb-1-a", "refresh_token": "xoxe-1-r", "expires_in": 43200}
    transport = SlackTokenDialect(inner=lambda: httpx.MockTransport(lambda _request: httpx.Response(200, json=granted)))
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.post("http://127.0.0.1:9/api/oauth.v2.access", data={"grant_type": "refresh_token"})

    assert (answer.status_code, answer.json()) == (200, granted)


def test_the_emulator_grants_an_install_code_once_to_basic_client_credentials(base_url: str) -> None:
    form = {"code": SANDBOX_AUTH_CODE}
    with httpx.Client(base_url=base_url) as client:
        granted = client.post("oauth.v2.access", data=form, auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET)).json()
        again = client.post("oauth.v2.access", data=form, auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET)).json()
        wrong = client.post("oauth.v2.access", data={**form, "client_id": "1.2", "client_secret": "x"}).json()

    assert granted["ok"] is True
    assert granted["token_type"] == "bot"
    assert granted["access_token"].startswith("xoxe.xoxb-")
    assert granted["expires_in"] == 43200
    assert granted["team"]["id"].startswith("T")
    assert again == {"ok": False, "error": "invalid_code"}
    assert wrong == {"ok": False, "error": "invalid_client_id"}


# -- faults -------------------------------------------------------------------------------------------


def test_the_sdks_own_handler_waits_out_one_rate_limit_with_retry_after(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, path=POST, times=1))
    client = SlackClient(base_url, channel=FRONT_DESK)
    started = time.monotonic()

    answer = client.post_message(SANDBOX_BOT_TOKEN, 5.0, mappers.post_request(a_message(), FRONT_DESK, "k"))

    assert answer["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert len(sent(sandbox, POST)) == 2


async def test_a_rate_limit_longer_than_the_deadline_is_not_slept_on(team: SlackTeam, sandbox: Sandbox) -> None:
    await team.check_connection()
    sandbox.inject(Fault(kind="rate_limit", retry_after=30, path=POST, times=1))
    started = time.monotonic()

    with deadline_scope(2), pytest.raises(RateLimitedError) as caught:
        await team.post_team_message(a_message())

    assert caught.value.retry_after == 30
    assert time.monotonic() - started < 1.0
    assert len(sent(sandbox, POST)) == 1


async def test_posting_faster_than_the_channel_allows_waits_for_slacks_retry_after(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    state.burst = 2
    started = time.monotonic()

    for number in range(3):
        await team.post_team_message(a_message(f"k-{number}"))

    assert len(state.posted()) == 3
    assert time.monotonic() - started >= 1.0
    assert len(sent(sandbox, POST)) == 4


def test_the_emulators_channel_limit_answers_429_with_retry_after(base_url: str, state: SlackState) -> None:
    state.burst = 1
    body = {"channel": FRONT_DESK, "text": "hi"}
    with bot(base_url) as client:
        first = client.post("chat.postMessage", json=body)
        second = client.post("chat.postMessage", json=body)
        elsewhere = client.post("chat.postMessage", json={**body, "channel": "#old-news"})

    assert first.json()["ok"] is True
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert second.json() == {"ok": False, "error": "ratelimited"}
    assert elsewhere.json()["error"] == "is_archived"


async def test_a_persistent_server_error_is_a_retryable_upstream_error_within_the_deadline(
    team: SlackTeam, state: SlackState, sandbox: Sandbox
) -> None:
    await team.check_connection()
    sandbox.inject(Fault(kind="server_error", status=503, times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await team.post_team_message(a_message())

    assert time.monotonic() - started < 3.5
    assert caught.value.retryable is True
    assert caught.value.status == 503
    assert state.posted() == []


async def test_an_unreachable_slack_is_a_retryable_upstream_error() -> None:
    settings = SPEC.settings_model.model_validate(
        {"channel": FRONT_DESK, "base_url": f"http://127.0.0.1:{closed_port()}/api/"}
    )
    env = ConnectorEnv(clock=lambda: NOW, connection_id="c", public_url="http://127.0.0.1:9")
    team = SPEC.build(settings, MemoryVault({"access_token": SANDBOX_BOT_TOKEN}), env)
    assert isinstance(team, SlackTeam)

    with deadline_scope(2), pytest.raises(UpstreamError) as caught:
        await team.post_team_message(a_message())

    assert caught.value.retryable is True
    assert "unreachable" in str(caught.value)


# -- the emulator against Slack's spec ----------------------------------------------------------------


async def test_every_request_of_a_whole_flow_is_accepted_by_slacks_spec(
    served: ServedSandboxes, vault: MemoryVault, state: SlackState, sandbox: Sandbox
) -> None:
    by_name = connect(served, vault, channel="#front-desk")
    await by_name.check_connection()
    state.fail_next_post_after_saving()
    await by_name.post_team_message(a_message("k-1"))
    await by_name.post_team_message(a_message("k-2", fields={}))

    spec = SlackSpec()
    problems: list[str] = []
    for request in sandbox.provider_requests():
        if request.path == OAUTH_PATH:
            problems += [f"oauth.v2.access: {name!r} undocumented" for name in set(request.body) - OAUTH_ARGUMENTS]
        else:
            problems += spec.check_request(request)

    assert problems == []
    assert {r.path for r in sandbox.provider_requests()} == {
        OAUTH_PATH,
        "/api/auth.test",
        "/api/conversations.list",
        "/api/conversations.info",
        POST,
        HISTORY,
    }


def test_the_spec_check_flags_a_post_without_a_channel_or_a_token_and_an_unknown_argument() -> None:
    request = RecordedRequest("POST", POST, {}, {}, {"text": "hi", "colour": "red"})

    problems = SlackSpec().check_request(request)

    assert any("'colour'" in p for p in problems)
    assert any("'channel'" in p for p in problems)
    assert any("Authorization" in p for p in problems)


def test_the_emulators_answers_match_slacks_schemas(base_url: str, state: SlackState) -> None:
    state.seed_message(FRONT_DESK, "an earlier post", key="k-0")
    blocks = mappers.blocks(a_message())
    with bot(base_url) as client:
        answers = {
            "chat.postMessage": client.post("chat.postMessage", json={"channel": FRONT_DESK, "blocks": blocks}),
            "auth.test": client.post("auth.test"),
            "conversations.info": client.get("conversations.info", params={"channel": FRONT_DESK}),
            "conversations.list": client.get("conversations.list", params={"limit": 2}),
            "conversations.history": client.get("conversations.history", params={"channel": FRONT_DESK}),
        }
        refusals = {
            "chat.postMessage": client.post("chat.postMessage", json={"channel": GENERAL, "text": "x"}),
            "conversations.info": client.get("conversations.info", params={"channel": "C0NOSUCHCH"}),
            "conversations.history": client.get("conversations.history", params={"channel": "C0NOSUCHCH"}),
        }
    spec = SlackSpec()

    problems = [p for method, answer in answers.items() for p in spec.validate(method, answer.json())]
    problems += [p for method, answer in refusals.items() for p in spec.validate(method, answer.json())]

    assert problems == []
    assert all(answer.status_code == 200 for answer in (*answers.values(), *refusals.values()))
    assert answers["conversations.list"].json()["response_metadata"]["next_cursor"]
    assert refusals["chat.postMessage"].json()["error"] == "not_in_channel"


def test_history_shows_metadata_only_when_asked_a_field_the_2021_spec_does_not_know(
    base_url: str, state: SlackState
) -> None:
    state.seed_message(FRONT_DESK, "an earlier post", key="k-0")
    with bot(base_url) as client:
        plain = client.get("conversations.history", params={"channel": FRONT_DESK}).json()
        detailed = client.get(
            "conversations.history", params={"channel": FRONT_DESK, "include_all_metadata": "true"}
        ).json()

    assert "metadata" not in plain["messages"][0]
    assert detailed["messages"][0]["metadata"]["event_payload"] == {"idempotency_key": "k-0"}
    assert any("'metadata' was unexpected" in p for p in SlackSpec().validate("conversations.history", detailed))


def test_history_pages_newest_first_between_oldest_and_latest(base_url: str, state: SlackState) -> None:
    stamps = [state.seed_message(FRONT_DESK, f"post {n}")["ts"] for n in range(5)]
    with bot(base_url) as client:
        first = client.post("conversations.history", data={"channel": FRONT_DESK, "limit": "2"}).json()
        second = client.post(
            "conversations.history",
            data={"channel": FRONT_DESK, "limit": "2", "cursor": first["response_metadata"]["next_cursor"]},
        ).json()
        window = client.post(
            "conversations.history",
            data={"channel": FRONT_DESK, "oldest": stamps[1], "latest": stamps[3], "inclusive": "1"},
        ).json()
        exclusive = client.post(
            "conversations.history", data={"channel": FRONT_DESK, "oldest": stamps[1], "latest": stamps[3]}
        ).json()

    assert [m["ts"] for m in first["messages"]] == [stamps[4], stamps[3]]
    assert first["has_more"] is True
    assert [m["ts"] for m in second["messages"]] == [stamps[2], stamps[1]]
    assert [m["ts"] for m in window["messages"]] == [stamps[3], stamps[2], stamps[1]]
    assert [m["ts"] for m in exclusive["messages"]] == [stamps[2]]


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({}, {"channel": FRONT_DESK, "text": "hi"}, "not_authed"),
        ({"Authorization": "Bearer xoxb-not-ours"}, {"channel": FRONT_DESK, "text": "hi"}, "invalid_auth"),
        (None, {"channel": FRONT_DESK}, "no_text"),
        (None, {"channel": FRONT_DESK, "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}, ""),
        (None, {"channel": FRONT_DESK, "text": "x", "metadata": {"event_type": "t"}}, "invalid_metadata_format"),
        (None, {"channel": FRONT_DESK, "text": "x" * 40001}, "msg_too_long"),
    ],
)
def test_the_emulator_refuses_a_post_with_slacks_error_codes(
    base_url: str, state: SlackState, headers: dict[str, str] | None, body: dict[str, Any], error: str
) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {SANDBOX_BOT_TOKEN}"}) as client:
        if headers is not None:
            client.headers.pop("Authorization")
            client.headers.update(headers)
        answer = client.post("chat.postMessage", json=body)

    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert answer.json()["error"] == (error or "invalid_blocks")
    if not error:
        assert answer.json()["response_metadata"]["messages"] == [
            "[ERROR] must be a text object of type plain_text [json-pointer:/blocks/0/text]"
        ]
    assert state.posted() == []


def test_the_emulator_takes_a_form_post_with_json_encoded_blocks(base_url: str, state: SlackState) -> None:
    too_many = {"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}
    with bot(base_url) as client:
        good = client.post(
            "chat.postMessage", data={"channel": "#front-desk", "blocks": json.dumps(mappers.blocks(a_message()))}
        ).json()
        bad = client.post("chat.postMessage", data={"channel": FRONT_DESK, "blocks": json.dumps([too_many])}).json()

    assert good["ok"] is True
    assert good["channel"] == FRONT_DESK
    assert bad["error"] == "invalid_blocks"
    assert len(state.posted()) == 1


# -- restarts -----------------------------------------------------------------------------------------


async def test_a_restarted_emulator_keeps_the_channel_and_the_tokens_it_issued(tmp_path: Path) -> None:
    with restartable("slack", SPEC.sandbox, tmp_path / "slack.json") as restart:
        vault = MemoryVault(SPEC.sandbox_connection(restart.served_before.url("slack")).secrets)
        before = connect(restart.served_before, vault)
        first = await before.post_team_message(a_message("k-1"))
        restart.restart()
        after = connect(restart.served_after, vault)
        second = await after.post_team_message(a_message("k-2"))
        dumped_before, dumped_after = await restart.dumps()

    assert [m["ts"] for m in dumped_after["messages"]] == [first.id, second.id]
    assert dumped_before["channels"] == dumped_after["channels"]
    assert second.id > first.id
    assert len(restart.after.state.dump()["messages"]) == 2  # type: ignore[union-attr]
    assert not [r for r in restart.after.provider_requests() if r.path == OAUTH_PATH]


def test_a_snapshot_the_state_did_not_write_is_refused(state: SlackState) -> None:
    snapshot = state.snapshot()

    with pytest.raises(ValueError, match="format"):
        state.restore({**snapshot, "version": 99})
    with pytest.raises(KeyError):
        state.restore({**snapshot, "messages": [{"ts": "1.000001"}]})
    with pytest.raises(ValueError, match="refresh_tokens"):
        state.restore({**snapshot, "refresh_tokens": "xoxe-1-a"})
