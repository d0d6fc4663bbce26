"""The Zapier connector against its catch-hook emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from integrations.capabilities.automation import AutomationProvider
from integrations.capabilities.errors import (
    ConfigurationError,
    IntegrationError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.zapier import SPEC, ZapierAutomation
from integrations.zapier.sandbox import SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID, ZapierState, hook_path
from integrations.zapier.settings import parse_hook_url
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
SPEC_FILE = "zapier/catch-hook.derived.json"
HOOK = hook_path()
SILENT = hook_path(silent=True)
LEAD = {"name": "Jane Doe", "phone": "+12125550142", "address": {"city": "Albany", "zip": "12207"}}
REAL_HOOK = "https://hooks.zapier.com/hooks/catch/123456/abc1234/"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"zapier": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox, served: ServedSandboxes) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> ZapierState:
    assert isinstance(sandbox.state, ZapierState)
    return sandbox.state


ConnectorFactory = Callable[..., tuple[ZapierAutomation, MemoryVault]]


def build(
    base_url: str, hook_url: str | None, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[ZapierAutomation, MemoryVault]:
    vault = MemoryVault({} if hook_url is None else {"hook_url": hook_url})
    env = ConnectorEnv(clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9")
    settings = SPEC.settings_model.model_validate({"base_url": base_url})
    if transport is not None:
        assert isinstance(settings, SPEC.settings_model)
        return ZapierAutomation(settings, vault, env, http_transport=transport), vault  # type: ignore[arg-type]
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, ZapierAutomation)
    return connector, vault


@pytest.fixture
def connect(served: ServedSandboxes) -> ConnectorFactory:
    """A connector for the sandbox hook; `hook` is a path below the emulator (or `hook_url` a whole URL)."""

    def make(*, hook: str = HOOK, hook_url: str | None = None) -> tuple[ZapierAutomation, MemoryVault]:
        base = served.url("zapier")
        return build(base, hook_url if hook_url is not None else f"{base}{hook}")

    return make


@pytest.fixture
def zapier(connect: ConnectorFactory) -> ZapierAutomation:
    return connect()[0]


def posts(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == "POST"]


def mock(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next of `answers` (an exception is raised)."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


async def eventually(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Wait for the emulator to finish a request the client stopped waiting for (a slow fault)."""
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the emulator never got there"
        await asyncio.sleep(0.02)


# -- the spec entry and settings ------------------------------------------------------------------


def test_the_spec_declares_automation_with_the_hook_url_as_its_only_secret() -> None:
    assert SPEC.name == "zapier"
    assert SPEC.capabilities == frozenset({"automation"})
    assert SPEC.required_secrets == ("hook_url",)
    assert SPEC.auth == "api_key"
    assert SPEC.webhook is None


def test_the_connector_satisfies_the_automation_and_checkable_protocols(zapier: ZapierAutomation) -> None:
    assert isinstance(zapier, AutomationProvider)
    assert isinstance(zapier, Checkable)
    assert zapier.name == "zapier"


def test_the_sandbox_connection_points_the_base_and_the_hook_at_the_emulator() -> None:
    connection = SPEC.sandbox_connection("http://127.0.0.1:8000/sandbox/zapier/")

    assert connection.settings == {"base_url": "http://127.0.0.1:8000/sandbox/zapier"}
    assert connection.secrets == {
        "hook_url": f"http://127.0.0.1:8000/sandbox/zapier/hooks/catch/{SANDBOX_ACCOUNT_ID}/{SANDBOX_HOOK_ID}/"
    }
    assert parse_hook_url(connection.secrets["hook_url"], connection.settings["base_url"]).silent is False


def test_settings_default_to_zaps_hooks_host_strip_a_slash_and_refuse_unknown_fields() -> None:
    assert SPEC.settings_model.model_validate({}).model_dump() == {"base_url": "https://hooks.zapier.com"}
    assert SPEC.settings_model.model_validate({"base_url": "http://127.0.0.1:1/x/"}).model_dump() == {
        "base_url": "http://127.0.0.1:1/x"
    }
    with pytest.raises(ValidationError):
        SPEC.settings_model.model_validate({"hook_url": REAL_HOOK})
    with pytest.raises(ValidationError):
        SPEC.settings_model.model_validate({"base_url": "hooks.zapier.com"})


