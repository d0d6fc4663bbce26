"""The Twilio connector against its emulator on a real 127.0.0.1 socket, plus the webhook helpers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import ValidationError
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from integrations.capabilities.errors import (
    ConfigurationError,
    ProviderNotConnectedError,
    RateLimitedError,
    RecipientOptedOutError,
    UpstreamError,
)
from integrations.capabilities.messaging import MessagingProvider
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import (
    Checkable,
    ConnectorEnv,
    InboundMessageEvent,
    MessageStatusEvent,
    OptOutEvent,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.twilio import SPEC, TwilioMessaging
from integrations.twilio.errors import MaybeSentError, translate
from integrations.twilio.sandbox import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FROM_NUMBER,
    TwilioApiError,
    TwilioState,
)
from integrations.twilio.transport import rebase
from integrations.twilio.webhooks import StatusPayloadError, opt_change, parse_status, sign, validate_signature
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
CALLER = "+12125550142"
SERVICE_SID = "MG" + "7" * 32
MESSAGES = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
ACCOUNT = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}.json"
SPEC_FILE = "twilio/twilio_api_v2010.messages.json"
MESSAGE_SCHEMA = "api.v2010.account.message"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"twilio": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox, served: ServedSandboxes) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> TwilioState:
    assert isinstance(sandbox.state, TwilioState)
    return sandbox.state


ConnectorFactory = Callable[..., tuple[TwilioMessaging, MemoryVault]]


@pytest.fixture
def connect(served: ServedSandboxes) -> ConnectorFactory:
    """A connector for the sandbox account; keyword arguments override settings, `secrets` the vault."""

    def make(*, secrets: dict[str, str] | None = None, **settings: Any) -> tuple[TwilioMessaging, MemoryVault]:
        connection = SPEC.sandbox_connection(served.url("twilio"))
        values = {**connection.settings, **settings}
        vault = MemoryVault(connection.secrets if secrets is None else secrets)
        env = ConnectorEnv(
            clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
        )
        connector = SPEC.build(SPEC.settings_model.model_validate(values), vault, env)
        assert isinstance(connector, TwilioMessaging)
        return connector, vault

    return make


@pytest.fixture
def twilio(connect: ConnectorFactory) -> TwilioMessaging:
    return connect()[0]


def posts(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == "POST" and r.path == MESSAGES]


def outbound(state: TwilioState) -> list[dict[str, Any]]:
    return [m for m in state.dump()["messages"] if m["direction"] == "outbound-api"]


def basic(user: str = SANDBOX_ACCOUNT_SID, password: str = SANDBOX_AUTH_TOKEN) -> tuple[str, str]:
    return (user, password)


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


# -- the spec entry -----------------------------------------------------------------------------


def test_the_spec_declares_messaging_over_an_auth_token() -> None:
    assert SPEC.name == "twilio"
    assert SPEC.capabilities == frozenset({"messaging"})
    assert SPEC.auth == "api_key"
    assert SPEC.required_secrets == ("auth_token",)
    assert SPEC.docs_url.startswith("https://www.twilio.com/docs/")


def test_the_connector_satisfies_the_messaging_and_checkable_protocols(twilio: TwilioMessaging) -> None:
    assert isinstance(twilio, MessagingProvider)
    assert isinstance(twilio, Checkable)
    assert twilio.name == "twilio"


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "senders",
    [{}, {"from_number": SANDBOX_FROM_NUMBER, "messaging_service_sid": SERVICE_SID}],
    ids=["neither", "both"],
)
def test_settings_need_exactly_one_sender(senders: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of from_number or messaging_service_sid"):
        SPEC.settings_model.model_validate({"account_sid": SANDBOX_ACCOUNT_SID, **senders})


@pytest.mark.parametrize(
    ("field", "value"),
    [("account_sid", "AC123"), ("from_number", "212-555-0142"), ("messaging_service_sid", "MG12"), ("extra", 1)],
)
def test_settings_refuse_malformed_sids_numbers_and_unknown_fields(field: str, value: object) -> None:
    values: dict[str, object] = {"account_sid": SANDBOX_ACCOUNT_SID, "from_number": SANDBOX_FROM_NUMBER}
    values[field] = value
    if field == "messaging_service_sid":
        del values["from_number"]
    with pytest.raises(ValidationError) as raised:
        SPEC.settings_model.model_validate(values)
    assert raised.value.errors()[0]["loc"] == (field,)


def test_settings_default_to_twilios_api_and_strip_a_trailing_slash() -> None:
    default = SPEC.settings_model.model_validate(
        {"account_sid": SANDBOX_ACCOUNT_SID, "messaging_service_sid": SERVICE_SID}
    )
    custom = SPEC.settings_model.model_validate(
        {"account_sid": SANDBOX_ACCOUNT_SID, "from_number": SANDBOX_FROM_NUMBER, "base_url": "http://127.0.0.1:1/x/"}
    )
    assert default.model_dump()["base_url"] == "https://api.twilio.com"
    assert default.model_dump()["status_callback"] is True
    assert custom.model_dump()["base_url"] == "http://127.0.0.1:1/x"


# -- sending ------------------------------------------------------------------------------------


async def test_a_text_from_the_connection_number_is_queued_and_shows_in_the_sandbox_state(
    twilio: TwilioMessaging, served: ServedSandboxes
) -> None:
    message = await twilio.send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")

    assert message.id.startswith("SM")
    assert len(message.id) == 34
    assert (message.to, message.body, message.channel) == (CALLER, "See you Monday at 10 AM.", "sms")
    assert message.status == "queued"
    assert message.provider == "twilio"
    assert message.raw["from"] == SANDBOX_FROM_NUMBER
    assert message.raw["direction"] == "outbound-api"
    assert message.created_at.tzinfo is not None
    assert message.created_at.replace(microsecond=0) == message.created_at
    async with httpx.AsyncClient() as client:
        dumped = (await client.get(served.url("twilio") + "/_state")).json()
    assert [(m["sid"], m["to"], m["body"], m["status"]) for m in dumped["messages"]] == [
        (message.id, CALLER, "See you Monday at 10 AM.", "queued")
    ]


async def test_a_text_through_a_messaging_service_is_accepted_without_a_from_number(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    twilio, _ = connect(from_number=None, messaging_service_sid=SERVICE_SID)

    message = await twilio.send_sms(CALLER, "Your payment link: https://pay.example/x")

    assert message.status == "accepted"
    assert message.raw["messaging_service_sid"] == SERVICE_SID
    assert message.raw["from"] is None
    [request] = posts(sandbox)
    assert request.body["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in request.body
    assert outbound(state)[0]["sid"] == message.id


async def test_the_status_callback_points_at_this_servers_webhook_route(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    message = await twilio.send_sms(CALLER, "Hello")

    expected = "http://127.0.0.1:9/webhooks/twilio/con_test/status"
    assert posts(sandbox)[0].body["StatusCallback"] == expected
    assert state.dump()["status_callbacks"] == {message.id: expected}


async def test_no_status_callback_is_asked_for_when_the_connection_turns_it_off(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    twilio, _ = connect(status_callback=False)

    await twilio.send_sms(CALLER, "Hello")

    assert "StatusCallback" not in posts(sandbox)[0].body
    assert state.dump()["status_callbacks"] == {}


async def test_a_recipient_who_texted_stop_is_reported_as_opted_out_and_nothing_is_sent(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    state.receive_inbound(CALLER, "  stop ")

    with pytest.raises(RecipientOptedOutError) as raised:
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert raised.value.recipient == CALLER
    assert state.dump()["opt_outs"] == [CALLER]
    assert outbound(state) == []


async def test_texting_start_after_stop_lets_messages_through_again(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    state.receive_inbound(CALLER, "STOP")
    with pytest.raises(RecipientOptedOutError):
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    state.receive_inbound(CALLER, "Start")
    message = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert message.status == "queued"
    assert state.dump()["opt_outs"] == []
    assert [m["sid"] for m in outbound(state)] == [message.id]


OPERATIONS: dict[str, Callable[[TwilioMessaging], Awaitable[object]]] = {
    "send": lambda twilio: twilio.send_sms(CALLER, "Hello"),
    "check": lambda twilio: twilio.check_connection(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_a_wrong_auth_token_means_not_connected_and_marks_the_connection_expired(
    connect: ConnectorFactory, state: TwilioState, operation: str
) -> None:
    wrong = "f" * 32
    twilio, vault = connect(secrets={"auth_token": wrong})

    with pytest.raises(ProviderNotConnectedError) as raised:
        await OPERATIONS[operation](twilio)

    assert raised.value.capability == "messaging"
    assert "20003" in str(raised.value)
    assert wrong not in str(raised.value)
    assert vault.expired_reason is not None
    assert "20003" in vault.expired_reason
    assert outbound(state) == []


async def test_a_connection_without_an_auth_token_is_a_configuration_error_naming_it(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    twilio, _ = connect(secrets={})

    with pytest.raises(ConfigurationError) as raised:
        await twilio.send_sms(CALLER, "Hello")

    assert raised.value.setting == "auth_token"
    assert sandbox.provider_requests() == []


async def test_an_invalid_recipient_is_refused_without_retry_and_with_a_safe_detail(
    twilio: TwilioMessaging, sandbox: Sandbox
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await twilio.send_sms("+1555", "Hello")

    assert raised.value.status == 400
    assert raised.value.retryable is False
    assert "21211" in str(raised.value)
    assert "invalid 'To' phone number" in str(raised.value)
    assert len(posts(sandbox)) == 1


async def test_check_connection_names_the_reachable_account(twilio: TwilioMessaging, sandbox: Sandbox) -> None:
    assert await twilio.check_connection() == f"twilio account {SANDBOX_ACCOUNT_SID} reachable"
    assert [(r.method, r.path) for r in sandbox.provider_requests()] == [("GET", ACCOUNT)]


# -- idempotency and faults ---------------------------------------------------------------------


async def test_the_same_key_after_a_confirmed_send_answers_from_memory_without_a_request(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    first = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    again = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    other = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-2")

    assert again == first
    assert other.id != first.id
    assert len(sandbox.provider_requests()) == 2
    assert len(outbound(state)) == 2


async def test_two_concurrent_sends_with_one_key_make_one_request(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    # A slow create: without the key lock the second call would look Twilio up too early and send again.
    sandbox.inject(Fault(kind="slow", seconds=0.3, path="/Messages.json", times=1))

    first, second = await asyncio.gather(
        twilio.send_sms(CALLER, "Hello", idempotency_key="k-1"), twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    )

    assert first.id == second.id
    assert len(posts(sandbox)) == 1
    assert len(outbound(state)) == 1


async def test_a_key_reused_for_a_different_text_sends_that_text(twilio: TwilioMessaging, state: TwilioState) -> None:
    first = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    changed = await twilio.send_sms(CALLER, "Goodbye", idempotency_key="k-1")

    assert changed.id != first.id
    assert [m["body"] for m in outbound(state)] == ["Hello", "Goodbye"]


async def test_a_rate_limit_is_waited_out_and_still_sends_exactly_one_message(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    message = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert time.monotonic() - started >= 0.95  # Retry-After: 1 was honoured
    assert len(posts(sandbox)) == 2
    assert [m["sid"] for m in outbound(state)] == [message.id]


async def test_a_server_error_on_send_is_not_retried_because_the_message_may_exist(
    twilio: TwilioMessaging, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=1))

    with pytest.raises(UpstreamError) as raised:
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert isinstance(raised.value, MaybeSentError)
    assert raised.value.status == 503
    assert raised.value.retryable is False
    assert "may have been sent" in str(raised.value)
    assert len(posts(sandbox)) == 1


async def test_a_persistent_server_error_on_send_fails_once_within_the_deadline(
    twilio: TwilioMessaging, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=500, times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await twilio.send_sms(CALLER, "Hello")

    assert time.monotonic() - started < 3
    assert raised.value.status == 500
    assert len(posts(sandbox)) == 1


async def test_a_persistent_server_error_on_reads_is_retried_then_given_up_within_the_deadline(
    twilio: TwilioMessaging, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await twilio.check_connection()

    assert time.monotonic() - started < 3
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(sandbox.provider_requests()) == 3


async def test_after_a_server_error_the_same_key_checks_twilio_and_then_sends_once(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    sandbox.inject(Fault(kind="server_error", times=1))
    with pytest.raises(MaybeSentError):
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    message = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert [(r.method, r.path) for r in sandbox.provider_requests()] == [
        ("POST", MESSAGES),
        ("GET", MESSAGES),
        ("POST", MESSAGES),
    ]
    assert sandbox.provider_requests()[1].query["To"] == [CALLER]
    assert [m["sid"] for m in outbound(state)] == [message.id]


async def test_a_send_that_timed_out_but_was_created_is_found_instead_of_sent_twice(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=1.5, path="/Messages.json", times=1))
    with deadline_scope(1.0), pytest.raises(MaybeSentError) as raised:
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    assert "timed out" in str(raised.value)
    await eventually(lambda: len(outbound(state)) == 1)

    message = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert message.id == outbound(state)[0]["sid"]
    assert message.raw["body"] == "Hello"
    assert len(posts(sandbox)) == 1
    assert len(outbound(state)) == 1


async def test_a_lookup_never_claims_a_message_another_key_already_sent(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    first = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    sandbox.inject(Fault(kind="server_error", times=1))
    with pytest.raises(MaybeSentError):
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-2")

    second = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-2")

    assert second.id != first.id
    assert {m["sid"] for m in outbound(state)} == {first.id, second.id}


async def test_a_refused_connection_is_retryable_because_nothing_reached_twilio(connect: ConnectorFactory) -> None:
    twilio, _ = connect(base_url=f"http://127.0.0.1:{closed_port()}/sandbox/twilio")

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")

    assert not isinstance(raised.value, MaybeSentError)
    assert raised.value.retryable is True
    assert "could not connect" in str(raised.value)


# -- transport ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?To=%2B1",
            "http://127.0.0.1:5/sandbox/twilio",
            "http://127.0.0.1:5/sandbox/twilio/2010-04-01/Accounts/AC1/Messages.json?To=%2B1",
        ),
        (
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1.json",
            "http://127.0.0.1:5",
            "http://127.0.0.1:5/2010-04-01/Accounts/AC1.json",
        ),
        (
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1.json",
            "https://api.twilio.com",
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1.json",
        ),
    ],
    ids=["sandbox", "regional-to-sandbox", "real-twilio-untouched"],
)
def test_requests_are_rebased_onto_the_configured_base_url(url: str, base: str, expected: str) -> None:
    assert rebase(url, base) == expected


# -- error translation --------------------------------------------------------------------------


def rest_error(status: int, code: int) -> TwilioRestException:
    return TwilioRestException(status, "https://api.twilio.com" + MESSAGES, "Unable to create record: x", code, "POST")


def test_error_21610_is_an_opt_out_for_the_recipient() -> None:
    error = translate(rest_error(400, 21610), write=True, recipient=CALLER)

    assert isinstance(error, RecipientOptedOutError)
    assert error.recipient == CALLER


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (429, 429), (400, 20429)])
def test_twilios_rate_limit_is_rate_limited_with_its_retry_after(status: int, code: int) -> None:
    error = translate(rest_error(status, code), write=True, retry_after=2.0)

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.0
    assert error.retryable is True


@pytest.mark.parametrize(("status", "code"), [(401, 20003), (401, 401), (400, 20003)])
def test_refused_credentials_are_not_connected(status: int, code: int) -> None:
    error = translate(rest_error(status, code), write=False)

    assert isinstance(error, ProviderNotConnectedError)
    assert error.capability == "messaging"


def test_a_server_error_is_retryable_on_reads_but_maybe_sent_on_sends() -> None:
    read = translate(rest_error(500, 20500), write=False)
    send = translate(rest_error(500, 20500), write=True)

    assert type(read) is UpstreamError
    assert read.retryable is True
    assert isinstance(send, MaybeSentError)
    assert send.retryable is False
    assert send.status == 500


def test_a_read_timeout_is_retryable_on_reads_but_maybe_sent_on_sends() -> None:
    assert isinstance(translate(ReadTimeout("read timed out"), write=True), MaybeSentError)
    read = translate(ReadTimeout("read timed out"), write=False)
    assert type(read) is UpstreamError
    assert read.retryable is True


def test_a_connection_that_never_opened_is_retryable_even_for_sends() -> None:
    refused = MaxRetryError(None, "/", NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]

    error = translate(RequestsConnectionError(refused), write=True)

    assert type(error) is UpstreamError
    assert error.retryable is True


def test_a_connection_dropped_after_sending_is_maybe_sent() -> None:
    dropped = RequestsConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))

    assert isinstance(translate(dropped, write=True), MaybeSentError)


def test_other_refusals_keep_the_code_but_not_twilios_text() -> None:
    error = translate(rest_error(400, 21408), write=True)

    assert type(error) is UpstreamError
    assert error.retryable is False
    assert error.status == 400
    assert "21408" in str(error)
    assert "Unable to create record" not in str(error)


# -- webhook helpers ----------------------------------------------------------------------------

DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_signing_reproduces_twilios_documented_example() -> None:
    assert sign(DOC_URL, DOC_PARAMS, "12345") == DOC_SIGNATURE


def test_the_documented_signature_validates() -> None:
    assert validate_signature(DOC_URL, DOC_PARAMS, DOC_SIGNATURE, "12345") is True


@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        (DOC_URL, {**DOC_PARAMS, "Digits": "9999"}, DOC_SIGNATURE, "12345"),
        (DOC_URL.replace("foo=1", "foo=2"), DOC_PARAMS, DOC_SIGNATURE, "12345"),
        (DOC_URL, DOC_PARAMS, DOC_SIGNATURE, "54321"),
        (DOC_URL, DOC_PARAMS, "", "12345"),
    ],
    ids=["tampered-param", "tampered-url", "wrong-token", "no-signature"],
)
def test_a_signature_that_does_not_match_is_refused(
    url: str, params: dict[str, str], signature: str, token: str
) -> None:
    assert validate_signature(url, params, signature, token) is False


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("https://mycompany.com:443/myapp.php?foo=1", "https://mycompany.com/myapp.php?foo=1"),
        ("https://mycompany.com/myapp.php?foo=1", "https://mycompany.com:443/myapp.php?foo=1"),
    ],
    ids=["signed-with-port", "signed-without-port"],
)
def test_a_signature_validates_whether_or_not_the_url_names_the_default_port(
    signed_url: str, received_url: str
) -> None:
    signature = sign(signed_url, DOC_PARAMS, SANDBOX_AUTH_TOKEN)

    assert validate_signature(received_url, DOC_PARAMS, signature, SANDBOX_AUTH_TOKEN) is True


def test_a_status_callback_is_parsed_into_its_fields() -> None:
    update = parse_status(
        {
            "MessageSid": "SM" + "1" * 32,
            "MessageStatus": "undelivered",
            "ErrorCode": "30007",
            "To": CALLER,
            "From": SANDBOX_FROM_NUMBER,
            "AccountSid": SANDBOX_ACCOUNT_SID,
        }
    )

    assert update.message_sid == "SM" + "1" * 32
    assert update.status == "undelivered"
    assert update.error_code == 30007
    assert (update.to, update.from_, update.account_sid) == (CALLER, SANDBOX_FROM_NUMBER, SANDBOX_ACCOUNT_SID)


def test_a_status_callback_with_the_legacy_names_and_no_error_code_parses() -> None:
    update = parse_status({"SmsSid": "SM" + "2" * 32, "SmsStatus": "delivered"})

    assert (update.message_sid, update.status, update.error_code) == ("SM" + "2" * 32, "delivered", None)
    assert update.to is None


def test_a_status_callback_without_a_sid_is_refused() -> None:
    with pytest.raises(StatusPayloadError, match="MessageSid"):
        parse_status({"MessageStatus": "sent"})


@pytest.mark.parametrize("word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "  stop\n"])
def test_the_opt_out_words_opt_out(word: str) -> None:
    assert opt_change(word) == "opt_out"


@pytest.mark.parametrize("word", ["START", "yes", "Unstop", " start "])
def test_the_opt_in_words_opt_back_in(word: str) -> None:
    assert opt_change(word) == "opt_in"


@pytest.mark.parametrize("body", ["please stop", "STOP!", "HELP", "", "yes please", "Stop texting me"])
def test_other_texts_change_nothing(body: str) -> None:
    assert opt_change(body) is None


# -- the emulator -------------------------------------------------------------------------------


def api(served: ServedSandboxes) -> httpx.Client:
    return httpx.Client(base_url=served.url("twilio"), auth=basic())


def test_wrong_credentials_get_twilios_401_body(served: ServedSandboxes) -> None:
    with httpx.Client(base_url=served.url("twilio"), auth=basic(password="0" * 32)) as client:
        answer = client.get(MESSAGES)

    assert answer.status_code == 401
    assert answer.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert answer.headers["www-authenticate"].startswith("Basic")


def test_credentials_only_open_their_own_account(served: ServedSandboxes) -> None:
    with api(served) as client:
        answer = client.get(f"/2010-04-01/Accounts/AC{'0' * 32}/Messages.json")

    assert answer.status_code == 401
    assert answer.json()["code"] == 20003


@pytest.mark.parametrize(
    ("form", "code", "message"),
    [
        ({"From": SANDBOX_FROM_NUMBER, "Body": "hi"}, 21604, "A 'To' phone number is required."),
        (
            {"To": "2125550142", "From": SANDBOX_FROM_NUMBER, "Body": "hi"},
            21211,
            "Invalid 'To' Phone Number: 2125550142",
        ),
        ({"To": CALLER, "Body": "hi"}, 21603, "A 'From' phone number is required."),
        ({"To": CALLER, "From": "+12125550100", "Body": "hi"}, 21606, None),
        ({"To": CALLER, "From": SANDBOX_FROM_NUMBER}, 21602, "Message body is required."),
        ({"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "x" * 1601}, 21617, None),
    ],
    ids=["no-to", "bad-to", "no-sender", "foreign-from", "no-body", "too-long"],
)
def test_the_emulator_refuses_bad_messages_with_twilios_codes(
    served: ServedSandboxes, form: dict[str, str], code: int, message: str | None
) -> None:
    with api(served) as client:
        answer = client.post(MESSAGES, data=form)

    assert answer.status_code == 400
    body = answer.json()
    assert (body["code"], body["status"], body["more_info"]) == (
        code,
        400,
        f"https://www.twilio.com/docs/errors/{code}",
    )
    if message is not None:
        assert body["message"] == message


def test_the_emulator_refuses_an_opted_out_recipient_with_21610(served: ServedSandboxes, state: TwilioState) -> None:
    state.receive_inbound(CALLER, "UNSUBSCRIBE")
    with api(served) as client:
        answer = client.post(MESSAGES, data={"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "hi"})

    assert answer.status_code == 400
    assert answer.json()["code"] == 21610
    assert answer.json()["message"] == "Attempt to send to unsubscribed recipient"


def test_a_created_message_can_be_fetched_and_an_unknown_one_is_20404(served: ServedSandboxes) -> None:
    with api(served) as client:
        created = client.post(MESSAGES, data={"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "hi"}).json()
        fetched = client.get(created["uri"])
        missing = client.get(f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/SM{'0' * 32}.json")

    assert fetched.status_code == 200
    assert fetched.json() == created
    assert missing.status_code == 404
    assert missing.json()["code"] == 20404


def test_listing_pages_newest_first_with_page_tokens(served: ServedSandboxes, state: TwilioState) -> None:
    with api(served) as client:
        sids = [
            client.post(MESSAGES, data={"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": f"n{i}"}).json()["sid"]
            for i in range(5)
        ]
        client.post(MESSAGES, data={"To": "+12125550199", "From": SANDBOX_FROM_NUMBER, "Body": "other"})
        pages = [client.get(MESSAGES, params={"To": CALLER, "PageSize": 2}).json()]
        while pages[-1]["next_page_uri"] is not None:
            pages.append(client.get(pages[-1]["next_page_uri"]).json())
        back = client.get(pages[-1]["previous_page_uri"]).json()

    assert [page["page"] for page in pages] == [0, 1, 2]
    assert [page["page_size"] for page in pages] == [2, 2, 2]
    assert [m["sid"] for page in pages for m in page["messages"]] == list(reversed(sids))
    assert pages[0]["previous_page_uri"] is None
    assert pages[0]["first_page_uri"] == pages[1]["first_page_uri"]
    assert "PageToken=PA" in pages[0]["next_page_uri"]
    assert [m["sid"] for m in back["messages"]] == [m["sid"] for m in pages[1]["messages"]]


def test_injected_faults_answer_in_twilios_format(served: ServedSandboxes, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=2, times=1))
    sandbox.inject(Fault(kind="server_error", status=500, times=1))
    with api(served) as client:
        limited = client.get(MESSAGES)
        failed = client.get(MESSAGES)

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json() == {
        "code": 20429,
        "message": "Too Many Requests",
        "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    }
    assert failed.status_code == 500
    assert failed.json()["code"] == 20500
    assert failed.json()["message"] == "Internal Server Error"


async def test_advancing_a_message_updates_it_and_returns_a_signed_status_callback_for_the_route(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    message = await twilio.send_sms(CALLER, "Hello")

    delivery = state.advance(message.id, "undelivered", error_code=30007)

    assert delivery is not None
    assert delivery.url == "http://127.0.0.1:9/webhooks/twilio/con_test/status"
    signature = sign(delivery.url, delivery.params, SANDBOX_AUTH_TOKEN)
    assert validate_signature(delivery.url, delivery.params, signature, SANDBOX_AUTH_TOKEN)
    update = parse_status(delivery.params)
    assert (update.message_sid, update.status, update.error_code) == (message.id, "undelivered", 30007)
    stored = outbound(state)[0]
    assert (stored["status"], stored["error_code"]) == ("undelivered", 30007)
    assert stored["date_sent"] is not None


def test_an_inbound_stop_returns_the_webhook_twilio_would_send(state: TwilioState) -> None:
    params = state.receive_inbound(CALLER, "STOP")

    assert params["From"] == CALLER
    assert params["To"] == SANDBOX_FROM_NUMBER
    assert params["Body"] == "STOP"
    assert params["OptOutType"] == "STOP"
    assert params["AccountSid"] == SANDBOX_ACCOUNT_SID
    assert state.dump()["messages"][0]["direction"] == "inbound"


# -- the official spec --------------------------------------------------------------------------


async def test_every_request_the_connector_makes_is_accepted_by_twilios_spec(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    spec = OpenApi(SPEC_FILE)
    twilio, _ = connect()
    service, _ = connect(from_number=None, messaging_service_sid=SERVICE_SID)
    await twilio.check_connection()
    await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    await service.send_sms(CALLER, "Via the service")
    sandbox.inject(Fault(kind="server_error", times=1))
    with pytest.raises(MaybeSentError):
        await twilio.send_sms(CALLER, "Again", idempotency_key="k-2")
    await twilio.send_sms(CALLER, "Again", idempotency_key="k-2")  # lists, then sends
    state.receive_inbound(CALLER, "STOP")
    with pytest.raises(RecipientOptedOutError):
        await twilio.send_sms(CALLER, "Blocked")

    recorded = sandbox.provider_requests()
    # The trimmed spec holds only the Messages paths; the account fetch is outside it.
    account_fetches = [r for r in recorded if r.path == ACCOUNT]
    checked = [r for r in recorded if r.path != ACCOUNT]
    problems = [problem for request in checked for problem in spec.check_request(request)]

    assert spec.operation("GET", ACCOUNT) is None
    assert len(account_fetches) == 1
    assert {(r.method, r.path) for r in checked} == {("POST", MESSAGES), ("GET", MESSAGES)}
    assert problems == []


async def test_the_emulators_messages_are_valid_against_twilios_schema(
    twilio: TwilioMessaging, served: ServedSandboxes, state: TwilioState
) -> None:
    spec = OpenApi(SPEC_FILE)
    sent = await twilio.send_sms(CALLER, "Hello 👋")
    state.advance(sent.id, "delivered")
    state.receive_inbound(CALLER, "START")
    with api(served) as client:
        accepted = client.post(MESSAGES, data={"To": CALLER, "MessagingServiceSid": SERVICE_SID, "Body": "hi"}).json()
        listed = client.get(MESSAGES).json()["messages"]

    bodies = [sent.raw, accepted, *listed]
    assert len(listed) == 3
    assert [problem for body in bodies for problem in spec.validate(MESSAGE_SCHEMA, body)] == []


async def test_a_text_sent_by_a_process_that_died_is_found_instead_of_sent_again(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    before = datetime.now(UTC)
    dead, _vault = connect()
    sent = await dead.send_sms(CALLER, "Hello", idempotency_key="k-1")
    # A new process: its connector's memory of the key died with the old one.
    fresh, _vault = connect()

    found = await fresh.send_sms(CALLER, "Hello", idempotency_key="k-1", earlier_attempt_at=before)

    assert found.id == sent.id
    assert [m["sid"] for m in outbound(state)] == [sent.id]


async def test_a_process_that_died_before_sending_leaves_the_text_to_be_sent_once(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    fresh, _vault = connect()

    message = await fresh.send_sms(CALLER, "Hello", idempotency_key="k-1", earlier_attempt_at=datetime.now(UTC))

    assert [(r.method, r.path) for r in sandbox.provider_requests()] == [("GET", MESSAGES), ("POST", MESSAGES)]
    assert [m["sid"] for m in outbound(state)] == [message.id]


# -- state across a restart ---------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("twilio", SPEC.sandbox, tmp_path / "twilio.json") as running:
        yield running


def twilio_at(base_url: str) -> TwilioMessaging:
    """A connector in a new process: its ledger of sends is empty."""
    connection = SPEC.sandbox_connection(base_url)
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    connector = SPEC.build(
        SPEC.settings_model.model_validate(connection.settings), MemoryVault(connection.secrets), env
    )
    assert isinstance(connector, TwilioMessaging)
    return connector


async def test_after_a_restart_a_resumed_send_finds_the_text_already_sent_and_opt_outs_still_hold(
    restart: Restart,
) -> None:
    other = "+12125550199"
    started = datetime.now(UTC)
    message = await twilio_at(restart.url_before).send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1")
    state_before = restart.before.state
    assert isinstance(state_before, TwilioState)
    state_before.receive_inbound(other, "STOP")
    state_before.advance(message.id, "delivered")

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = twilio_at(restart.url_after)

    assert dump_after == dump_before
    again = await after.send_sms(CALLER, "See you Monday at 10 AM.", idempotency_key="k-1", earlier_attempt_at=started)
    assert (again.id, again.status) == (message.id, "delivered")
    assert posts(restart.after) == []
    with pytest.raises(RecipientOptedOutError):
        await after.send_sms(other, "Hello")
    _, dump_at_the_end = await restart.dumps()
    assert dump_at_the_end == dump_before


def test_a_snapshot_restores_the_same_account_through_json_and_shares_nothing_with_it(state: TwilioState) -> None:
    sent = state.create({"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "Hi", "StatusCallback": "https://x/y"})
    state.receive_inbound(CALLER, "STOP")
    snapshot = state.snapshot()
    restored = TwilioState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["messages"][0]["body"] = "changed"
    snapshot["opted_out"].clear()

    assert restored.dump() == state.dump()
    assert state.get(sent["sid"]) == sent
    assert restored.advance(sent["sid"], "sent") is not None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"messages": [{"sid": "SM1", "body": "Hi"}]}, KeyError),
        ({"opted_out": CALLER}, ValueError),
        ({"status_callbacks": {"SM1": None}}, ValueError),
    ],
    ids=["a later version", "a message without its fields", "opt-outs as text", "a callback that is no url"],
)
def test_a_snapshot_this_account_did_not_write_is_refused_and_leaves_the_account_as_it_was(
    state: TwilioState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.create({"To": CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "Hi"})
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before


@pytest.mark.parametrize("to", ["+12125550142x", "+1212555014", "+0212555014", "12125550142", "+1 212 555 0142"])
def test_the_emulator_refuses_a_recipient_that_is_not_a_whole_e164_number(state: TwilioState, to: str) -> None:
    with pytest.raises(TwilioApiError) as raised:
        state.create({"To": to, "From": SANDBOX_FROM_NUMBER, "Body": "Hi"})

    assert raised.value.code == 21211


# -- inbound events and queued callbacks (SMS) ---------------------------------------------------


def sms_webhook(kind: str, url: str, params: dict[str, str], token: str = SANDBOX_AUTH_TOKEN) -> list[object]:
    """The events the connection's webhook handler makes of a form Twilio signed."""
    request = WebhookRequest(
        kind=kind,
        url=url,
        headers={"x-twilio-signature": sign(url, params, token)},
        body=urlencode(params).encode(),
        form=params,
    )
    assert SPEC.webhook is not None
    events, _reply = SPEC.webhook(request, {"auth_token": SANDBOX_AUTH_TOKEN})
    return list(events)


