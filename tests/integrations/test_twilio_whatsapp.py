"""WhatsApp through the Twilio connector, against its emulator on a real 127.0.0.1 socket.

The 24-hour customer-service window, templates by ContentSid, 63016 as a later failure reported
by a signed StatusCallback, opt-outs shared with SMS, the no-double-send ledger, the webhook
handler's events, the emulator's control routes and Content API, and every request checked
against Twilio's Messages spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import uvicorn
from openapi_schema_validator import OAS30Validator
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.capabilities.errors import ConfigurationError, RecipientOptedOutError, UpstreamError
from integrations.capabilities.messaging import WhatsAppSender
from integrations.capabilities.models import WhatsAppTemplate
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import (
    ConnectorEnv,
    InboundMessageEvent,
    MessageStatusEvent,
    OptOutEvent,
    WebhookRejectedError,
    WebhookRequest,
)
from integrations.common.vault import MemoryVault
from integrations.twilio import SPEC, TwilioMessaging
from integrations.twilio.errors import MaybeSentError
from integrations.twilio.sandbox import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FROM_NUMBER,
    SANDBOX_TEMPLATE_SIDS,
    SANDBOX_WHATSAPP_NUMBER,
    Callback,
    TwilioState,
)
from integrations.twilio.webhooks import validate_signature
from tests.conftest import AgentFactory
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi
from tool_server.agents import Connection
from tool_server.services import Services

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
CALLER = "+12125550142"
WA_CALLER = f"whatsapp:{CALLER}"
WA_SENDER = f"whatsapp:{SANDBOX_WHATSAPP_NUMBER}"
MESSAGES = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
MESSAGES_SPEC = "twilio/twilio_api_v2010.messages.json"
CONTENT_SPEC = "twilio/twilio_content_v1.json"
MESSAGE_SCHEMA = "api.v2010.account.message"
STATUS_URL = "http://127.0.0.1:9/webhooks/twilio/con_test/status"
BOOKED = WhatsAppTemplate(name="booking_confirmation", variables={"1": "Ann", "2": "Mon 10 AM"})
BOOKED_VARIABLES = '{"1":"Ann","2":"Mon 10 AM"}'
FOLLOW_UP = {"To": WA_CALLER, "From": WA_SENDER, "ContentSid": SANDBOX_TEMPLATE_SIDS["follow_up"]}


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


ConnectorFactory = Callable[..., TwilioMessaging]


def build(base_url: str, *, public_url: str = "http://127.0.0.1:9", **settings: Any) -> TwilioMessaging:
    """A connector (a new process: an empty ledger) for the sandbox account; keywords override settings."""
    connection = SPEC.sandbox_connection(base_url)
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url=public_url)
    values = {**connection.settings, **settings}
    connector = SPEC.build(SPEC.settings_model.model_validate(values), MemoryVault(connection.secrets), env)
    assert isinstance(connector, TwilioMessaging)
    return connector


@pytest.fixture
def connect(served: ServedSandboxes) -> ConnectorFactory:
    def make(**settings: Any) -> TwilioMessaging:
        return build(served.url("twilio"), **settings)

    return make


@pytest.fixture
def twilio(connect: ConnectorFactory) -> TwilioMessaging:
    return connect()


def posts(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == "POST" and r.path == MESSAGES]


def outbound(state: TwilioState) -> list[dict[str, Any]]:
    return [m for m in state.dump()["messages"] if m["direction"] == "outbound-api"]


def api(served: ServedSandboxes) -> httpx.Client:
    return httpx.Client(base_url=served.url("twilio"), auth=(SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN))


def handled(callback: Callback, kind: str, token: str = SANDBOX_AUTH_TOKEN) -> list[object]:
    """The events the connection's webhook handler makes of a callback the emulator queued."""
    request = WebhookRequest(
        kind=kind,
        url=callback.url,
        headers={name.lower(): value for name, value in callback.headers.items()},
        body=callback.body,
        form=dict(parse_qsl(callback.body.decode())),
    )
    assert SPEC.webhook is not None
    events, _reply = SPEC.webhook(request, {"auth_token": token})
    return list(events)


async def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the emulator never got there"
        await asyncio.sleep(0.02)


# -- settings and the protocol ------------------------------------------------------------------


def test_whatsapp_settings_take_an_e164_sender_and_template_names_mapped_to_content_sids() -> None:
    settings = SPEC.settings_model.model_validate(
        {
            "account_sid": SANDBOX_ACCOUNT_SID,
            "from_number": SANDBOX_FROM_NUMBER,
            "whatsapp_from": SANDBOX_WHATSAPP_NUMBER,
            "whatsapp_templates": {"follow_up": "HX" + "a" * 32},
        }
    ).model_dump()

    assert settings["whatsapp_from"] == SANDBOX_WHATSAPP_NUMBER
    assert settings["whatsapp_templates"] == {"follow_up": "HX" + "a" * 32}


