"""The SendGrid connector against its emulator on a real 127.0.0.1 socket, plus the Event Webhook."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from pydantic import ValidationError
from python_http_client.exceptions import HTTPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.capabilities.email import EmailProvider
from integrations.capabilities.errors import (
    ConfigurationError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.capabilities.models import EmailRequest
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv, MessageStatusEvent, WebhookRejectedError, WebhookRequest
from integrations.common.vault import MemoryVault
from integrations.sendgrid import SPEC, SendGridEmail
from integrations.sendgrid.errors import MaybeSentError, translate
from integrations.sendgrid.mappers import to_status_event
from integrations.sendgrid.sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY,
    SANDBOX_FROM_EMAIL,
    Callback,
    SendGridState,
)
from integrations.sendgrid.sandbox_wire import sign_event_webhook
from integrations.sendgrid.webhooks import handle, verify
from tests.conftest import AgentFactory, CallerFactory
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi
from tool_server.agents import Connection
from tool_server.services import Services

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
JANE = "jane@example.com"
SEND = "/v3/mail/send"
SCOPES = "/v3/scopes"
SIGNED_KEY = "/v3/user/webhooks/event/settings/signed"
MAIL_SPEC = "sendgrid/tsg_mail_v3.json"
SCOPES_SPEC = "sendgrid/tsg_scopes_v3.json"
EVENTS_URL = "http://127.0.0.1:9/webhooks/sendgrid/con_test/events"
TEXT = EmailRequest(to=JANE, to_name="Jane Doe", subject="Your booking", text="See you Monday at 10.")
TEMPLATE = EmailRequest(
    to=JANE, template_id="d-13b8f94fbcae4ec6b75270d6cb59f932", template_data={"first_name": "Jane", "time": "10 AM"}
)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"sendgrid": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox, served: ServedSandboxes) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> SendGridState:
    assert isinstance(sandbox.state, SendGridState)
    return sandbox.state


ConnectorFactory = Callable[..., tuple[SendGridEmail, MemoryVault]]


def env() -> ConnectorEnv:
    return ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9")


@pytest.fixture
def connect(served: ServedSandboxes) -> ConnectorFactory:
    """A connector for the sandbox account; keyword arguments override settings, `secrets` the vault."""

    def make(*, secrets: dict[str, str] | None = None, **settings: Any) -> tuple[SendGridEmail, MemoryVault]:
        connection = SPEC.sandbox_connection(served.url("sendgrid"))
        values = {**connection.settings, **settings}
        vault = MemoryVault(connection.secrets if secrets is None else secrets)
        connector = SPEC.build(SPEC.settings_model.model_validate(values), vault, env())
        assert isinstance(connector, SendGridEmail)
        return connector, vault

    return make


@pytest.fixture
def sendgrid(connect: ConnectorFactory) -> SendGridEmail:
    return connect()[0]


def posts(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == "POST" and r.path == SEND]


def mails(state: SendGridState) -> list[dict[str, Any]]:
    mails: list[dict[str, Any]] = state.dump()["mails"]
    return mails


def api(served: ServedSandboxes, key: str = SANDBOX_API_KEY) -> httpx.Client:
    return httpx.Client(base_url=served.url("sendgrid"), headers={"Authorization": f"Bearer {key}"})


def as_request(callback: Callback, kind: str = "events") -> WebhookRequest:
    return WebhookRequest(kind=kind, url=callback.url, headers=callback.headers, body=callback.body, form={})


SECRETS = {"api_key": SANDBOX_API_KEY, "event_webhook_public_key": SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY}


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


# -- the spec entry and settings ----------------------------------------------------------------


def test_the_spec_declares_email_over_an_api_key_with_an_optional_webhook_key() -> None:
    assert SPEC.name == "sendgrid"
    assert SPEC.capabilities == frozenset({"email"})
    assert SPEC.auth == "api_key"
    assert SPEC.required_secrets == ("api_key",)
    assert SPEC.optional_secrets == ("event_webhook_public_key",)
    assert SPEC.webhook is handle


def test_the_connector_satisfies_the_email_and_checkable_protocols(sendgrid: SendGridEmail) -> None:
    assert isinstance(sendgrid, EmailProvider)
    assert isinstance(sendgrid, Checkable)
    assert sendgrid.name == "sendgrid"


def test_the_sandbox_connection_hands_out_the_emulators_key_and_webhook_public_key() -> None:
    connection = SPEC.sandbox_connection("http://127.0.0.1:1/sandbox/sendgrid")

    assert connection.secrets == SECRETS
    assert connection.settings["from_email"] == SANDBOX_FROM_EMAIL
    assert SANDBOX_API_KEY.startswith("SG.")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_email", "not an address"),
        ("from_email", "Front Desk <frontdesk@example.com>"),
        ("reply_to", "nobody"),
        ("base_url", "api.sendgrid.com"),
        ("extra", 1),
    ],
)
def test_settings_refuse_malformed_addresses_urls_and_unknown_fields(field: str, value: object) -> None:
    values: dict[str, object] = {"from_email": SANDBOX_FROM_EMAIL, field: value}

    with pytest.raises(ValidationError) as raised:
        SPEC.settings_model.model_validate(values)

    assert raised.value.errors()[0]["loc"] == (field,)


def test_settings_need_a_from_email_and_default_to_the_global_api_with_events_on() -> None:
    with pytest.raises(ValidationError):
        SPEC.settings_model.model_validate({})
    default = SPEC.settings_model.model_validate({"from_email": SANDBOX_FROM_EMAIL}).model_dump()
    eu = SPEC.settings_model.model_validate(
        {"from_email": SANDBOX_FROM_EMAIL, "base_url": "https://api.eu.sendgrid.com/"}
    )

    assert default["base_url"] == "https://api.sendgrid.com"
    assert default["status_events"] is True
    assert eu.model_dump()["base_url"] == "https://api.eu.sendgrid.com"


def test_the_event_webhook_url_is_this_servers_route_unless_events_are_off(connect: ConnectorFactory) -> None:
    on, _ = connect()
    off, _ = connect(status_events=False)

    assert on.event_webhook_url == EVENTS_URL
    assert off.event_webhook_url is None


# -- sending ------------------------------------------------------------------------------------


async def test_a_text_mail_is_one_personalization_with_plain_text_and_its_id_is_the_x_message_id(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    message = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    [request] = posts(sandbox)
    assert request.headers["authorization"] == f"Bearer {SANDBOX_API_KEY}"
    assert request.body == {
        "personalizations": [{"to": [{"email": JANE, "name": "Jane Doe"}], "custom_args": {"idempotency_key": "k-1"}}],
        "from": {"email": SANDBOX_FROM_EMAIL, "name": "Sandbox Front Desk"},
        "subject": "Your booking",
        "content": [{"type": "text/plain", "value": "See you Monday at 10."}],
    }
    [mail] = mails(state)
    assert message.id == mail["message_id"]
    assert len(message.id) == 22
    assert (message.to, message.body, message.channel, message.status) == (
        JANE,
        "See you Monday at 10.",
        "email",
        "queued",
    )
    assert (message.provider, message.created_at) == ("sendgrid", NOW)
    assert message.raw["x_message_id"] == message.id
    assert message.raw["mail"] == request.body


async def test_a_template_mail_sends_the_template_id_and_its_data_without_content(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    message = await sendgrid.send_email(TEMPLATE)

    [request] = posts(sandbox)
    assert request.body == {
        "personalizations": [
            {"to": [{"email": JANE}], "dynamic_template_data": {"first_name": "Jane", "time": "10 AM"}}
        ],
        "from": {"email": SANDBOX_FROM_EMAIL, "name": "Sandbox Front Desk"},
        "template_id": "d-13b8f94fbcae4ec6b75270d6cb59f932",
    }
    assert message.body == "template d-13b8f94fbcae4ec6b75270d6cb59f932"
    assert mails(state)[0]["template_id"] == "d-13b8f94fbcae4ec6b75270d6cb59f932"


async def test_reply_to_comes_from_the_settings_and_no_from_name_means_none_sent(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    sendgrid, _ = connect(from_name=None, reply_to="owner@example.com")

    await sendgrid.send_email(TEXT)

    body = posts(sandbox)[0].body
    assert body["from"] == {"email": SANDBOX_FROM_EMAIL}
    assert body["reply_to"] == {"email": "owner@example.com"}
    assert "custom_args" not in body["personalizations"][0]


async def test_the_same_key_and_email_send_once_and_answer_the_first_message(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    first = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))
    again = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))
    other = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-2"}))

    assert again == first
    assert other.id != first.id
    assert len(posts(sandbox)) == 2
    assert len(mails(state)) == 2


async def test_two_concurrent_sends_with_one_key_make_one_request(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=0.3, path=SEND, times=1))
    keyed = TEXT.model_copy(update={"idempotency_key": "k-1"})

    first, second = await asyncio.gather(sendgrid.send_email(keyed), sendgrid.send_email(keyed))

    assert first.id == second.id
    assert len(posts(sandbox)) == 1
    assert len(mails(state)) == 1


async def test_a_key_reused_for_a_different_email_sends_that_email(
    sendgrid: SendGridEmail, state: SendGridState
) -> None:
    first = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))
    changed = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1", "text": "Make it 11."}))

    assert changed.id != first.id
    assert [m["content"][0]["value"] for m in mails(state)] == ["See you Monday at 10.", "Make it 11."]


async def test_a_text_mail_without_a_subject_is_refused_once_with_sendgrids_first_message(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await sendgrid.send_email(EmailRequest(to=JANE, text="No subject"))

    assert type(raised.value) is UpstreamError
    assert (raised.value.status, raised.value.retryable) == (400, False)
    assert "(subject): The subject is required." in str(raised.value)
    assert len(posts(sandbox)) == 1
    assert mails(state) == []


async def test_a_sender_that_is_not_verified_is_a_configuration_error_naming_from_email(
    connect: ConnectorFactory, state: SendGridState
) -> None:
    sendgrid, vault = connect(from_email="someone@elsewhere.example")

    with pytest.raises(ConfigurationError) as raised:
        await sendgrid.send_email(TEXT)

    assert raised.value.setting == "from_email"
    assert "someone@elsewhere.example" in str(raised.value)
    assert vault.expired_reason is None
    assert mails(state) == []


async def test_a_sender_verified_later_can_send(connect: ConnectorFactory, state: SendGridState) -> None:
    sendgrid, _ = connect(from_email="owner@example.com")
    state.verify_sender("Owner@Example.com")

    message = await sendgrid.send_email(TEXT)

    assert mails(state)[0]["message_id"] == message.id


OPERATIONS: dict[str, Callable[[SendGridEmail], Awaitable[object]]] = {
    "send": lambda sendgrid: sendgrid.send_email(TEXT),
    "check": lambda sendgrid: sendgrid.check_connection(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_a_wrong_api_key_means_not_connected_and_marks_the_connection_expired(
    connect: ConnectorFactory, sandbox: Sandbox, state: SendGridState, operation: str
) -> None:
    wrong = "SG.wrong.key-that-sendgrid-does-not-know"
    sendgrid, vault = connect(secrets={"api_key": wrong})

    with pytest.raises(ProviderNotConnectedError) as raised:
        await OPERATIONS[operation](sendgrid)

    assert raised.value.capability == "email"
    assert wrong not in str(raised.value)
    assert vault.expired_reason is not None
    assert len(sandbox.provider_requests()) == 1
    assert mails(state) == []


async def test_a_connection_without_an_api_key_is_a_configuration_error_naming_it(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    sendgrid, _ = connect(secrets={})

    with pytest.raises(ConfigurationError) as raised:
        await sendgrid.send_email(TEXT)

    assert raised.value.setting == "api_key"
    assert sandbox.provider_requests() == []


async def test_the_api_key_never_reaches_the_logs_even_at_debug(
    sendgrid: SendGridEmail, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    await sendgrid.check_connection()
    await sendgrid.send_email(TEXT)

    assert "Bearer (redacted)" in caplog.text
    assert SANDBOX_API_KEY not in caplog.text


async def test_check_connection_lists_the_keys_scopes_and_names_the_sender_and_the_webhook_url(
    sendgrid: SendGridEmail, connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    quiet, _ = connect(status_events=False)

    assert await sendgrid.check_connection() == (
        f"sendgrid api key may send mail as {SANDBOX_FROM_EMAIL}; Event Webhook URL: {EVENTS_URL}"
    )
    assert await quiet.check_connection() == f"sendgrid api key may send mail as {SANDBOX_FROM_EMAIL}"
    assert [(r.method, r.path) for r in sandbox.provider_requests()] == [("GET", SCOPES)] * 2


async def test_a_key_without_the_mail_send_permission_fails_the_check_naming_the_key_and_sends_nothing(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    state.scopes = ["user.webhooks.event.settings.read"]

    with pytest.raises(ConfigurationError) as checked:
        await sendgrid.check_connection()
    with pytest.raises(UpstreamError) as sent:
        await sendgrid.send_email(TEXT)

    assert checked.value.setting == "api_key"
    assert type(sent.value) is UpstreamError
    assert (sent.value.status, sent.value.retryable) == (403, False)
    assert "access forbidden" in str(sent.value)
    assert len(posts(sandbox)) == 1
    assert mails(state) == []


# -- faults -------------------------------------------------------------------------------------


async def test_a_rate_limit_is_waited_out_until_x_ratelimit_reset_and_sends_once(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    message = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    assert time.monotonic() - started >= 0.95  # X-RateLimit-Reset, a second away, was honoured
    assert len(posts(sandbox)) == 2
    assert [m["message_id"] for m in mails(state)] == [message.id]


async def test_a_server_error_on_send_is_not_retried_because_the_mail_may_have_gone(
    sendgrid: SendGridEmail, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=1))

    with pytest.raises(MaybeSentError) as raised:
        await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    assert raised.value.status == 503
    assert raised.value.retryable is True  # for the caller, later; never repeated here
    assert "may have been sent" in str(raised.value)
    assert len(posts(sandbox)) == 1


async def test_a_persistent_server_error_on_send_fails_once_within_the_deadline(
    sendgrid: SendGridEmail, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=500, times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(MaybeSentError) as raised:
        await sendgrid.send_email(TEXT)

    assert time.monotonic() - started < 3
    assert raised.value.status == 500
    assert len(posts(sandbox)) == 1


async def test_a_persistent_server_error_on_check_is_retried_then_given_up_within_the_deadline(
    sendgrid: SendGridEmail, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await sendgrid.check_connection()

    assert time.monotonic() - started < 3
    assert type(raised.value) is UpstreamError
    assert (raised.value.status, raised.value.retryable) == (503, True)
    assert len(sandbox.provider_requests()) == 3


async def test_a_send_that_timed_out_is_reported_maybe_sent_and_not_repeated(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=1.5, path=SEND, times=1))

    with deadline_scope(1.0), pytest.raises(MaybeSentError) as raised:
        await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    assert "timed out" in str(raised.value)
    await eventually(lambda: len(mails(state)) == 1)
    assert len(posts(sandbox)) == 1


async def test_after_a_maybe_sent_failure_the_same_key_sends_again_as_sendgrid_cannot_be_asked(
    sendgrid: SendGridEmail, sandbox: Sandbox, state: SendGridState
) -> None:
    # The documented limit of the guarantee: only an accepted mail is remembered.
    sandbox.inject(Fault(kind="server_error", times=1))
    with pytest.raises(MaybeSentError):
        await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    message = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    assert len(posts(sandbox)) == 2
    assert [m["message_id"] for m in mails(state)] == [message.id]


async def test_a_refused_connection_is_retried_because_nothing_reached_sendgrid(connect: ConnectorFactory) -> None:
    sendgrid, _ = connect(base_url=f"http://127.0.0.1:{closed_port()}/sandbox/sendgrid")

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await sendgrid.send_email(TEXT)

    assert not isinstance(raised.value, MaybeSentError)
    assert raised.value.retryable is True
    assert "could not connect" in str(raised.value)


# -- error translation --------------------------------------------------------------------------


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> HTTPError:
    encoded = b"" if body is None else json.dumps(body).encode()
    return HTTPError(status, "reason", encoded, headers or {})


def refusal(message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field, "help": None}]}


def test_a_429_waits_until_x_ratelimit_reset() -> None:
    error = translate(
        answer(429, refusal("too many requests"), {"X-RateLimit-Reset": "1000"}),
        write=True,
        from_email="a@b.co",
        now=997.5,
    )

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.5


def test_a_401_is_not_connected_for_email() -> None:
    error = translate(answer(401, refusal("authorization required")), write=False, from_email="a@b.co", now=0)

    assert isinstance(error, ProviderNotConnectedError)
    assert error.capability == "email"


def test_a_403_for_another_reason_is_a_plain_refusal_with_sendgrids_words() -> None:
    error = translate(answer(403, refusal("access forbidden")), write=True, from_email="a@b.co", now=0)

    assert type(error) is UpstreamError
    assert (error.status, error.retryable) == (403, False)
    assert "access forbidden" in str(error)


def test_a_413_says_the_email_is_too_large() -> None:
    error = translate(answer(413, refusal("Payload Too Large")), write=True, from_email="a@b.co", now=0)

    assert type(error) is UpstreamError
    assert (error.status, error.retryable) == (413, False)


def test_a_server_error_is_retryable_on_reads_but_maybe_sent_on_sends() -> None:
    read = translate(answer(500, refusal("internal server error")), write=False, from_email="a@b.co", now=0)
    send = translate(answer(500, refusal("internal server error")), write=True, from_email="a@b.co", now=0)

    assert type(read) is UpstreamError
    assert read.retryable is True
    assert isinstance(send, MaybeSentError)


@pytest.mark.parametrize(
    ("failure", "maybe_sent"),
    [
        (URLError(ConnectionRefusedError(111, "Connection refused")), False),
        (URLError(socket.gaierror(-2, "Name or service not known")), False),
        (URLError(TimeoutError("timed out")), False),
        (URLError(ConnectionResetError(104, "reset")), True),
        (TimeoutError("timed out"), True),
        (RemoteDisconnected("Remote end closed connection without response"), True),
    ],
    ids=["refused", "dns", "connect-timeout", "reset-while-sending", "read-timeout", "dropped"],
)
def test_only_a_connection_never_established_is_safe_to_repeat_a_send(failure: Exception, maybe_sent: bool) -> None:
    send = translate(failure, write=True, from_email="a@b.co", now=0)
    read = translate(failure, write=False, from_email="a@b.co", now=0)

    assert isinstance(send, MaybeSentError) is maybe_sent
    assert isinstance(send, UpstreamError)
    assert send.retryable is True
    assert type(read) is UpstreamError
    assert read.retryable is True


# -- the Event Webhook --------------------------------------------------------------------------


async def test_the_emulators_signed_events_for_a_sent_mail_verify_and_become_sent_then_delivered(
    sendgrid: SendGridEmail, state: SendGridState
) -> None:
    state.event_webhook_url = sendgrid.event_webhook_url
    message = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    callbacks = state.take_callbacks()
    results = [handle(as_request(callback), SECRETS) for callback in callbacks]

    assert [callback.url for callback in callbacks] == [EVENTS_URL, EVENTS_URL]
    assert [reply.status for _, reply in results] == [200, 200]
    statuses = [event for events, _ in results for event in events]
    assert all(isinstance(event, MessageStatusEvent) for event in statuses)
    assert [(e.provider_message_id, e.status) for e in statuses if isinstance(e, MessageStatusEvent)] == [
        (message.id, "sent"),
        (message.id, "delivered"),
    ]
    assert state.take_callbacks() == []


async def test_an_emitted_bounce_carries_the_custom_args_at_the_top_level_and_the_message_id_prefix(
    sendgrid: SendGridEmail, state: SendGridState
) -> None:
    state.event_webhook_url = EVENTS_URL
    message = await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))
    state.take_callbacks()

    callback = state.emit(message.id, "bounce", type="blocked", status="5.7.1", reason="550 blocked by policy")

    assert callback is not None
    [event] = json.loads(callback.body)
    assert event["idempotency_key"] == "k-1"
    assert event["sg_message_id"].startswith(f"{message.id}.filterdrecv-")
    assert (event["email"], event["event"], event["type"]) == (JANE, "bounce", "blocked")
    assert isinstance(event["timestamp"], int)
    [status], reply = handle(as_request(callback), SECRETS)
    assert status == MessageStatusEvent(
        message.id, "undelivered", error_detail="5.7.1: 550 blocked by policy", occurred_at=status.occurred_at
    )
    assert status.occurred_at == datetime.fromtimestamp(event["timestamp"], UTC)
    assert reply.status == 200
    assert mails(state)[0]["status"] == "bounce"


async def test_without_an_event_webhook_url_events_are_recorded_but_nothing_is_queued(
    sendgrid: SendGridEmail, state: SendGridState
) -> None:
    message = await sendgrid.send_email(TEXT)

    assert state.emit(message.id, "open") is None
    assert state.take_callbacks() == []
    assert mails(state)[0]["events"] == ["processed", "delivered", "open"]


def signed(body: bytes, url: str = EVENTS_URL) -> Callback:
    return sign_event_webhook(url, body, int(time.time()))


BATCH = json.dumps([{"event": "delivered", "sg_message_id": "abc.filterdrecv-1.0", "timestamp": 1}]).encode()


def forge(change: str) -> Callback:
    good = signed(BATCH)
    headers = dict(good.headers)
    if change == "altered-body":
        return Callback(good.url, headers, BATCH.replace(b"delivered", b"bounce"))
    if change == "altered-timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(
            int(headers["X-Twilio-Email-Event-Webhook-Timestamp"]) + 1
        )
    elif change == "missing-signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif change == "missing-timestamp":
        del headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    elif change == "garbage-signature":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    elif change == "not-base64":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%"
    elif change == "other-events-signature":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = signed(b"[]").headers[
            "X-Twilio-Email-Event-Webhook-Signature"
        ]
    return Callback(good.url, headers, good.body)


FORGERIES = [
    "altered-body",
    "altered-timestamp",
    "missing-signature",
    "missing-timestamp",
    "garbage-signature",
    "not-base64",
    "other-events-signature",
]


@pytest.mark.parametrize("change", FORGERIES)
def test_a_forged_missing_or_altered_signature_is_refused_with_401(change: str) -> None:
    with pytest.raises(WebhookRejectedError) as raised:
        handle(as_request(forge(change)), SECRETS)

    assert raised.value.status == 401


def test_the_untouched_batch_verifies_and_header_names_are_matched_case_insensitively() -> None:
    good = signed(BATCH)
    lowered = {name.lower(): value for name, value in good.headers.items()}

    assert verify(good.body, good.headers, SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY)
    events, reply = handle(WebhookRequest("events", good.url, lowered, good.body, {}), SECRETS)
    assert events == [MessageStatusEvent("abc", "delivered", occurred_at=datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))]
    assert reply.status == 200


@pytest.mark.parametrize(
    "secrets", [{}, {"event_webhook_public_key": ""}, {"event_webhook_public_key": "bm90IGEga2V5"}]
)
def test_without_a_usable_public_key_every_event_is_refused(secrets: dict[str, str]) -> None:
    with pytest.raises(WebhookRejectedError) as raised:
        handle(as_request(signed(BATCH)), secrets)

    assert raised.value.status == 401


@pytest.mark.parametrize("body", [b"{}", b'{"event": "delivered"}', b"[1, 2]", b"not json", b'["delivered"]'])
def test_a_signed_body_that_is_not_a_json_array_of_events_is_a_400(body: bytes) -> None:
    with pytest.raises(WebhookRejectedError) as raised:
        handle(as_request(signed(body)), SECRETS)

    assert raised.value.status == 400


def test_an_oversized_body_is_refused_before_any_signature_check() -> None:
    huge = b"[" + b" " * (4 * 1024 * 1024) + b"]"

    with pytest.raises(WebhookRejectedError) as raised:
        handle(WebhookRequest("events", EVENTS_URL, {}, huge, {}), SECRETS)

    assert raised.value.status == 400


def test_a_kind_sendgrid_does_not_send_is_a_400() -> None:
    with pytest.raises(WebhookRejectedError) as raised:
        handle(as_request(signed(BATCH), kind="status"), SECRETS)

    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"event": "processed"}, ("sent", None)),
        ({"event": "deferred", "response": "451 try again later"}, ("deferred", "451 try again later")),
        ({"event": "delivered", "response": "250 OK"}, ("delivered", None)),
        ({"event": "open"}, ("read", None)),
        (
            {"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 no such user"},
            ("failed", "5.1.1: 550 no such user"),
        ),
        (
            {"event": "bounce", "type": "blocked", "reason": "unable to get mx info"},
            ("undelivered", "unable to get mx info"),
        ),
        ({"event": "dropped", "reason": "Bounced Address"}, ("failed", "Bounced Address")),
        ({"event": "click"}, None),
        ({"event": "spamreport"}, None),
        ({"event": "unsubscribe"}, None),
    ],
    ids=["processed", "deferred", "delivered", "open", "bounce", "blocked", "dropped", "click", "spam", "unsubscribe"],
)
def test_events_map_to_the_shared_delivery_statuses(
    event: dict[str, Any], expected: tuple[str, str | None] | None
) -> None:
    mapped = to_status_event(
        {**event, "sg_message_id": "euo2iKxdSayPF4YE4--I7A.recvd-5f54b5d587-pczjm-1-6.0", "timestamp": 1740300320}
    )

    if expected is None:
        assert mapped is None
        return
    assert mapped == MessageStatusEvent(
        "euo2iKxdSayPF4YE4--I7A",
        expected[0],
        error_detail=expected[1],
        occurred_at=datetime(2025, 2, 23, 8, 45, 20, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "event",
    [
        {"event": "delivered"},
        {"event": "delivered", "sg_message_id": ""},
        {"event": "delivered", "sg_message_id": ".filterdrecv-1.0"},
        {"event": 3, "sg_message_id": "abc.filterdrecv-1.0"},
    ],
    ids=["no-id", "empty-id", "id-without-prefix", "name-not-text"],
)
def test_an_event_without_a_message_id_or_a_known_name_is_skipped(event: dict[str, Any]) -> None:
    assert to_status_event(event) is None


# -- the Event Webhook through the server --------------------------------------------------------


@pytest.mark.usefixtures("fresh_sandboxes")
async def test_events_posted_to_the_server_route_update_the_mail_and_a_forged_one_changes_nothing(
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    http: httpx.AsyncClient,
    services: Services,
    sandboxes: ServedSandboxes,
) -> None:
    wiring = SPEC.sandbox_connection(sandboxes.url("sendgrid"))
    agent = await make_agent(
        connections=[Connection(capability="email", provider="sendgrid", settings=wiring.settings)],
        secrets={"email": wiring.secrets},
    )
    connection_id = agent.agent.connections["email"].id
    emulator = sandboxes.sandboxes["sendgrid"].state
    assert isinstance(emulator, SendGridState)
    emulator.event_webhook_url = f"{services.settings.public_url}/webhooks/sendgrid/{connection_id}/events"
    caller = await make_caller("http", agent)

    sent = (await caller.call("send_email", {"to": JANE, "subject": "Hi", "text": "See you."})).unwrap()
    message_id = sent["message"]["message_id"]
    processed, delivered = emulator.take_callbacks()
    answers = [await http.post(urlsplit(c.url).path, content=c.body, headers=c.headers) for c in (processed, delivered)]
    assert [a.status_code for a in answers] == [200, 200]
    assert await services.messages.status("sendgrid", message_id) == ("delivered", None)

    bounce = emulator.emit(message_id, "bounce")
    assert bounce is not None
    forged = await http.post(
        urlsplit(bounce.url).path, content=bounce.body.replace(b"bounce", b"dropped"), headers=bounce.headers
    )

    assert forged.status_code == 401
    assert await services.messages.status("sendgrid", message_id) == ("delivered", None)


# -- the emulator -------------------------------------------------------------------------------


VALID: dict[str, Any] = {
    "personalizations": [{"to": [{"email": JANE}]}],
    "from": {"email": SANDBOX_FROM_EMAIL},
    "subject": "Hi",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


def without(*names: str, **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in VALID.items() if k not in names}, **changes}


@pytest.mark.parametrize(
    ("body", "field", "start"),
    [
        (without("personalizations"), "personalizations", "The personalizations field is required"),
        (without(personalizations=[]), "personalizations", "The personalizations field is required"),
        (without(personalizations=[{"to": []}]), "personalizations.0.to", "The to array is required"),
        (without(personalizations=[{"subject": "x"}]), "personalizations.0.to", "The to array is required"),
        (without(personalizations=[{"to": [{"email": "jane"}]}]), "personalizations.0.to.0.email", "Does not contain"),
        (
            without(personalizations=[{"to": [{"email": JANE}]}] * 1001),
            "personalizations",
            "The personalization block is limited to 1000",
        ),
        (without("from"), "from.email", "The from object must be provided"),
        (without("subject"), "subject", "The subject is required."),
        (without("content"), "content", "Unless a valid template_id is provided, the content parameter is required."),
        (
            without(content=[{"type": "text/plain", "value": ""}]),
            "content.0.value",
            "The content value must be a string",
        ),
    ],
    ids=[
        "no-personalizations",
        "empty-personalizations",
        "empty-to",
        "no-to",
        "bad-address",
        "1001",
        "no-from",
        "no-subject",
        "no-content",
        "empty-content",
    ],
)
def test_the_emulator_refuses_bad_mail_as_sendgrid_does(
    served: ServedSandboxes, state: SendGridState, body: dict[str, Any], field: str, start: str
) -> None:
    with api(served) as client:
        refused = client.post(SEND, json=body)

    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(start)
    assert error["help"].startswith("http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#")
    assert mails(state) == []


def test_a_template_needs_neither_subject_nor_content_and_every_problem_is_listed_at_once(
    served: ServedSandboxes,
) -> None:
    with api(served) as client:
        templated = client.post(SEND, json=without("subject", "content", template_id="d-1"))
        broken = client.post(SEND, json={"personalizations": [{"to": []}]})

    assert templated.status_code == 202
    assert [e["field"] for e in broken.json()["errors"]] == [
        "personalizations.0.to",
        "from.email",
        "subject",
        "content",
    ]


def test_an_accepted_mail_is_202_with_an_x_message_id_rate_limit_headers_and_no_body(
    served: ServedSandboxes, state: SendGridState
) -> None:
    with api(served) as client:
        accepted = client.post(SEND, json=VALID)

    assert accepted.status_code == 202
    assert accepted.content == b""
    assert accepted.headers["x-message-id"] == mails(state)[0]["message_id"]
    assert accepted.headers["x-ratelimit-limit"] == "600"
    assert int(accepted.headers["x-ratelimit-reset"]) > time.time()


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "authorization required"),
        ("Bearer SG.not.ours", "The provided authorization grant is invalid, expired, or revoked"),
        (f"Basic {SANDBOX_API_KEY}", "The provided authorization grant is invalid, expired, or revoked"),
    ],
    ids=["missing", "wrong-key", "wrong-scheme"],
)
def test_requests_without_the_sandbox_key_get_sendgrids_401(
    served: ServedSandboxes, authorization: str | None, message: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(base_url=served.url("sendgrid"), headers=headers) as client:
        answers = [client.post(SEND, json=VALID), client.get(SCOPES), client.get(SIGNED_KEY)]

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert {json.dumps(a.json()) for a in answers} == {
        json.dumps({"errors": [{"message": message, "field": None, "help": None}]})
    }


def test_an_unverified_sender_gets_sendgrids_403(served: ServedSandboxes, state: SendGridState) -> None:
    with api(served) as client:
        refused = client.post(SEND, json=without(**{"from": {"email": "someone@elsewhere.example"}}))

    assert refused.status_code == 403
    [error] = refused.json()["errors"]
    assert error["field"] == "from"
    assert error["message"].startswith("The from address does not match a verified Sender Identity.")
    assert mails(state) == []


def test_the_signed_webhook_key_route_hands_out_the_key_the_emulators_signatures_verify_with(
    served: ServedSandboxes,
) -> None:
    with api(served) as client:
        key = client.get(SIGNED_KEY).json()["public_key"]

    assert key == SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY
    callback = signed(BATCH)
    assert verify(callback.body, callback.headers, key)


def test_injected_faults_answer_in_sendgrids_format(served: ServedSandboxes, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=2, times=1))
    sandbox.inject(Fault(kind="server_error", status=500, times=1))
    with api(served) as client:
        before = time.time()
        limited = client.post(SEND, json=VALID)
        after = time.time()
        failed = client.post(SEND, json=VALID)

    assert limited.status_code == 429
    assert limited.json() == {"errors": [{"message": "too many requests", "field": None, "help": None}]}
    assert limited.headers["x-ratelimit-remaining"] == "0"
    # A whole epoch second, Retry-After (2 s) after the emulator answered: measured around the request,
    # so a slow machine cannot make it fail.
    assert int(before + 2) <= int(limited.headers["x-ratelimit-reset"]) <= after + 3
    assert failed.status_code == 500
    assert failed.json()["errors"][0]["message"] == "internal server error"


class Receiver:
    """A stand-in for this server's webhook route: records what the emulator posts."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

        async def receive(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(status_code=200)

        self.app = Starlette(routes=[Route("/events", receive, methods=["POST"])])


def test_the_control_routes_set_the_webhook_and_deliver_only_to_this_machine(
    served: ServedSandboxes, state: SendGridState
) -> None:
    receiver = Receiver()
    with serve_sandboxes({"receiver": receiver.app}) as local, httpx.Client(base_url=served.url("sendgrid")) as control:
        set_url = control.post("/_event_webhook", json={"url": local.url("receiver") + "/events"})
        with api(served) as client:
            client.post(SEND, json=VALID)
        waiting = control.get("/_callbacks").json()
        delivered = control.post("/_callbacks/deliver").json()
        state.event_webhook_url = "http://192.0.2.10/events"
        state.emit(mails(state)[0]["message_id"], "open")
        skipped = control.post("/_callbacks/deliver").json()
        refused = control.post("/_event_webhook", json={"url": "ftp://127.0.0.1/x"})

    assert set_url.json() == {"url": local.url("receiver") + "/events"}
    assert waiting == {"callbacks": 2}
    assert delivered == {"delivered": 2, "skipped": 0}
    assert skipped == {"delivered": 0, "skipped": 1}
    assert refused.status_code == 400
    assert [json.loads(body)[0]["event"] for _, body in receiver.received] == ["processed", "delivered"]
    assert all(verify(body, headers, SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY) for headers, body in receiver.received)
    assert state.take_callbacks() == []


# -- the official spec --------------------------------------------------------------------------


async def test_every_request_the_connector_makes_is_accepted_by_sendgrids_specs(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    mail_spec, scopes_spec = OpenApi(MAIL_SPEC), OpenApi(SCOPES_SPEC)
    sendgrid, _ = connect(reply_to="owner@example.com")
    await sendgrid.check_connection()
    await sendgrid.send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))
    await sendgrid.send_email(TEMPLATE.model_copy(update={"idempotency_key": "k-2"}))
    sandbox.inject(Fault(kind="rate_limit", retry_after=0, times=1))
    await sendgrid.send_email(TEXT)

    recorded = sandbox.provider_requests()
    problems = [
        problem
        for request in recorded
        for problem in (scopes_spec if request.path == SCOPES else mail_spec).check_request(request)
    ]

    assert [(r.method, r.path) for r in recorded] == [("GET", SCOPES)] + [("POST", SEND)] * 4
    assert problems == []


