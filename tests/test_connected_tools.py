"""Tools through real connectors and their emulators: faults, tokens, idempotency, secrets.

Each registered integration is exercised through the tool that uses it, over dispatch, with the
server's own registry, sealed vault and deadline. Providers join these tests when they are
added to `integrations/registry.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integrations.common.sandbox import Fault
from integrations.registry import INTEGRATIONS
from tests.conftest import MONDAY, AgentFactory, CallerFactory
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.agents.sandbox import sandbox_connections
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")


@dataclass(frozen=True)
class Exercise:
    """A tool call that goes through one provider, and how to count what it created in `_state`."""

    tool: str
    arguments: dict[str, Any]
    count: Callable[[dict[str, Any]], int]


def _listed(key: str) -> Callable[[dict[str, Any]], int]:
    return lambda state: len(state[key])


def _events(state: dict[str, Any]) -> int:
    return sum(len(calendar["events"]) for calendar in state["calendars"].values())


def _outlook_events(state: dict[str, Any]) -> int:
    return sum(len(mailbox["events"]) for mailbox in state["mailboxes"].values())


def _accepted_bookings(state: dict[str, Any]) -> int:
    return sum(1 for booking in state["bookings"] if booking["status"] == "accepted")


BOOKING = {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}
INVOICE = {
    "contact_name": "Jane Doe",
    "contact_phone": "+12125550142",
    "lines": [{"description": "Boiler service", "quantity": 1, "unit_amount": 24000}],
}


EXERCISES: dict[str, Exercise] = {
    "google_calendar": Exercise(
        "book_appointment",
        {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"},
        _events,
    ),
    "hubspot": Exercise(
        "create_contact", {"contact_name": "Jane Doe", "contact_phone": "+12125550142"}, _listed("contacts")
    ),
    "stripe": Exercise(
        "create_payment_link",
        {"amount_minor": 4900, "description": "Consultation deposit", "customer_email": "jane@example.com"},
        _listed("checkout_sessions"),
    ),
    "twilio": Exercise("send_sms", {"to": "+12125550142", "body": "See you Monday."}, _listed("messages")),
    "outlook_calendar": Exercise("book_appointment", BOOKING, _outlook_events),
    "calcom": Exercise("book_appointment", BOOKING, _accepted_bookings),
    "calendly": Exercise("book_appointment", BOOKING, _listed("events")),
    "gohighlevel": Exercise(
        "create_contact", {"contact_name": "Jane Doe", "contact_phone": "+12125550142"}, _listed("contacts")
    ),
    "housecall_pro": Exercise(
        "create_contact", {"contact_name": "Jane Doe", "contact_phone": "+12125550142"}, _listed("customers")
    ),
    "salesforce": Exercise(
        "create_contact", {"contact_name": "Jane Doe", "contact_phone": "+12125550142"}, _listed("contacts")
    ),
    "quickbooks": Exercise("create_invoice", INVOICE, _listed("invoices")),
    "xero": Exercise("create_invoice", INVOICE, _listed("invoices")),
    "square": Exercise("create_invoice", INVOICE, _listed("invoices")),
    "sendgrid": Exercise(
        "send_email",
        {"to": "jane@example.com", "subject": "Your booking", "text": "See you Monday at 10."},
        _listed("mails"),
    ),
    "zapier": Exercise(
        "trigger_workflow", {"event": "lead.captured", "data": {"name": "Jane Doe"}}, _listed("deliveries")
    ),
    "slack": Exercise("notify_team", {"text": "Jane Doe called about a leak."}, _listed("messages")),
}
REGISTERED = [name for name in EXERCISES if name in INTEGRATIONS]
OAUTH = [name for name in REGISTERED if INTEGRATIONS[name].auth == "oauth"]


BUILTINS = [
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
    Connection(capability="messaging", provider="outbox"),
]


@pytest.fixture
async def connected(
    request: pytest.FixtureRequest, make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> CreatedAgent:
    """An agent wired to a registered emulator per capability (built-ins for the others): the
    test's `provider` for its capability, the first registered one for the rest."""
    callspec = getattr(request.node, "callspec", None)
    provider = callspec.params.get("provider") if callspec is not None else None
    pairs = sandbox_connections(services.providers, sandboxes.base_url, prefer=[provider] if provider else ())
    sandboxed = {connection.capability for connection, _ in pairs}
    return await make_agent(
        connections=[connection for connection, _ in pairs] + [c for c in BUILTINS if c.capability not in sandboxed],
        secrets={connection.capability: secrets for connection, secrets in pairs},
    )