def test_whatsapp_is_off_unless_configured() -> None:
    settings = SPEC.settings_model.model_validate(
        {"account_sid": SANDBOX_ACCOUNT_SID, "from_number": SANDBOX_FROM_NUMBER}
    ).model_dump()

    assert (settings["whatsapp_from"], settings["whatsapp_templates"]) == (None, {})


@pytest.mark.parametrize(
    ("field", "value", "location"),
    [
        ("whatsapp_from", "14155238886", ("whatsapp_from",)),
        ("whatsapp_from", "whatsapp:+14155238886", ("whatsapp_from",)),
        ("whatsapp_templates", {"follow_up": "HX123"}, ("whatsapp_templates", "follow_up")),
        ("whatsapp_templates", {"follow_up": "MG" + "a" * 32}, ("whatsapp_templates", "follow_up")),
        ("whatsapp_templates", {"": "HX" + "a" * 32}, ("whatsapp_templates", "", "[key]")),
        ("whatsapp_templates", {"x" * 65: "HX" + "a" * 32}, ("whatsapp_templates", "x" * 65, "[key]")),
    ],
    ids=["no-plus", "prefixed", "short-sid", "not-content", "empty-name", "long-name"],
)
def test_whatsapp_settings_refuse_a_malformed_sender_or_template(
    field: str, value: object, location: tuple[str, ...]
) -> None:
    values = {"account_sid": SANDBOX_ACCOUNT_SID, "from_number": SANDBOX_FROM_NUMBER, field: value}

    with pytest.raises(ValidationError) as raised:
        SPEC.settings_model.model_validate(values)

    assert raised.value.errors()[0]["loc"][: len(location)] == location


def test_a_whatsapp_only_connection_still_needs_an_sms_sender() -> None:
    with pytest.raises(ValidationError, match="exactly one of from_number or messaging_service_sid"):
        SPEC.settings_model.model_validate({"account_sid": SANDBOX_ACCOUNT_SID, "whatsapp_from": CALLER})


def test_the_sandbox_connection_names_the_whatsapp_sender_and_the_seeded_templates() -> None:
    settings = SPEC.sandbox_connection("http://127.0.0.1:1/sandbox/twilio").settings

    assert settings["whatsapp_from"] == SANDBOX_WHATSAPP_NUMBER
    assert settings["whatsapp_templates"] == SANDBOX_TEMPLATE_SIDS
    assert sorted(SANDBOX_TEMPLATE_SIDS) == ["booking_confirmation", "follow_up"]
    assert SPEC.settings_model.model_validate(settings).model_dump()["whatsapp_templates"] == SANDBOX_TEMPLATE_SIDS


def test_the_connector_is_a_whatsapp_sender_listing_its_template_names(connect: ConnectorFactory) -> None:
    twilio = connect()

    assert isinstance(twilio, WhatsAppSender)
    assert twilio.whatsapp_templates() == ["booking_confirmation", "follow_up"]
    assert connect(whatsapp_from=None).whatsapp_templates() == []


# -- free text and the 24-hour window -----------------------------------------------------------