def schema_of(spec: OpenApi, method: str, path: str, status: str) -> dict[str, Any]:
    found = spec.operation(method, path)
    assert found is not None
    response = spec.resolve(found[1]["responses"][status])
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


def test_the_emulators_answers_are_valid_against_sendgrids_schemas(served: ServedSandboxes) -> None:
    mail_spec, scopes_spec = OpenApi(MAIL_SPEC), OpenApi(SCOPES_SPEC)
    with api(served) as client:
        scopes = client.get(SCOPES).json()
        refusals = [client.post(SEND, json=without("subject")).json(), client.post(SEND, json={}).json()]
    with api(served, "SG.wrong") as client:
        refusals.append(client.post(SEND, json=VALID).json())

    assert list(OAS30Validator(schema_of(scopes_spec, "GET", SCOPES, "200")).iter_errors(scopes)) == []
    # The spec types `help` as an object; SendGrid answers null or a link (see tests/specs/sendgrid/SOURCES.md).
    for body in refusals:
        for error in body["errors"]:
            link = error.pop("help")
            assert link is None or link.startswith("http://sendgrid.com/docs/")
        assert mail_spec.validate("ErrorResponse", body) == []


# -- state across a restart ---------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("sendgrid", SPEC.sandbox, tmp_path / "sendgrid.json") as running:
        yield running