@pytest.mark.parametrize(
    ("hook_url", "silent", "posted_to"),
    [
        (REAL_HOOK, False, REAL_HOOK),
        ("https://hooks.zapier.com/hooks/catch/123456/abc1234", False, REAL_HOOK),
        ("https://HOOKS.zapier.com:443/hooks/catch/123456/abc1234/", False, None),
        ("https://hooks.zapier.com/hooks/catch/123456/abc1234/silent/", True, f"{REAL_HOOK}silent/"),
    ],
    ids=["as copied", "without the last slash", "host case and default port", "silent"],
)
def test_catch_hook_urls_on_zapiers_host_are_accepted(hook_url: str, silent: bool, posted_to: str | None) -> None:
    hook = parse_hook_url(hook_url, "https://hooks.zapier.com")

    assert hook.silent is silent
    if posted_to is not None:
        assert hook.url == posted_to


@pytest.mark.parametrize(
    "hook_url",
    [
        "https://hooks.zapier.com.evil.example/hooks/catch/123456/abc1234/",
        "http://hooks.zapier.com/hooks/catch/123456/abc1234/",
        "https://hooks.zapier.com:8443/hooks/catch/123456/abc1234/",
        "https://example.com/hooks/catch/123456/abc1234/",
        "https://hooks.zapier.com/hooks/catch/abc1234/",
        "https://hooks.zapier.com/hooks/catch/acct/abc1234/",
        "https://hooks.zapier.com/hooks/standard/123456/abc1234/",
        "https://hooks.zapier.com/hooks/catch/123456/abc1234/extra/",
        "https://hooks.zapier.com/hooks/catch/123456/abc1234/?to=x",
        "https://hooks.zapier.com/hooks/catch/123456/abc1234/#x",
        "https://user:pw@hooks.zapier.com/hooks/catch/123456/abc1234/",
        "hooks.zapier.com/hooks/catch/123456/abc1234/",
    ],
    ids=[
        "a look-alike host",
        "plain http",
        "another port",
        "another host",
        "a legacy route without the account",
        "an account that is not a number",
        "not a catch hook",
        "a longer path",
        "a query",
        "a fragment",
        "a user",
        "no scheme",
    ],
)
def test_anything_but_a_catch_hook_on_the_base_url_is_a_configuration_error_that_does_not_quote_it(
    hook_url: str,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_hook_url(hook_url, "https://hooks.zapier.com")

    assert raised.value.setting == "hook_url"
    assert "abc1234" not in str(raised.value)


async def test_a_hook_outside_the_base_url_is_refused_and_nothing_is_sent(
    connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    zapier, vault = connect(hook_url=REAL_HOOK)

    with pytest.raises(ConfigurationError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert raised.value.setting == "hook_url"
    assert sandbox.provider_requests() == []
    assert vault.expired_reason is None


async def test_a_connection_without_a_hook_url_is_a_configuration_error_naming_it(served: ServedSandboxes) -> None:
    zapier, _ = build(served.url("zapier"), None)

    with pytest.raises(ConfigurationError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD)

    assert raised.value.setting == "hook_url"


async def test_check_connection_checks_the_url_without_running_the_zap(
    zapier: ZapierAutomation, connect: ConnectorFactory, sandbox: Sandbox
) -> None:
    silent, _ = connect(hook=SILENT)
    broken, _ = connect(hook="/hooks/catch/1/")

    said = await zapier.check_connection()
    said_silently = await silent.check_connection()
    with pytest.raises(ConfigurationError):
        await broken.check_connection()

    assert "not called" in said
    assert "silent" in said_silently
    assert sandbox.provider_requests() == []


# -- delivering ---------------------------------------------------------------------------------


async def test_an_event_is_posted_as_one_json_object_with_the_data_nested_and_the_key_as_a_header(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    run = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    [request] = posts(sandbox)
    [delivery] = state.deliveries()
    assert request.path == HOOK
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "k-1"
    assert request.body == {
        "event": "lead.captured",
        "idempotency_key": "k-1",
        "sent_at": NOW.isoformat(),
        "data": LEAD,
    }
    assert delivery["data"] == request.body
    assert delivery["zap_ran"] is True
    assert (run.id, run.event, run.status, run.provider) == (delivery["id"], "lead.captured", "success", "zapier")
    assert run.raw == {"attempt": run.id, "id": run.id, "request_id": run.id, "status": "success"}


async def test_values_json_cannot_hold_are_sent_as_their_text(zapier: ZapierAutomation, state: ZapierState) -> None:
    await zapier.trigger_workflow("job.booked", {"starts": NOW, "price": 49.5, "tags": ["new", "urgent"]})

    assert state.deliveries()[0]["data"]["data"] == {"starts": str(NOW), "price": 49.5, "tags": ["new", "urgent"]}


async def test_a_silent_hook_answers_with_no_body_and_the_run_takes_the_key_as_its_id(
    connect: ConnectorFactory, state: ZapierState
) -> None:
    zapier, _ = connect(hook=SILENT)

    run = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert (run.id, run.status, run.raw) == ("k-1", "success", {})
    assert [(d["silent"], d["idempotency_key"]) for d in state.deliveries()] == [(True, "k-1")]


@pytest.mark.parametrize(
    ("answer", "run_id"),
    [
        (httpx.Response(200, json={"status": "success", "request_id": "req-9"}), "req-9"),
        (httpx.Response(201, json={"id": "run-1"}), "run-1"),
        (httpx.Response(202, text="queued"), "k-1"),
        (httpx.Response(204), "k-1"),
        (httpx.Response(200, json=["not", "an", "object"]), "k-1"),
    ],
    ids=["200 with a request id", "201 with an id", "202 with text", "204", "200 with a list"],
)
async def test_any_2xx_counts_as_accepted(answer: httpx.Response, run_id: str) -> None:
    transport, seen = mock(answer)
    zapier, _ = build("https://hooks.zapier.com", REAL_HOOK, transport)

    run = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert (run.status, run.id) == ("success", run_id)
    assert len(seen) == 1
    assert str(seen[0].url) == REAL_HOOK


async def test_a_2xx_answer_id_is_preferred_to_its_request_id() -> None:
    transport, _ = mock(httpx.Response(200, json={"id": "a", "request_id": "b", "status": "success"}))
    zapier, _ = build("https://hooks.zapier.com", REAL_HOOK, transport)

    assert (await zapier.trigger_workflow("lead.captured", LEAD)).id == "a"


async def test_without_a_key_each_delivery_carries_a_fresh_one(zapier: ZapierAutomation, state: ZapierState) -> None:
    await zapier.trigger_workflow("lead.captured", LEAD)
    await zapier.trigger_workflow("lead.captured", LEAD)

    keys = [d["idempotency_key"] for d in state.deliveries()]
    assert len(keys) == 2
    assert keys[0]
    assert keys[1]
    assert keys[0] != keys[1]
    assert [d["data"]["idempotency_key"] for d in state.deliveries()] == keys


async def test_a_zap_that_is_turned_off_still_answers_success_as_zapier_does(
    zapier: ZapierAutomation, state: ZapierState
) -> None:
    state.turn(SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID, on=False)

    run = await zapier.trigger_workflow("lead.captured", LEAD)

    assert run.status == "success"
    assert [d["zap_ran"] for d in state.deliveries()] == [False]


async def test_data_too_large_for_a_catch_hook_is_refused_before_sending(
    zapier: ZapierAutomation, sandbox: Sandbox
) -> None:
    with pytest.raises(UpstreamError) as raised:
        await zapier.trigger_workflow("note.added", {"text": "x" * (2 * 1024 * 1024)})

    assert raised.value.retryable is False
    assert sandbox.provider_requests() == []


# -- one delivery per key -------------------------------------------------------------------------


async def test_the_same_key_after_a_delivery_answers_from_memory_without_posting(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    first = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")
    again = await zapier.trigger_workflow("lead.captured", dict(LEAD), idempotency_key="k-1")

    assert again == first
    assert len(posts(sandbox)) == 1
    assert len(state.deliveries()) == 1


async def test_two_concurrent_deliveries_with_one_key_post_once(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    runs = await asyncio.gather(
        *(zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1") for _ in range(3))
    )

    assert len({run.id for run in runs}) == 1
    assert len(posts(sandbox)) == 1
    assert len(state.deliveries()) == 1


async def test_a_key_reused_for_another_event_delivers_that_event(zapier: ZapierAutomation, state: ZapierState) -> None:
    await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")
    await zapier.trigger_workflow("lead.lost", LEAD, idempotency_key="k-1")

    assert [d["data"]["event"] for d in state.deliveries()] == ["lead.captured", "lead.lost"]


# -- Zapier refusing ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [410, 404])
async def test_a_hook_zapier_dropped_answers_not_connected_and_expires_the_connection(
    connect: ConnectorFactory, sandbox: Sandbox, state: ZapierState, status: int
) -> None:
    zapier, vault = connect()
    state.drop(SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID, 410 if status == 410 else 404)

    with pytest.raises(ProviderNotConnectedError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert raised.value.capability == "automation"
    assert str(status) in str(raised.value)
    assert vault.expired_reason == str(raised.value)
    assert len(posts(sandbox)) == 1
    assert state.deliveries() == []


async def test_a_rate_limit_with_retry_after_is_waited_out_and_delivers_once(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=0.5))
    started = time.monotonic()

    run = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert time.monotonic() - started >= 0.5
    assert run.status == "success"
    assert len(posts(sandbox)) == 2
    assert len(state.deliveries()) == 1


async def test_a_rate_limit_that_outlasts_the_deadline_is_raised_with_its_retry_after(
    zapier: ZapierAutomation, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=30))

    with deadline_scope(2), pytest.raises(RateLimitedError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert raised.value.retry_after == 30
    assert len(posts(sandbox)) == 1


async def test_a_server_error_is_retryable_but_never_reposted_automatically(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503))

    with pytest.raises(UpstreamError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert (raised.value.status, raised.value.retryable) == (503, True)
    assert len(posts(sandbox)) == 1
    # A caller's retry under the same key posts again (the first never reached the Zap here).
    await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")
    assert len(posts(sandbox)) == 2
    assert [d["idempotency_key"] for d in state.deliveries()] == ["k-1"]


async def test_a_persistent_server_error_fails_once_within_the_deadline(
    zapier: ZapierAutomation, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=500, times=0))
    started = time.monotonic()

    with deadline_scope(5), pytest.raises(UpstreamError):
        await zapier.trigger_workflow("lead.captured", LEAD)

    assert time.monotonic() - started < 5
    assert len(posts(sandbox)) == 1


async def test_a_timeout_after_the_request_was_sent_is_not_reposted(
    zapier: ZapierAutomation, sandbox: Sandbox, state: ZapierState
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=1.5))

    with deadline_scope(0.7), pytest.raises(UpstreamError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert raised.value.retryable is True
    assert "may have been triggered" in str(raised.value)
    # The emulator finishes the request the connector stopped waiting for: the Zap did run, once.
    await eventually(lambda: len(state.deliveries()) == 1)
    assert len(posts(sandbox)) == 1


async def test_a_connection_that_never_opened_is_retried_because_nothing_reached_zapier() -> None:
    transport, seen = mock(httpx.ConnectError("refused"), httpx.Response(200, json={"id": "run-1"}))
    zapier, _ = build("https://hooks.zapier.com", REAL_HOOK, transport)

    run = await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert run.id == "run-1"
    assert len(seen) == 2


async def test_a_connection_dropped_mid_request_is_not_retried() -> None:
    transport, seen = mock(httpx.RemoteProtocolError("peer closed"), httpx.Response(200))
    zapier, _ = build("https://hooks.zapier.com", REAL_HOOK, transport)

    with pytest.raises(UpstreamError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")

    assert raised.value.retryable is True
    assert len(seen) == 1


@pytest.mark.parametrize("status", [400, 413, 302])
async def test_other_refusals_are_not_retried(status: int) -> None:
    transport, seen = mock(httpx.Response(status), httpx.Response(200))
    zapier, vault = build("https://hooks.zapier.com", REAL_HOOK, transport)

    with pytest.raises(UpstreamError) as raised:
        await zapier.trigger_workflow("lead.captured", LEAD)

    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert len(seen) == 1
    assert vault.expired_reason is None


# -- the hook URL stays secret --------------------------------------------------------------------


async def test_the_hook_url_never_appears_in_an_error_a_log_line_or_a_repr(
    connect: ConnectorFactory,
    served: ServedSandboxes,
    sandbox: Sandbox,
    state: ZapierState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    zapier, vault = connect()
    secret = vault.secrets["hook_url"]
    errors: list[IntegrationError] = []

    await zapier.trigger_workflow("lead.captured", LEAD)
    for fault in (Fault(kind="server_error"), Fault(kind="rate_limit", retry_after=30)):
        sandbox.inject(fault)
        with deadline_scope(1), pytest.raises(IntegrationError) as raised:
            await zapier.trigger_workflow("lead.captured", LEAD)
        errors.append(raised.value)
    sandbox.inject(Fault(kind="slow", seconds=1))
    with deadline_scope(0.5), pytest.raises(IntegrationError) as timed_out:
        await zapier.trigger_workflow("lead.captured", LEAD)
    errors.append(timed_out.value)
    # The slow request still lands; wait for it, so it cannot land in a later test.
    await eventually(lambda: len(state.deliveries()) == 2)
    refused, _ = build("http://127.0.0.1:9/sandbox/zapier", f"http://127.0.0.1:9/sandbox/zapier{HOOK}")
    with deadline_scope(1), pytest.raises(IntegrationError) as unreachable:
        await refused.trigger_workflow("lead.captured", LEAD)
    errors.append(unreachable.value)
    elsewhere, _ = connect(hook_url=secret.replace("/sandbox/zapier/", "/sandbox/other/"))
    with pytest.raises(IntegrationError) as misplaced:
        await elsewhere.trigger_workflow("lead.captured", LEAD)
    errors.append(misplaced.value)
    state.drop(SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID)
    with pytest.raises(IntegrationError) as gone:
        await zapier.trigger_workflow("lead.captured", LEAD)
    errors.append(gone.value)

    assert len(errors) == 6
    for error in errors:
        shown = "".join(traceback.format_exception(error))
        assert SANDBOX_HOOK_ID not in shown, shown
    assert "httpcore" in caplog.text  # the transport's own debug lines were captured, and hold no URL
    assert SANDBOX_HOOK_ID not in caplog.text
    assert vault.expired_reason is not None
    assert SANDBOX_HOOK_ID not in vault.expired_reason
    assert SANDBOX_HOOK_ID not in repr(zapier)
    hook = parse_hook_url(secret, served.url("zapier"))
    assert SANDBOX_HOOK_ID not in repr(hook)
    assert SANDBOX_HOOK_ID not in str(hook)


# -- the emulator ---------------------------------------------------------------------------------


def hooks(served: ServedSandboxes) -> httpx.Client:
    return httpx.Client(base_url=served.url("zapier"))


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_the_emulator_takes_json_nested_as_received_and_query_fields_as_trigger_data(
    served: ServedSandboxes, state: ZapierState, method: str
) -> None:
    with hooks(served) as client:
        answer = client.request(method, HOOK, params={"source": "ad"}, json={"lead": {"name": "Jane"}, "n": 1})

    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == "success"
    assert body["id"] == body["attempt"] == body["request_id"]
    [delivery] = state.deliveries()
    assert (delivery["method"], delivery["data"]) == (method, {"source": "ad", "lead": {"name": "Jane"}, "n": 1})


def test_the_emulator_takes_form_fields_and_get_query_strings_as_trigger_data(
    served: ServedSandboxes, state: ZapierState
) -> None:
    with hooks(served) as client:
        form = client.post(HOOK, data={"name": "Jane", "tag": ["a", "b"]})
        query = client.get(HOOK, params={"name": "Ann"})
        raw = client.post(HOOK, content=b"[1, 2]", headers={"content-type": "application/json"})

    assert (form.status_code, query.status_code, raw.status_code) == (200, 200, 200)
    assert [(d["method"], d["data"], d["raw_body"]) for d in state.deliveries()] == [
        ("POST", {"name": "Jane", "tag": ["a", "b"]}, None),
        ("GET", {"name": "Ann"}, None),
        ("POST", {}, "[1, 2]"),
    ]


def test_each_catch_answers_with_a_fresh_id(served: ServedSandboxes) -> None:
    with hooks(served) as client:
        ids = {client.post(HOOK, json={}).json()["id"] for _ in range(3)}

    assert len(ids) == 3


def test_the_silent_hook_answers_an_empty_200(served: ServedSandboxes, state: ZapierState) -> None:
    with hooks(served) as client:
        answer = client.post(SILENT, json={"a": 1})

    assert (answer.status_code, answer.content) == (200, b"")
    assert [d["silent"] for d in state.deliveries()] == [True]


def test_a_body_over_2_mb_is_refused_with_413_and_not_caught(served: ServedSandboxes, state: ZapierState) -> None:
    with hooks(served) as client:
        answer = client.post(HOOK, content=b"x" * (2 * 1024 * 1024 + 1), headers={"content-type": "text/plain"})

    assert answer.status_code == 413
    assert state.deliveries() == []


def test_a_hook_without_a_zap_still_answers_success_as_zapier_says(served: ServedSandboxes, state: ZapierState) -> None:
    with hooks(served) as client:
        answer = client.post(hook_path("999", "nozap00"), json={"a": 1})

    assert answer.json()["status"] == "success"
    assert [(d["hook_id"], d["zap_ran"]) for d in state.deliveries()] == [("nozap00", False)]


def test_the_control_routes_add_hooks_turn_zaps_off_and_on_and_drop_them(
    served: ServedSandboxes, state: ZapierState
) -> None:
    with hooks(served) as client:
        added = client.post("/_hooks", json={"account_id": "42", "hook_id": "newhook"})
        path = added.json()["path"]
        client.post(path, json={"n": 1})
        off = client.post("/_hooks/42/newhook/off")
        client.post(path, json={"n": 2})
        on = client.post("/_hooks/42/newhook/on")
        client.post(path, json={"n": 3})
        dropped = client.post("/_hooks/42/newhook/drop", json={"status": 404})
        gone = client.post(path, json={"n": 4})
        unknown = client.post("/_hooks/1/none/off")
        bad = client.post("/_hooks/42/newhook/drop", json={"status": 418})

    assert (added.status_code, path) == (201, hook_path("42", "newhook"))
    assert (off.status_code, on.status_code, dropped.status_code) == (204, 204, 204)
    assert [(d["data"]["n"], d["zap_ran"]) for d in state.deliveries()] == [(1, True), (2, False), (3, True)]
    assert gone.status_code == 404
    assert (unknown.status_code, bad.status_code) == (404, 400)


def test_injected_faults_answer_429_with_retry_after_and_5xx(served: ServedSandboxes, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=2))
    sandbox.inject(Fault(kind="server_error", status=502))
    with hooks(served) as client:
        limited = client.post(HOOK, json={})
        failed = client.post(HOOK, json={})

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert failed.status_code == 502


# -- the derived spec -----------------------------------------------------------------------------


async def test_every_request_the_connector_sends_is_accepted_by_the_derived_spec(
    connect: ConnectorFactory, sandbox: Sandbox, served: ServedSandboxes
) -> None:
    spec = OpenApi(SPEC_FILE)
    zapier, _ = connect()
    silent, _ = connect(hook=SILENT)
    await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")
    await silent.trigger_workflow("lead.captured", LEAD, idempotency_key="k-2")
    sandbox.inject(Fault(kind="rate_limit", retry_after=0))
    await zapier.trigger_workflow("call.ended", {"minutes": 3})

    recorded = sandbox.provider_requests()
    problems = [problem for request in recorded for problem in spec.check_request(request)]

    assert len(recorded) == 4
    assert {(r.method, r.path) for r in recorded} == {("POST", HOOK), ("POST", SILENT)}
    assert all(
        isinstance(r.body, dict) and set(r.body) == {"event", "idempotency_key", "sent_at", "data"} for r in recorded
    )
    assert problems == []


def test_the_emulators_answers_are_valid_against_the_derived_spec(served: ServedSandboxes) -> None:
    spec = OpenApi(SPEC_FILE)
    with hooks(served) as client:
        bodies = [
            client.post(HOOK, json={"a": 1}).json(),
            client.put(HOOK, data={"a": "1"}).json(),
            client.get(HOOK, params={"a": "1"}).json(),
        ]

    assert [problem for body in bodies for problem in spec.validate("CatchHookAccepted", body)] == []


# -- state across a restart -----------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("zapier", SPEC.sandbox, tmp_path / "zapier.json") as running:
        yield running


async def test_after_a_restart_the_deliveries_and_a_turned_off_zap_are_still_there(restart: Restart) -> None:
    before = restart.before.state
    assert isinstance(before, ZapierState)
    zapier, _ = build(restart.url_before, f"{restart.url_before}{HOOK}")
    await zapier.trigger_workflow("lead.captured", LEAD, idempotency_key="k-1")
    before.add_hook("42", "newhook")
    before.turn("42", "newhook", on=False)

    restart.restart()
    dump_before, dump_after = await restart.dumps()

    assert dump_after == dump_before
    assert len(dump_after["deliveries"]) == 1
    after = restart.after.state
    assert isinstance(after, ZapierState)
    after.catch(
        "42", "newhook", silent=False, method="POST", content_type=None, data={}, raw_body=None, idempotency_key=None
    )
    assert after.deliveries()[-1]["zap_ran"] is False


def test_a_snapshot_restores_the_same_account_through_json_and_shares_nothing_with_it(state: ZapierState) -> None:
    state.catch(
        SANDBOX_ACCOUNT_ID,
        SANDBOX_HOOK_ID,
        silent=False,
        method="POST",
        content_type="application/json",
        data={"lead": {"name": "Jane"}},
        raw_body=None,
        idempotency_key="k-1",
    )
    state.drop(SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID, 410)
    snapshot = state.snapshot()
    restored = ZapierState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["deliveries"][0]["data"]["lead"]["name"] = "changed"
    snapshot["hooks"].clear()

    assert restored.dump() == state.dump()
    assert state.deliveries()[0]["data"] == {"lead": {"name": "Jane"}}
    assert restored.dump()["hooks"][0]["gone"] == 410


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"hooks": [{"account_id": "1"}]}, ValueError),
        ({"deliveries": "none"}, ValueError),
        ({"hooks": [{"account_id": "1", "hook_id": "h", "zap_on": True, "gone": 500}]}, ValueError),
        ({"extra": 1}, ValueError),
    ],
    ids=["a later version", "a hook without its id", "deliveries as text", "a gone status not 404/410", "extra keys"],
)
def test_a_snapshot_this_account_did_not_write_is_refused_and_leaves_the_account_as_it_was(
    state: ZapierState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.turn(SANDBOX_ACCOUNT_ID, SANDBOX_HOOK_ID, on=False)
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