async def test_free_text_inside_the_window_goes_from_the_whatsapp_sender_and_is_delivered_then_read(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    state.receive_inbound(WA_CALLER, "Hi, what's your address?")

    message = await twilio.send_whatsapp(CALLER, body="12 High St. See you at 3 PM.", idempotency_key="k-1")

    assert (message.channel, message.to, message.body, message.status) == (
        "whatsapp",
        CALLER,
        "12 High St. See you at 3 PM.",
        "queued",
    )
    assert (message.raw["to"], message.raw["from"]) == (WA_CALLER, WA_SENDER)
    [request] = posts(sandbox)
    assert request.body == {
        "To": WA_CALLER,
        "From": WA_SENDER,
        "Body": "12 High St. See you at 3 PM.",
        "StatusCallback": STATUS_URL,
    }
    assert state.take_callbacks() == []  # accepted inside the window: nothing failed
    state.advance(message.id, "delivered")
    state.advance(message.id, "read")
    events = [event for callback in state.take_callbacks() for event in handled(callback, "status")]
    assert events == [
        MessageStatusEvent(message.id, "delivered", None),
        MessageStatusEvent(message.id, "read", None),
    ]
    assert state.get(message.id)["status"] == "read"  # type: ignore[index]


async def test_free_text_outside_the_window_is_accepted_then_fails_with_63016_through_a_signed_callback(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    message = await twilio.send_whatsapp(CALLER, body="Your booking is confirmed.")

    assert message.status == "queued"
    stored = state.get(message.id)
    assert stored is not None
    assert (stored["status"], stored["error_code"]) == ("failed", 63016)
    [callback] = state.take_callbacks()
    assert callback.url == STATUS_URL
    assert validate_signature(callback.url, callback.params, callback.headers["X-Twilio-Signature"], SANDBOX_AUTH_TOKEN)
    assert (callback.params["To"], callback.params["From"]) == (WA_CALLER, WA_SENDER)
    assert (callback.params["MessageStatus"], callback.params["ErrorCode"]) == ("failed", "63016")
    assert handled(callback, "status") == [MessageStatusEvent(message.id, "failed", 63016)]
    assert state.take_callbacks() == []


@pytest.mark.parametrize(
    ("age", "fails"),
    [(timedelta(hours=23, minutes=59), False), (timedelta(hours=24, seconds=1), True)],
    ids=["23h59m-old", "24h-and-a-second-old"],
)
async def test_the_window_lasts_24_hours_from_the_callers_latest_whatsapp_message(
    twilio: TwilioMessaging, state: TwilioState, age: timedelta, fails: bool
) -> None:
    state.receive_inbound(WA_CALLER, "Hi", at=datetime.now(UTC) - age)

    message = await twilio.send_whatsapp(CALLER, body="Hello again")

    assert (state.get(message.id) or {})["status"] == ("failed" if fails else "queued")


async def test_a_text_message_does_not_open_the_whatsapp_window(twilio: TwilioMessaging, state: TwilioState) -> None:
    state.receive_inbound(CALLER, "Hi by SMS")

    message = await twilio.send_whatsapp(CALLER, body="Hello on WhatsApp")

    assert (state.get(message.id) or {})["error_code"] == 63016
    assert state.dump()["whatsapp_windows"] == {}


async def test_the_synchronous_63016_is_an_opt_in_fault_and_a_refusal_with_a_safe_detail(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    state.sync_window_errors = True

    with pytest.raises(UpstreamError) as raised:
        await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1")

    assert (raised.value.status, raised.value.retryable) == (400, False)
    assert "63016" in str(raised.value)
    assert "template" in str(raised.value)
    assert outbound(state) == []
    assert len(posts(sandbox)) == 1


# -- templates ----------------------------------------------------------------------------------


async def test_a_template_goes_outside_the_window_as_content_sid_and_variables_without_a_body(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    message = await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1")

    [request] = posts(sandbox)
    assert request.body == {
        "To": WA_CALLER,
        "From": WA_SENDER,
        "ContentSid": SANDBOX_TEMPLATE_SIDS["booking_confirmation"],
        "ContentVariables": BOOKED_VARIABLES,
        "StatusCallback": STATUS_URL,
    }
    assert (message.channel, message.to, message.status) == ("whatsapp", CALLER, "queued")
    assert message.body == f"template booking_confirmation {BOOKED_VARIABLES}"
    stored = state.get(message.id)
    assert stored is not None
    assert (stored["status"], stored["error_code"]) == ("queued", None)
    assert stored["body"] == "Ann: you're booked for Mon 10 AM."
    assert state.take_callbacks() == []


async def test_a_template_without_variables_sends_none_and_twilio_fills_in_the_defaults(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    message = await twilio.send_whatsapp(CALLER, template=WhatsAppTemplate(name="follow_up"))

    [request] = posts(sandbox)
    assert request.body["ContentSid"] == SANDBOX_TEMPLATE_SIDS["follow_up"]
    assert "ContentVariables" not in request.body
    assert "Body" not in request.body
    assert message.body == "template follow_up {}"
    assert (state.get(message.id) or {})["body"].startswith("Hi there, thanks")


async def test_an_unknown_template_name_is_a_configuration_error_and_nothing_is_sent(
    twilio: TwilioMessaging, sandbox: Sandbox
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        await twilio.send_whatsapp(CALLER, template=WhatsAppTemplate(name="birthday_wishes"))

    assert raised.value.setting == "whatsapp_templates"
    assert "birthday_wishes" in str(raised.value)
    assert sandbox.provider_requests() == []


async def test_a_connection_without_a_whatsapp_sender_is_a_configuration_error_naming_whatsapp_from(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    twilio = connect(whatsapp_from=None)

    for send in (twilio.send_whatsapp(CALLER, body="Hi"), twilio.send_whatsapp(CALLER, template=BOOKED)):
        with pytest.raises(ConfigurationError) as raised:
            await send
        assert raised.value.setting == "whatsapp_from"
    assert sandbox.provider_requests() == []


@pytest.mark.parametrize("arguments", [{}, {"body": "Hi", "template": BOOKED}], ids=["neither", "both"])
async def test_a_send_needs_exactly_one_of_body_or_template(
    twilio: TwilioMessaging, sandbox: Sandbox, arguments: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="exactly one of body or template"):
        await twilio.send_whatsapp(CALLER, **arguments)

    assert sandbox.provider_requests() == []


async def test_a_content_sid_twilio_does_not_know_is_a_configuration_error_naming_whatsapp_templates(
    connect: ConnectorFactory, state: TwilioState
) -> None:
    twilio = connect(whatsapp_templates={"booking_confirmation": "HX" + "0" * 32})

    with pytest.raises(ConfigurationError) as raised:
        await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1")

    assert raised.value.setting == "whatsapp_templates"
    assert "21655" in str(raised.value)
    assert outbound(state) == []


async def test_a_whatsapp_sender_twilio_does_not_have_is_a_configuration_error_naming_whatsapp_from(
    connect: ConnectorFactory, state: TwilioState
) -> None:
    twilio = connect(whatsapp_from="+12125550100")

    with pytest.raises(ConfigurationError) as raised:
        await twilio.send_whatsapp(CALLER, template=BOOKED)

    assert raised.value.setting == "whatsapp_from"
    assert "63007" in str(raised.value)
    assert outbound(state) == []


# -- one send per key ---------------------------------------------------------------------------


async def test_the_same_key_sends_one_whatsapp_message_for_text_and_for_a_template(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    state.receive_inbound(WA_CALLER, "Hi")
    text = await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-text")
    text_again = await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-text")
    booked = await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-template")
    booked_again = await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-template")

    assert (text_again, booked_again) == (text, booked)
    assert len(posts(sandbox)) == 2
    assert [m["sid"] for m in outbound(state)] == [text.id, booked.id]


async def test_two_concurrent_whatsapp_sends_with_one_key_make_one_request(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=0.3, path="/Messages.json", times=1))

    first, second = await asyncio.gather(
        twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1"),
        twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1"),
    )

    assert first.id == second.id
    assert len(posts(sandbox)) == 1
    assert len(outbound(state)) == 1


async def test_a_key_is_the_same_send_only_on_the_same_channel_with_the_same_template_and_variables(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    state.receive_inbound(WA_CALLER, "Hi")
    sms = await twilio.send_sms(CALLER, "Hello", idempotency_key="k-1")
    whatsapp = await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1")
    booked = await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-2")
    rebooked = await twilio.send_whatsapp(
        CALLER, template=BOOKED.model_copy(update={"variables": {"1": "Ann", "2": "Tue 9 AM"}}), idempotency_key="k-2"
    )
    followed = await twilio.send_whatsapp(CALLER, template=WhatsAppTemplate(name="follow_up"), idempotency_key="k-2")

    assert len({sms.id, whatsapp.id, booked.id, rebooked.id, followed.id}) == 5
    assert [(m["to"], m["body"]) for m in outbound(state)] == [
        (CALLER, "Hello"),
        (WA_CALLER, "Hello"),
        (WA_CALLER, "Ann: you're booked for Mon 10 AM."),
        (WA_CALLER, "Ann: you're booked for Tue 9 AM."),
        (WA_CALLER, "Hi there, thanks for getting in touch. Reply here if there is anything else we can do."),
    ]


async def test_a_whatsapp_send_that_timed_out_but_was_created_is_found_under_its_whatsapp_address(
    twilio: TwilioMessaging, sandbox: Sandbox, state: TwilioState
) -> None:
    state.receive_inbound(WA_CALLER, "Hi")
    sandbox.inject(Fault(kind="slow", seconds=1.5, path="/Messages.json", times=1))
    with deadline_scope(1.0), pytest.raises(MaybeSentError):
        await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1")
    await eventually(lambda: len(outbound(state)) == 1)

    message = await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1")

    lookup = [r for r in sandbox.provider_requests() if r.method == "GET"]
    assert [r.query["To"] for r in lookup] == [[WA_CALLER]]
    assert message.id == outbound(state)[0]["sid"]
    assert (message.channel, message.to, message.body) == ("whatsapp", CALLER, "Hello")
    assert len(posts(sandbox)) == 1


async def test_a_template_sent_by_a_process_that_died_is_found_instead_of_sent_again(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    before = datetime.now(UTC)
    sent = await connect().send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1")

    found = await connect().send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1", earlier_attempt_at=before)

    assert found.id == sent.id
    assert found.body == f"template booking_confirmation {BOOKED_VARIABLES}"
    assert [m["sid"] for m in outbound(state)] == [sent.id]


async def test_a_lookup_takes_neither_the_sms_with_the_same_text_nor_another_templates_message(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    before = datetime.now(UTC)
    state.receive_inbound(WA_CALLER, "Hi")
    other = connect()
    sms = await other.send_sms(CALLER, "Hello", idempotency_key="k-other-1")
    follow_up = await other.send_whatsapp(
        CALLER, template=WhatsAppTemplate(name="follow_up"), idempotency_key="k-other-2"
    )
    fresh = connect()

    text = await fresh.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1", earlier_attempt_at=before)
    booked = await fresh.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-2", earlier_attempt_at=before)

    assert text.id not in (sms.id, follow_up.id)
    assert booked.id not in (sms.id, follow_up.id, text.id)
    assert len(outbound(state)) == 4


# -- opt-outs -----------------------------------------------------------------------------------


async def test_stop_on_whatsapp_opts_the_number_out_of_both_channels_until_start(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    state.receive_inbound(WA_CALLER, "STOP")

    with pytest.raises(RecipientOptedOutError) as whatsapp:
        await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1")
    with pytest.raises(RecipientOptedOutError) as sms:
        await twilio.send_sms(CALLER, "Hello", idempotency_key="k-2")

    assert (whatsapp.value.recipient, sms.value.recipient) == (CALLER, CALLER)
    assert state.dump()["opt_outs"] == [CALLER]
    assert outbound(state) == []

    state.receive_inbound(CALLER, "START")
    again = await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-1")
    assert again.status == "queued"


async def test_stop_by_sms_blocks_whatsapp_with_21610_too(served: ServedSandboxes, state: TwilioState) -> None:
    state.receive_inbound(CALLER, "stop")
    with api(served) as client:
        answer = client.post(
            MESSAGES,
            data={"To": WA_CALLER, "From": WA_SENDER, "ContentSid": SANDBOX_TEMPLATE_SIDS["follow_up"]},
        )

    assert answer.status_code == 400
    assert answer.json()["code"] == 21610


# -- the webhook handler ------------------------------------------------------------------------


def test_an_inbound_whatsapp_message_is_an_inbound_event_for_the_bare_number(state: TwilioState) -> None:
    params = state.receive_inbound(WA_CALLER, "Can I move my booking?", url="http://127.0.0.1:9/inbound")
    [callback] = state.take_callbacks()

    assert (params["From"], params["To"]) == (WA_CALLER, WA_SENDER)
    assert callback.params == params
    assert handled(callback, "inbound") == [InboundMessageEvent(phone=CALLER, channel="whatsapp", received_at=None)]


def test_stop_on_whatsapp_is_an_inbound_event_and_an_opt_out_of_the_bare_number(state: TwilioState) -> None:
    state.receive_inbound(WA_CALLER, "Stop", url="http://127.0.0.1:9/inbound")
    state.receive_inbound(WA_CALLER, "START", url="http://127.0.0.1:9/inbound")
    stop, start = state.take_callbacks()

    assert handled(stop, "inbound") == [
        InboundMessageEvent(phone=CALLER, channel="whatsapp"),
        OptOutEvent(phone=CALLER, opted_out=True),
    ]
    assert handled(start, "inbound") == [
        InboundMessageEvent(phone=CALLER, channel="whatsapp"),
        OptOutEvent(phone=CALLER, opted_out=False),
    ]


def test_a_whatsapp_callback_signed_with_another_token_is_refused(state: TwilioState) -> None:
    state.receive_inbound(WA_CALLER, "Hi", url="http://127.0.0.1:9/inbound")
    [callback] = state.take_callbacks()

    with pytest.raises(WebhookRejectedError) as raised:
        handled(callback, "inbound", token="f" * 32)

    assert raised.value.status == 401


async def test_a_whatsapp_status_callback_carries_the_whatsapp_addresses_and_the_channel(
    twilio: TwilioMessaging, state: TwilioState
) -> None:
    message = await twilio.send_whatsapp(CALLER, template=BOOKED)

    delivery = state.advance(message.id, "read")
    [callback] = state.take_callbacks()

    assert delivery is not None
    assert delivery.params == callback.params
    assert (callback.params["To"], callback.params["From"], callback.params["ChannelPrefix"]) == (
        WA_CALLER,
        WA_SENDER,
        "whatsapp",
    )
    assert "ErrorCode" not in callback.params
    assert handled(callback, "status") == [MessageStatusEvent(message.id, "read", None)]


# -- the emulator -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": WA_CALLER, "From": "whatsapp:+12125550100", "Body": "hi"}, 63007),
        ({"To": WA_CALLER, "From": SANDBOX_FROM_NUMBER, "Body": "hi"}, 21910),
        ({"To": CALLER, "From": WA_SENDER, "Body": "hi"}, 21910),
        ({"To": "whatsapp:2125550142", "From": WA_SENDER, "Body": "hi"}, 21211),
        ({"To": WA_CALLER, "From": WA_SENDER, "ContentSid": "HX" + "0" * 32}, 21655),
        ({**FOLLOW_UP, "ContentVariables": "{"}, 21656),
        ({**FOLLOW_UP, "ContentVariables": '{"1":""}'}, 21656),
        ({**FOLLOW_UP, "ContentVariables": '["Ann"]'}, 21656),
        ({"To": WA_CALLER, "From": WA_SENDER, "Body": "hi", "ContentVariables": '{"1":"Ann"}'}, 21654),
        ({"To": WA_CALLER, "From": WA_SENDER}, 21602),
    ],
    ids=[
        "foreign-sender",
        "sms-sender",
        "whatsapp-sender-to-sms",
        "bad-to",
        "unknown-content",
        "variables-not-json",
        "empty-variable",
        "variables-not-an-object",
        "variables-without-content",
        "no-content",
    ],
)
def test_the_emulator_refuses_bad_whatsapp_messages_with_twilios_codes(
    served: ServedSandboxes, state: TwilioState, form: dict[str, str], code: int
) -> None:
    with api(served) as client:
        answer = client.post(MESSAGES, data=form)

    assert answer.status_code == 400
    assert (answer.json()["code"], answer.json()["more_info"]) == (code, f"https://www.twilio.com/docs/errors/{code}")
    assert state.dump()["messages"] == []


def test_the_control_routes_drive_inbound_messages_and_status_changes_and_queue_signed_callbacks(
    served: ServedSandboxes, state: TwilioState
) -> None:
    base = served.url("twilio")
    with httpx.Client(base_url=base) as control, api(served) as client:
        inbound = control.post("/_inbound", json={"from": WA_CALLER, "body": "Hi", "url": "http://127.0.0.1:9/in"})
        sent = client.post(
            MESSAGES, data={"To": WA_CALLER, "From": WA_SENDER, "Body": "Hello", "StatusCallback": STATUS_URL}
        ).json()
        advanced = control.post("/_advance", json={"sid": sent["sid"], "status": "undelivered", "error_code": 63003})
        pending = control.get("/_callbacks").json()["callbacks"]

    assert inbound.status_code == 200
    assert inbound.json()["params"]["From"] == WA_CALLER
    assert inbound.json()["callback_queued"] is True
    assert advanced.status_code == 200
    assert (advanced.json()["message"]["status"], advanced.json()["message"]["error_code"]) == ("undelivered", 63003)
    assert [callback["url"] for callback in pending] == ["http://127.0.0.1:9/in", STATUS_URL]
    taken = state.take_callbacks()
    assert [callback.as_json() for callback in taken] == pending
    assert handled(taken[1], "status") == [MessageStatusEvent(sent["sid"], "undelivered", 63003)]
    assert state.dump()["whatsapp_windows"].keys() == {CALLER}


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/_advance", {"sid": "SM" + "0" * 32, "status": "sent"}, 404),
        ("/_advance", {"status": "sent"}, 400),
        ("/_advance", {"sid": "SM1", "status": "failed", "error_code": "63016"}, 400),
        ("/_inbound", {"from": WA_CALLER}, 400),
        ("/_inbound", {"from": WA_CALLER, "body": "Hi", "url": 9}, 400),
        ("/_inbound", ["not", "an", "object"], 400),
    ],
    ids=["unknown-sid", "no-sid", "text-code", "no-body", "bad-url", "not-object"],
)
def test_the_control_routes_refuse_what_they_cannot_do(
    served: ServedSandboxes, path: str, payload: object, status: int
) -> None:
    with httpx.Client(base_url=served.url("twilio")) as control:
        answer = control.post(path, json=payload)

    assert answer.status_code == status


class Recorder:
    """A receiver on 127.0.0.1 that keeps every POST it gets (the tool server's webhook, in a demo)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, str]]] = []

    async def record(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.received.append((str(request.url), dict(request.headers), form))
        return Response(status_code=204)


@contextlib.contextmanager
def receiving() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = Starlette(routes=[Route("/{path:path}", recorder.record, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        assert thread.is_alive(), "the receiver stopped"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_delivering_posts_the_signed_callbacks_to_loopback_hosts_only(
    served: ServedSandboxes, state: TwilioState
) -> None:
    with receiving() as (receiver, recorder):
        twilio = build(served.url("twilio"), public_url=receiver)
        message = await twilio.send_whatsapp(CALLER, body="Outside the window")  # fails: a status callback
        state.receive_inbound(WA_CALLER, "Hi", url=f"{receiver}/webhooks/twilio/con_test/inbound")
        state.receive_inbound(WA_CALLER, "Hi", url="https://example.com/hook")  # never sent off this machine
        state.receive_inbound(WA_CALLER, "Hi", url="http://127.0.0.1:9/closed")  # no one listening: kept
        async with httpx.AsyncClient(base_url=served.url("twilio")) as control:
            answer = await control.post("/_callbacks/deliver")

    assert answer.json() == {"delivered": 2, "skipped": 2}
    assert [url for url, _headers, _form in recorder.received] == [
        f"{receiver}/webhooks/twilio/con_test/status",
        f"{receiver}/webhooks/twilio/con_test/inbound",
    ]
    for url, headers, form in recorder.received:
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        assert validate_signature(url, form, headers["x-twilio-signature"], SANDBOX_AUTH_TOKEN)
    assert recorder.received[0][2]["MessageSid"] == message.id
    assert recorder.received[0][2]["ErrorCode"] == "63016"
    assert [callback.url for callback in state.take_callbacks()] == ["http://127.0.0.1:9/closed"]


def test_the_content_api_lists_the_seeded_templates_as_approved(served: ServedSandboxes, sandbox: Sandbox) -> None:
    spec = OpenApi(CONTENT_SPEC)
    booking = SANDBOX_TEMPLATE_SIDS["booking_confirmation"]
    with api(served) as client:
        contents = client.get("/v1/Content").json()
        approvals = client.get("/v1/ContentAndApprovals", params={"PageSize": 1}).json()
        fetched = client.get(f"/v1/Content/{booking}")
        missing = client.get("/v1/Content/HX" + "0" * 32)
    with httpx.Client(base_url=served.url("twilio"), auth=(SANDBOX_ACCOUNT_SID, "0" * 32)) as wrong:
        refused = wrong.get("/v1/Content")

    assert [item["friendly_name"] for item in contents["contents"]] == ["booking_confirmation", "follow_up"]
    assert [item["sid"] for item in contents["contents"]] == [booking, SANDBOX_TEMPLATE_SIDS["follow_up"]]
    assert contents["contents"][0]["types"] == {"twilio/text": {"body": "{{1}}: you're booked for {{2}}."}}
    assert [item["approval_requests"]["status"] for item in approvals["contents"]] == ["approved"]
    assert approvals["meta"]["next_page_url"].endswith("/v1/ContentAndApprovals?PageSize=1&Page=1")
    assert fetched.json() == contents["contents"][0]
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    assert (refused.status_code, refused.json()["code"]) == (401, 20003)
    problems = [p for item in contents["contents"] for p in spec.validate("content.v1.content", item)]
    problems += [p for item in approvals["contents"] for p in spec.validate("content.v1.content_and_approvals", item)]
    problems += [p for request in sandbox.provider_requests() for p in spec.check_request(request)]
    assert problems == []


# -- the official spec --------------------------------------------------------------------------


def field_problems(spec: OpenApi, request: RecordedRequest) -> list[str]:
    """Each form field of a create request checked against its property schema (patterns, formats)."""
    found = spec.operation(request.method, request.path)
    assert found is not None
    content = spec.resolve(found[1]["requestBody"])["content"]
    properties = spec.resolve(content["application/x-www-form-urlencoded"]["schema"])["properties"]
    problems = []
    for name, value in request.body.items():
        schema = spec.resolve(properties[name])
        problems += [f"{name}: {error.message}" for error in OAS30Validator(schema).iter_errors(value)]
    return problems


async def test_every_whatsapp_request_is_accepted_by_twilios_spec(
    connect: ConnectorFactory, sandbox: Sandbox, state: TwilioState
) -> None:
    spec = OpenApi(MESSAGES_SPEC)
    before = datetime.now(UTC)
    twilio = connect()
    state.receive_inbound(WA_CALLER, "Hi")
    await twilio.send_whatsapp(CALLER, body="Hello", idempotency_key="k-1")
    await twilio.send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-2")
    await twilio.send_whatsapp(CALLER, template=WhatsAppTemplate(name="follow_up"))
    await connect().send_whatsapp(CALLER, template=BOOKED, idempotency_key="k-2", earlier_attempt_at=before)
    state.receive_inbound(WA_CALLER, "STOP")
    with pytest.raises(RecipientOptedOutError):
        await twilio.send_whatsapp(CALLER, body="Blocked")

    recorded = sandbox.provider_requests()
    creates = [r for r in recorded if r.method == "POST"]
    problems = [p for r in recorded for p in spec.check_request(r)]
    problems += [p for r in creates for p in field_problems(spec, r)]

    assert {(r.method, r.path) for r in recorded} == {("POST", MESSAGES), ("GET", MESSAGES)}
    assert problems == []
    templates = [r.body for r in creates if "ContentSid" in r.body]
    texts = [r.body for r in creates if "ContentSid" not in r.body]
    assert len(templates) == 2
    assert len(texts) == 2
    assert all("Body" not in body and "MediaUrl" not in body for body in templates)
    assert "ContentVariables" in templates[0]
    assert all(body["Body"] and "ContentVariables" not in body for body in texts)
    assert all(body["To"] == WA_CALLER and body["From"] == WA_SENDER for body in templates + texts)


async def test_the_emulators_whatsapp_messages_are_valid_against_twilios_schema(
    twilio: TwilioMessaging, served: ServedSandboxes, state: TwilioState
) -> None:
    spec = OpenApi(MESSAGES_SPEC)
    failed = await twilio.send_whatsapp(CALLER, body="Outside the window")
    booked = await twilio.send_whatsapp(CALLER, template=BOOKED)
    state.advance(booked.id, "read")
    state.receive_inbound(WA_CALLER, "Thanks!")
    with api(served) as client:
        listed = client.get(MESSAGES, params={"To": WA_CALLER}).json()["messages"]
        fetched = client.get(f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{failed.id}.json").json()

    assert [m["sid"] for m in listed] == [booked.id, failed.id]
    assert (fetched["status"], fetched["error_code"], fetched["error_message"]) == (
        "failed",
        63016,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    )
    bodies = [failed.raw, booked.raw, fetched, *listed, *state.dump()["messages"]]
    assert [problem for body in bodies for problem in spec.validate(MESSAGE_SCHEMA, body)] == []


# -- state across a restart ---------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("twilio", SPEC.sandbox, tmp_path / "twilio.json") as running:
        yield running


async def test_after_a_restart_the_window_still_holds_and_pending_callbacks_wait(restart: Restart) -> None:
    state_before = restart.before.state
    assert isinstance(state_before, TwilioState)
    state_before.receive_inbound(WA_CALLER, "Hi", url="http://127.0.0.1:9/inbound")

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    state_after = restart.after.state
    assert isinstance(state_after, TwilioState)
    message = await build(restart.url_after).send_whatsapp(CALLER, body="Welcome back")

    assert dump_after == dump_before
    assert (state_after.get(message.id) or {})["status"] == "queued"  # inside the window, not failed
    assert [callback.url for callback in state_after.take_callbacks()] == ["http://127.0.0.1:9/inbound"]


def test_a_snapshot_written_before_whatsapp_still_restores(state: TwilioState) -> None:
    state.receive_inbound(WA_CALLER, "Hi", url="http://127.0.0.1:9/inbound")
    snapshot = json.loads(json.dumps(state.snapshot()))
    older = {key: value for key, value in snapshot.items() if key not in ("whatsapp_windows", "callbacks")}
    restored = TwilioState()

    restored.restore(older)

    assert restored.dump()["messages"] == state.dump()["messages"]
    assert restored.dump()["whatsapp_windows"] == {}
    assert restored.take_callbacks() == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"whatsapp_windows": {CALLER: "2026-03-04T15:00:00"}}, ValueError),
        ({"whatsapp_windows": {CALLER: "yesterday"}}, ValueError),
        ({"callbacks": [{"url": "http://127.0.0.1:9/x", "params": {}}]}, ValueError),
    ],
    ids=["a window without a zone", "a window that is no time", "a callback without headers"],
)
def test_a_snapshot_with_malformed_whatsapp_state_is_refused_and_changes_nothing(
    state: TwilioState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.receive_inbound(WA_CALLER, "Hi")
    before = state.dump()

    with pytest.raises(error):
        state.restore({**state.snapshot(), **change})

    assert state.dump() == before


# -- through the server's webhook route ---------------------------------------------------------


async def test_stop_on_whatsapp_through_the_servers_webhook_opts_the_bare_number_out(
    make_agent: AgentFactory,
    services: Services,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
    http: httpx.AsyncClient,
) -> None:
    wiring = SPEC.sandbox_connection(sandboxes.url("twilio"))
    created = await make_agent(
        connections=[Connection(capability="messaging", provider="twilio", settings=wiring.settings)],
        secrets={"messaging": wiring.secrets},
    )
    connection_id = created.agent.connections["messaging"].id
    url = f"{services.settings.public_url}/webhooks/twilio/{connection_id}/inbound"
    state = sandboxes.sandboxes["twilio"].state
    assert isinstance(state, TwilioState)
    state.receive_inbound(WA_CALLER, "STOP", url=url)
    [callback] = state.take_callbacks()

    answer = await http.post(urlsplit(url).path, content=callback.body, headers=callback.headers)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert await services.messages.is_opted_out(created.agent.id, CALLER)