def sendgrid_at(base_url: str) -> SendGridEmail:
    """A connector in a new process: its ledger of sends is empty."""
    connection = SPEC.sandbox_connection(base_url)
    connector = SPEC.build(
        SPEC.settings_model.model_validate(connection.settings), MemoryVault(connection.secrets), env()
    )
    assert isinstance(connector, SendGridEmail)
    return connector


async def test_after_a_restart_mails_senders_the_webhook_and_pending_events_are_all_still_there(
    restart: Restart,
) -> None:
    before = restart.before.state
    assert isinstance(before, SendGridState)
    before.event_webhook_url = EVENTS_URL
    before.verify_sender("owner@example.com")
    message = await sendgrid_at(restart.url_before).send_email(TEXT.model_copy(update={"idempotency_key": "k-1"}))

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = restart.after.state
    assert isinstance(after, SendGridState)

    assert dump_after == dump_before
    assert [m["message_id"] for m in dump_after["mails"]] == [message.id]
    [processed, delivered] = after.take_callbacks()
    assert verify(delivered.body, delivered.headers, SANDBOX_EVENT_WEBHOOK_PUBLIC_KEY)
    assert handle(as_request(processed), SECRETS)[0][0] == MessageStatusEvent(
        message.id, "sent", occurred_at=datetime.fromtimestamp(json.loads(processed.body)[0]["timestamp"], UTC)
    )
    resumed = await sendgrid_at(restart.url_after).send_email(TEXT.model_copy(update={"from_name": None}))
    assert [m["message_id"] for m in mails(after)] == [message.id, resumed.id]


def test_a_snapshot_restores_the_same_account_through_json_and_shares_nothing_with_it(state: SendGridState) -> None:
    state.event_webhook_url = EVENTS_URL
    message_id = state.accept(VALID)
    snapshot = state.snapshot()
    restored = SendGridState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["mails"][0]["subject"] = "changed"
    snapshot["pending"].clear()

    assert restored.dump() == state.dump()
    assert [c.body for c in restored.take_callbacks()] == [c.body for c in state.take_callbacks()]
    assert restored.emit(message_id, "open") is not None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"mails": [{"message_id": "x"}]}, KeyError),
        ({"verified_senders": SANDBOX_FROM_EMAIL}, ValueError),
        ({"scopes": None}, ValueError),
        ({"pending": [{"url": EVENTS_URL, "headers": {}, "body": 3}]}, ValueError),
    ],
    ids=[
        "a later version",
        "a mail without its fields",
        "senders as text",
        "no scopes",
        "a callback body that is no text",
    ],
)
def test_a_snapshot_this_account_did_not_write_is_refused_and_leaves_the_account_as_it_was(
    state: SendGridState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.accept(VALID)
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
