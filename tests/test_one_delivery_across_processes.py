"""One mail, one channel post, one Zap run per idempotency key, whichever process retries it.

Two `Services` on one database stand for two server processes (or post-call workers): each
builds its own SendGrid, Slack and Zapier connectors, so nothing in one process's memory
protects the other; the send records in the shared database do. None of the three vendors takes
an idempotency key, so without the records a retry in the other process delivers again (the
control test, with bare connectors whose records are in their own memory, shows it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from integrations.capabilities import AutomationProvider, EmailProvider, TeamNotifier
from integrations.capabilities.errors import UpstreamError
from integrations.capabilities.models import EmailRequest, TeamMessage
from integrations.common.sandbox import Fault
from integrations.common.spec import ConnectorEnv, IntegrationSpec
from integrations.common.vault import MemoryVault
from integrations.sendgrid import SPEC as SENDGRID
from integrations.slack import SPEC as SLACK
from integrations.slack.sandbox_state import SlackState
from integrations.zapier import SPEC as ZAPIER
from tests.conftest import NOW
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.clock import fixed_clock
from tool_server.dispatch import CallInfo
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

MAIL = EmailRequest(
    to="jane@example.com", subject="Your booking", text="See you Monday at 10.", idempotency_key="mail-1"
)
NOTE = TeamMessage(text="Jane Doe called about a leak.", title="Front desk", idempotency_key="call-1:notify_team")
EVENT, DATA = "lead.captured", {"name": "Jane Doe", "phone": "+12125550142"}
SLACK_POST = "/api/chat.postMessage"
SLACK_HISTORY = "/api/conversations.history"
CAPABILITIES = {"sendgrid": "email", "slack": "team", "zapier": "automation"}
SPECS = {"sendgrid": SENDGRID, "slack": SLACK, "zapier": ZAPIER}


@pytest.fixture
async def second_server(settings: ServerSettings) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=fixed_clock(NOW))
    yield built
    await built.aclose()


@pytest.fixture
async def agent(services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    """One agent with all three connections, created once; both servers build connectors for it."""
    connections, secrets = [], {}
    for provider, capability in CAPABILITIES.items():
        sandbox = SPECS[provider].sandbox_connection(sandboxes.url(provider))
        connections.append(Connection(capability=capability, provider=provider, settings=sandbox.settings))
        secrets[capability] = sandbox.secrets
    return await services.agents.create(
        "Test Dental", timezone="America/New_York", phone_region="US", connections=connections, secrets=secrets
    )


# -- what each emulator holds ------------------------------------------------------------------------


def _mails(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    mails: list[dict[str, Any]] = sandboxes.sandboxes["sendgrid"].state.dump()["mails"]
    return mails


def _posts(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    state = sandboxes.sandboxes["slack"].state
    assert isinstance(state, SlackState)
    return state.posted()


def _runs(sandboxes: ServedSandboxes) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = sandboxes.sandboxes["zapier"].state.dump()["deliveries"]
    return runs


def _slack_calls(sandboxes: ServedSandboxes) -> list[str]:
    """The Web API methods the connectors called, token grants left out."""
    paths = [request.path for request in sandboxes.sandboxes["slack"].provider_requests()]
    return [path for path in paths if path in (SLACK_POST, SLACK_HISTORY)]


# -- connectors ----------------------------------------------------------------------------------------


def _email(server: Services, agent: CreatedAgent) -> EmailProvider:
    built = server.providers.build(agent.agent, "email")
    assert isinstance(built, EmailProvider)
    return built


def _team(server: Services, agent: CreatedAgent) -> TeamNotifier:
    built = server.providers.build(agent.agent, "team")
    assert isinstance(built, TeamNotifier)
    return built


def _automation(server: Services, agent: CreatedAgent) -> AutomationProvider:
    built = server.providers.build(agent.agent, "automation")
    assert isinstance(built, AutomationProvider)
    return built


def _bare(spec: IntegrationSpec, sandboxes: ServedSandboxes, vault: MemoryVault | None = None) -> Any:
    """A connector built outside the server: its send records are in its own memory (the default)."""
    sandbox = spec.sandbox_connection(sandboxes.url(spec.name))
    env = ConnectorEnv(
        clock=lambda: NOW,
        connection_id="con_bare",
        public_url="http://127.0.0.1:9",
        capability=CAPABILITIES[spec.name],
    )
    settings = spec.settings_model.model_validate(sandbox.settings)
    return spec.build(settings, vault or MemoryVault(sandbox.secrets), env)


# -- the control ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["sendgrid", "slack", "zapier"])
async def test_without_shared_records_a_repeat_in_another_process_would_deliver_twice(
    provider: str, sandboxes: ServedSandboxes
) -> None:
    spec = SPECS[provider]
    # One vault for both, as the server's is: Slack rotates its refresh token on first use.
    vault = MemoryVault(spec.sandbox_connection(sandboxes.url(provider)).secrets)
    deliver: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "sendgrid": lambda connector: connector.send_email(MAIL),
        "slack": lambda connector: connector.post_team_message(NOTE),
        "zapier": lambda connector: connector.trigger_workflow(EVENT, DATA, idempotency_key="run-1"),
    }
    delivered = {"sendgrid": _mails, "slack": _posts, "zapier": _runs}[provider]

    await deliver[provider](_bare(spec, sandboxes, vault))
    await deliver[provider](_bare(spec, sandboxes, vault))

    assert len(delivered(sandboxes)) == 2


# -- SendGrid ----------------------------------------------------------------------------------------------


async def test_a_mail_sendgrid_accepted_in_one_process_is_answered_from_the_records_in_another(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    sent = await _email(services, agent).send_email(MAIL)

    again = await _email(second_server, agent).send_email(MAIL)

    assert again == sent
    assert [mail["message_id"] for mail in _mails(sandboxes)] == [sent.id]


# -- Slack ---------------------------------------------------------------------------------------------------


async def test_a_post_slack_confirmed_in_one_process_is_answered_from_the_records_in_another(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    posted = await _team(services, agent).post_team_message(NOTE)

    again = await _team(second_server, agent).post_team_message(NOTE)

    assert again == posted
    assert [post["ts"] for post in _posts(sandboxes)] == [posted.id]
    assert _slack_calls(sandboxes) == [SLACK_POST]


async def test_a_post_that_landed_before_slack_failed_in_one_process_is_found_not_posted_again_by_another(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    slack = sandboxes.sandboxes["slack"]
    assert isinstance(slack.state, SlackState)
    # Slack's `fatal_error` ("some aspect of the operation may have succeeded"): the post is in the
    # channel. The emulator's HTTP 5xx fault stops a post before it lands, so this is the landed case.
    slack.state.fail_next_post_after_saving("fatal_error")
    # Both lookups the first process tries fail, so it gives up with the post in doubt.
    slack.inject(Fault(kind="server_error", path=SLACK_HISTORY, times=2))
    with pytest.raises(UpstreamError):
        await _team(services, agent).post_team_message(NOTE)
    assert len(_posts(sandboxes)) == 1

    found = await _team(second_server, agent).post_team_message(NOTE)

    assert [post["ts"] for post in _posts(sandboxes)] == [found.id]
    assert _slack_calls(sandboxes).count(SLACK_POST) == 1


async def test_after_a_5xx_in_one_process_another_looks_in_the_channel_before_posting(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    slack = sandboxes.sandboxes["slack"]
    slack.inject(Fault(kind="server_error", status=503, path=SLACK_POST, times=1))
    slack.inject(Fault(kind="server_error", path=SLACK_HISTORY, times=2))
    with pytest.raises(UpstreamError):
        await _team(services, agent).post_team_message(NOTE)
    assert _slack_calls(sandboxes) == [SLACK_POST, SLACK_HISTORY, SLACK_HISTORY]

    posted = await _team(second_server, agent).post_team_message(NOTE)

    # The 503 may have posted as far as the connector knows: the other process looks before posting.
    assert _slack_calls(sandboxes)[3:] == [SLACK_HISTORY, SLACK_POST]
    assert [post["ts"] for post in _posts(sandboxes)] == [posted.id]


async def test_notify_team_retried_through_the_other_server_after_slack_failed_posts_once(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    slack = sandboxes.sandboxes["slack"]
    assert isinstance(slack.state, SlackState)
    slack.state.fail_next_post_after_saving("fatal_error")
    slack.inject(Fault(kind="server_error", path=SLACK_HISTORY, times=2))
    arguments = {"text": "Jane Doe called about a leak."}

    failed = await services.dispatcher.execute(
        agent.agent, "notify_team", arguments, CallInfo(transport="http", idempotency_key="team-1")
    )
    assert not failed.ok
    retried = await second_server.dispatcher.execute(
        agent.agent, "notify_team", arguments, CallInfo(transport="http", idempotency_key="team-1")
    )

    assert retried.ok, retried.error
    [posted] = _posts(sandboxes)
    assert retried.result is not None
    assert retried.result["post"]["post_id"] == posted["ts"]


# -- Zapier --------------------------------------------------------------------------------------------------


async def test_a_delivery_zapier_accepted_in_one_process_is_answered_from_the_records_in_another(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    run = await _automation(services, agent).trigger_workflow(EVENT, DATA, idempotency_key="run-1")

    again = await _automation(second_server, agent).trigger_workflow(EVENT, DATA, idempotency_key="run-1")

    assert again == run
    assert len(_runs(sandboxes)) == 1