def created(sandboxes: ServedSandboxes, provider: str) -> int:
    """How many records the provider's exercise has created in its emulator."""
    return EXERCISES[provider].count(sandboxes.sandboxes[provider].state.dump())


@pytest.mark.parametrize("provider", REGISTERED)
@pytest.mark.parametrize("transport", ["direct", "http", "mcp"])
async def test_each_tool_reaches_its_provider_through_the_real_connector(
    provider: str, transport: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    exercise = EXERCISES[provider]
    caller = await make_caller(transport, connected)

    outcome = await caller.call(exercise.tool, exercise.arguments)

    assert outcome.ok, outcome.error
    assert created(sandboxes, provider) == 1


@pytest.mark.parametrize("provider", REGISTERED)
async def test_a_rate_limit_answered_once_with_retry_after_does_not_reach_the_caller(
    provider: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    exercise = EXERCISES[provider]
    caller = await make_caller("direct", connected)
    sandboxes.sandboxes[provider].inject(Fault(kind="rate_limit", retry_after=1, times=1))

    outcome = await caller.call(exercise.tool, exercise.arguments)

    assert outcome.ok, outcome.error
    assert created(sandboxes, provider) == 1


@pytest.mark.parametrize("provider", REGISTERED)
async def test_a_provider_that_keeps_failing_answers_provider_error_within_the_deadline(
    provider: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes, services: Services
) -> None:
    exercise = EXERCISES[provider]
    caller = await make_caller("direct", connected)
    sandboxes.sandboxes[provider].inject(Fault(kind="server_error", status=503, times=0))
    spec = services.catalogue.get(exercise.tool)
    assert spec is not None
    deadline = (
        services.settings.write_deadline_seconds if not spec.read_only else services.settings.read_deadline_seconds
    )
    started = time.monotonic()

    outcome = await caller.call(exercise.tool, exercise.arguments)

    assert outcome.code == "PROVIDER_ERROR"
    assert outcome.error is not None
    assert outcome.error["retryable"] is True
    assert outcome.error["speech"]
    assert time.monotonic() - started < deadline


@pytest.mark.parametrize("provider", OAUTH)
async def test_an_expired_access_token_is_refreshed_without_the_caller_noticing(
    provider: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    exercise = EXERCISES[provider]
    caller = await make_caller("direct", connected)
    assert (await caller.call(exercise.tool, exercise.arguments)).ok
    sandboxes.sandboxes[provider].inject(Fault(kind="expire_access_tokens"))

    follow_up = await caller.call(exercise.tool, {**exercise.arguments}, call_id="another-call")

    assert follow_up.ok, follow_up.error


@pytest.mark.parametrize("provider", OAUTH)
async def test_a_revoked_refresh_token_answers_not_connected_and_marks_the_connection_expired(
    provider: str,
    connected: CreatedAgent,
    make_caller: CallerFactory,
    sandboxes: ServedSandboxes,
    services: Services,
) -> None:
    exercise = EXERCISES[provider]
    caller = await make_caller("direct", connected)
    sandbox = sandboxes.sandboxes[provider]
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    outcome = await caller.call(exercise.tool, exercise.arguments)

    assert outcome.code == "NOT_CONNECTED"
    capability = next(iter(INTEGRATIONS[provider].capabilities))
    reloaded = await services.agents.get(connected.agent.id)
    assert reloaded is not None
    assert reloaded.connections[capability].status == "expired"
    fresh = await make_caller("direct", CreatedAgent(agent=reloaded, api_key=connected.api_key))
    assert (await fresh.call(exercise.tool, exercise.arguments)).code == "NOT_CONNECTED"


async def test_no_credential_appears_in_plaintext_in_the_database_or_the_logs(
    make_agent: AgentFactory,
    make_caller: CallerFactory,
    services: Services,
    sandboxes: ServedSandboxes,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = set()
    for provider in REGISTERED:
        pairs = sandbox_connections(services.providers, sandboxes.base_url, prefer=[provider])
        agent = await make_agent(
            connections=[connection for connection, _ in pairs],
            secrets={connection.capability: secrets for connection, secrets in pairs},
        )
        exercise = EXERCISES[provider]
        caller = await make_caller("http", agent)
        assert (await caller.call(exercise.tool, exercise.arguments)).ok, provider
        for connection in agent.agent.connections.values():
            if connection.id is not None:
                stored = await services.agents.connection_secrets(connection.id)
                secrets.update(value for value in stored.values() if len(value) >= 8)
    await services.audit.flush()

    assert secrets, "the sandbox connections hold secrets to look for"
    database = Path(database_url.removeprefix("sqlite:///"))
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    logged = caplog.text
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in logged