@pytest.mark.parametrize(
    ("body", "opted_out"),
    [("Running late, sorry", None), ("STOP", True), ("start", False)],
    ids=["ordinary", "stop", "start"],
)
def test_an_inbound_text_is_an_sms_inbound_event_and_a_keyword_also_an_opt_change(
    state: TwilioState, body: str, opted_out: bool | None
) -> None:
    url = "http://127.0.0.1:9/webhooks/twilio/con_test/inbound"
    params = state.receive_inbound(CALLER, body)

    events = sms_webhook("inbound", url, params)

    expected: list[object] = [InboundMessageEvent(phone=CALLER, channel="sms", received_at=None)]
    if opted_out is not None:
        expected.append(OptOutEvent(phone=CALLER, opted_out=opted_out))
    assert events == expected


def test_an_inbound_text_signed_with_another_token_is_refused(state: TwilioState) -> None:
    url = "http://127.0.0.1:9/webhooks/twilio/con_test/inbound"

    with pytest.raises(WebhookRejectedError):
        sms_webhook("inbound", url, state.receive_inbound(CALLER, "Hi"), token="f" * 32)


async def test_advancing_a_text_also_queues_its_signed_status_callback_until_taken(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    message = await twilio.send_sms(CALLER, "Hello")

    delivery = state.advance(message.id, "delivered")
    [callback] = state.take_callbacks()

    assert delivery is not None
    assert (callback.url, callback.params) == (delivery.url, delivery.params)
    assert callback.body == urlencode(delivery.params).encode()
    assert validate_signature(callback.url, callback.params, callback.headers["X-Twilio-Signature"], SANDBOX_AUTH_TOKEN)
    assert "ChannelPrefix" not in callback.params
    assert state.take_callbacks() == []
    assert sms_webhook("status", callback.url, callback.params) == [MessageStatusEvent(message.id, "delivered", None)]


def test_an_inbound_text_queues_no_callback_unless_given_a_url(state: TwilioState) -> None:
    state.receive_inbound(CALLER, "Hi")

    assert state.take_callbacks() == []
