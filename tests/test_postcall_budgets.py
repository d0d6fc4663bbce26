"""The post-call workers together hold each connection to a share of its provider's request limit."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from integrations.registry import INTEGRATIONS
from tests.support.postcall import SECRET_KEY, Workers, batch_calls, record_calls, wait_until_settled, worker_env
from tests.support.postgres import create_database
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection
from tool_server.postcall.budgets import queue_limit
from tool_server.postcall.engine import PostCallEngine, system_database_url
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database

# 10 requests per 2 s, half of it for post-call, 5 requests a CRM job: one CRM job per 2 s.
BUDGETS = {"hubspot": (10, 2.0)}
CALLS = 4


def test_a_hubspot_connection_gets_half_its_documented_limit_in_crm_jobs() -> None:
    settings = ServerSettings()

    # 100 requests per 10 s; half for post-call; five requests a CRM job.
    assert queue_limit("postcall.crm.hubspot", settings) == {"limit": 10, "period": 10}


def test_a_provider_serving_two_capabilities_splits_the_share_between_its_queues() -> None:
    settings = ServerSettings()

    # GoHighLevel: 100 per 10 s for CRM and calendar together.
    assert queue_limit("postcall.crm.gohighlevel", settings) == {"limit": 5, "period": 10}
    assert queue_limit("postcall.calendar.gohighlevel", settings) == {"limit": 8, "period": 10}


def test_a_limit_under_one_job_per_window_spaces_the_jobs_out() -> None:
    settings = ServerSettings()

    # Slack: about one post per second per channel; a quarter of a job per second.
    assert queue_limit("postcall.team_summary.slack", settings) == {"limit": 1, "period": 4}


def test_providers_without_a_published_limit_builtins_and_settings_off_have_no_limit() -> None:
    assert queue_limit("postcall.confirmation_sms.twilio", ServerSettings()) is None
    assert queue_limit("postcall.crm.contact_book", ServerSettings()) is None
    assert queue_limit("postcall.hooks", ServerSettings()) is None
    assert queue_limit("postcall.crm.hubspot", ServerSettings(postcall_rate_limits=False)) is None


def test_a_limit_set_in_the_settings_replaces_the_documented_one() -> None:
    settings = ServerSettings(postcall_request_budgets={"hubspot": (190, 10)}, postcall_budget_share=1.0)

    assert queue_limit("postcall.crm.hubspot", settings) == {"limit": 38, "period": 10}


@pytest.fixture
def database_url(postgres_url: str) -> str:
    # PostgreSQL: DBOS stamps job starts with the database clock, which SQLite keeps to the whole
    # second, so there the budget's window holds only to within a second.
    url = create_database(postgres_url, f"budgets_{uuid.uuid4().hex[:12]}")
    upgrade_database(url)
    return url


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    settings = ServerSettings(
        database_url=database_url, secret_key=SECRET_KEY, postcall="enqueue", postcall_request_budgets=BUDGETS
    )
    built = Services.build(settings)
    yield built
    await built.aclose()


@pytest.fixture
async def submitter(services: Services) -> AsyncIterator[PostCallEngine]:
    engine = PostCallEngine(services, listen=False, executor_id="test-submitter")
    await engine.start()
    yield engine
    await engine.stop()


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    env = worker_env(database_url, postcall_request_budgets=json.dumps(BUDGETS), postcall_rate_limits="true")
    running = Workers(env, logs)
    yield running
    running.stop()


async def hubspot_agent(services: Services, sandboxes: ServedSandboxes) -> str:
    sandbox = INTEGRATIONS["hubspot"].sandbox_connection(sandboxes.url("hubspot"))
    connection = services.providers.validate(
        Connection(capability="crm", provider="hubspot", settings=sandbox.settings), sandbox.secrets
    )
    created = await services.agents.create(
        "Budget Dental",
        timezone="America/New_York",
        phone_region="US",
        connections=[connection],
        secrets={"crm": dict(sandbox.secrets)},
    )
    return created.agent.id


def crm_job_starts(services: Services) -> list[int]:
    """When each CRM job's workflow was started, in ms of the database clock, as DBOS recorded it."""
    engine = create_engine(system_database_url(services.settings))
    try:
        with engine.connect() as connection:
            rows: list[Any] = list(
                connection.execute(
                    text(
                        "SELECT started_at_epoch_ms FROM dbos.workflow_status "
                        "WHERE queue_name = 'postcall.crm.hubspot' ORDER BY started_at_epoch_ms"
                    )
                )
            )
    finally:
        engine.dispose()
    return [int(row[0]) for row in rows]


async def test_two_workers_on_postgresql_together_start_one_hubspot_crm_job_per_two_seconds_as_budgeted(
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    agent_id = await hubspot_agent(services, sandboxes)
    record_ids = await record_calls(services, agent_id, batch_calls(CALLS))
    workers.start("worker-1")
    workers.start("worker-2")
    for record_id in record_ids:
        await submitter.submit(record_id)

    assert await wait_until_settled(services, CALLS, workers, within=120) == {"synced": CALLS}
    starts = crm_job_starts(services)
    assert len(starts) == CALLS
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert all(gap >= 2000 for gap in gaps), gaps
    assert len(sandboxes.sandboxes["hubspot"].state.dump()["notes"]) == CALLS
