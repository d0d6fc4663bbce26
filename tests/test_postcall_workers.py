"""The post-call sync across worker processes, on SQLite (2 workers) and PostgreSQL (4 workers).

The test process records the calls and enqueues their workflows, as the server does; separate
`tool-server worker` processes run them. Effects are counted where they land: in the built-in
providers' tables and in the emulators' state.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from integrations.common.sandbox import Fault
from integrations.registry import INTEGRATIONS
from tests.support.postcall import (
    SECRET_KEY,
    Workers,
    batch_calls,
    record_calls,
    step_counts,
    wait_for_done_steps,
    wait_until_settled,
    worker_env,
)
from tests.support.postgres import create_database
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection
from tool_server.postcall.engine import PostCallEngine
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database
from tool_server.store.tables import AppointmentRow, ContactRow, NoteRow, OutboxMessageRow, SyncStepRow

CALLS = 100


@dataclass
class Backend:
    name: str
    database_url: str
    workers: int


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "tool_server.db"
        shutil.copy(migrated_template, path)
        return Backend("sqlite", f"sqlite:///{path}", workers=2)
    url = create_database(request.getfixturevalue("postgres_url"), f"postcall_{uuid.uuid4().hex[:12]}")
    upgrade_database(url)
    return Backend("postgres", url, workers=4)


@pytest.fixture
async def services(backend: Backend) -> AsyncIterator[Services]:
    settings = ServerSettings(
        database_url=backend.database_url, secret_key=SECRET_KEY, postcall="enqueue", postcall_rate_limits=False
    )
    built = Services.build(settings)
    yield built
    await built.aclose()


@pytest.fixture
async def submitter(services: Services) -> AsyncIterator[PostCallEngine]:
    """This process only enqueues, like a server with TOOL_SERVER_POSTCALL=enqueue."""
    engine = PostCallEngine(services, listen=False, executor_id="test-submitter")
    await engine.start()
    yield engine
    await engine.stop()


@pytest.fixture
def workers(backend: Backend, tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    running = Workers(worker_env(backend.database_url), logs)
    yield running
    running.stop()


BUILTINS = [
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
    Connection(capability="messaging", provider="outbox"),
]


async def builtin_agent(services: Services) -> str:
    created = await services.agents.create(
        "Builtin Dental", timezone="America/New_York", phone_region="US", connections=BUILTINS
    )
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    return created.agent.id


async def emulator_agent(services: Services, sandboxes: ServedSandboxes) -> str:
    """HubSpot for the CRM, Google Calendar, Twilio for the SMS, each on its emulator."""
    connections, secrets = [], {}
    for capability, provider in (("crm", "hubspot"), ("calendar", "google_calendar"), ("messaging", "twilio")):
        sandbox = INTEGRATIONS[provider].sandbox_connection(sandboxes.url(provider))
        connection = Connection(capability=capability, provider=provider, settings=sandbox.settings)
        connections.append(services.providers.validate(connection, sandbox.secrets))
        secrets[capability] = dict(sandbox.secrets)
    created = await services.agents.create(
        "Emulated Dental", timezone="America/New_York", phone_region="US", connections=connections, secrets=secrets
    )
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    return created.agent.id


async def builtin_counts(services: Services, agent_id: str) -> list[int]:
    async def count(table: Any) -> int:
        query = select(func.count()).select_from(table).where(table.agent_id == agent_id)
        return int(await services.db.run(lambda session: session.execute(query).scalar_one()))

    return [await count(table) for table in (ContactRow, NoteRow, AppointmentRow, OutboxMessageRow)]


def emulator_counts(sandboxes: ServedSandboxes) -> dict[str, Any]:
    hubspot = sandboxes.sandboxes["hubspot"].state.dump()
    calendar = sandboxes.sandboxes["google_calendar"].state.dump()
    twilio = sandboxes.sandboxes["twilio"].state.dump()
    events = [event for entry in calendar["calendars"].values() for event in entry["events"]]
    return {
        "contact_phones": sorted(c["properties"].get("phone") for c in hubspot["contacts"]),
        "notes": len(hubspot["notes"]),
        "call_titles": sorted(c["properties"].get("hs_call_title") for c in hubspot["calls"]),
        "event_starts": sorted(e["start"]["dateTime"] for e in events if e.get("status") != "cancelled"),
        "sms_recipients": sorted(m["to"] for m in twilio["messages"]),
    }


def assert_each_once_in_emulators(sandboxes: ServedSandboxes, calls: list[dict[str, Any]]) -> None:
    counts = emulator_counts(sandboxes)
    phones = sorted(call["customer_phone"] for call in calls)
    assert len(counts["contact_phones"]) == len(calls)
    assert counts["notes"] == len(calls)
    # Each call is also logged once as a HubSpot call engagement.
    assert counts["call_titles"] == sorted(f"Call {call['call_id']} (generic)" for call in calls)
    assert len(counts["event_starts"]) == len(set(counts["event_starts"])) == len(calls)
    assert counts["sms_recipients"] == phones


async def assert_all_done_once(services: Services, total: int) -> None:
    steps = await step_counts(services)
    assert steps == {("crm", "done"): total, ("calendar", "done"): total, ("confirmation_sms", "done"): total}


async def submit_all(submitter: PostCallEngine, record_ids: list[str]) -> None:
    for record_id in record_ids:
        await submitter.submit(record_id)


async def test_100_calls_to_the_builtin_providers_leave_every_effect_exactly_once(
    backend: Backend, services: Services, submitter: PostCallEngine, workers: Workers
) -> None:
    agent_id = await builtin_agent(services)
    record_ids = await record_calls(services, agent_id, batch_calls(CALLS))
    for index in range(backend.workers):
        workers.start(f"worker-{index + 1}")
    await submit_all(submitter, record_ids)
    # A replayed webhook (or a sweep) submits again: the workflow id makes it the same workflow.
    await submit_all(submitter, record_ids[:50])

    assert await wait_until_settled(services, CALLS, workers, within=240) == {"synced": CALLS}
    assert await builtin_counts(services, agent_id) == [CALLS, CALLS, CALLS, CALLS]
    await assert_all_done_once(services, CALLS)


async def test_100_calls_to_hubspot_google_calendar_and_twilio_land_exactly_once_in_the_emulators(
    backend: Backend,
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    agent_id = await emulator_agent(services, sandboxes)
    calls = batch_calls(CALLS)
    record_ids = await record_calls(services, agent_id, calls)
    for index in range(backend.workers):
        workers.start(f"worker-{index + 1}")
    await submit_all(submitter, record_ids)

    assert await wait_until_settled(services, CALLS, workers, within=300) == {"synced": CALLS}
    assert_each_once_in_emulators(sandboxes, calls)
    await assert_all_done_once(services, CALLS)


async def test_a_worker_killed_mid_batch_and_restarted_finishes_everything_once(
    backend: Backend, services: Services, submitter: PostCallEngine, workers: Workers
) -> None:
    agent_id = await builtin_agent(services)
    record_ids = await record_calls(services, agent_id, batch_calls(CALLS))
    await run_with_a_crash(backend, services, submitter, workers, record_ids)

    assert await builtin_counts(services, agent_id) == [CALLS, CALLS, CALLS, CALLS]
    await assert_all_done_once(services, CALLS)


async def test_a_worker_killed_mid_batch_sends_nothing_twice_to_hubspot_google_calendar_or_twilio(
    backend: Backend,
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    agent_id = await emulator_agent(services, sandboxes)
    calls = batch_calls(CALLS // 2, prefix="crash")
    record_ids = await record_calls(services, agent_id, calls)
    # Provider calls take 30 ms, as across the internet, so the kill lands while some are in flight.
    for sandbox in sandboxes.sandboxes.values():
        sandbox.faults.append(Fault(kind="slow", times=0, seconds=0.03))
    await run_with_a_crash(backend, services, submitter, workers, record_ids)

    assert_each_once_in_emulators(sandboxes, calls)
    await assert_all_done_once(services, len(calls))


async def run_with_a_crash(
    backend: Backend, services: Services, submitter: PostCallEngine, workers: Workers, record_ids: list[str]
) -> None:
    """Start the workers, SIGKILL worker-1 halfway through the batch, start it again, wait for the end."""
    for index in range(backend.workers):
        workers.start(f"worker-{index + 1}")
    await submit_all(submitter, record_ids)

    done = await wait_for_done_steps(services, at_least=len(record_ids) // 2, within=120)
    workers.kill("worker-1")
    assert done < 3 * len(record_ids), "the batch finished before the worker could be killed"
    await asyncio.sleep(1)
    workers.start("worker-1")  # same executor id: it resumes the workflows it was running

    assert await wait_until_settled(services, len(record_ids), workers, within=300) == {"synced": len(record_ids)}


async def test_an_integration_answering_5xx_retries_to_done_without_delaying_the_others(
    backend: Backend,
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    calls = batch_calls(40, prefix="outage")
    agent_id = await emulator_agent(services, sandboxes)
    record_ids = await record_calls(services, agent_id, calls)
    hubspot = sandboxes.sandboxes["hubspot"]
    hubspot.faults.append(_server_errors())
    for index in range(backend.workers):
        workers.start(f"worker-{index + 1}")
    await submit_all(submitter, record_ids)

    # While HubSpot fails, the calendar and SMS steps of every call still finish.
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        steps = await step_counts(services)
        others = steps.get(("calendar", "done"), 0) + steps.get(("confirmation_sms", "done"), 0)
        if others == 2 * len(calls):
            break
        assert asyncio.get_running_loop().time() < deadline, f"{steps}\n{workers.output()}"
        await asyncio.sleep(0.1)
    assert steps.get(("crm", "done"), 0) == 0
    assert steps.get(("crm", "failed"), 0) == 0
    hubspot.faults.clear()

    assert await wait_until_settled(services, len(calls), workers, within=180) == {"synced": len(calls)}
    assert_each_once_in_emulators(sandboxes, calls)
    crm_attempts = await _attempts(services, "crm")
    other_attempts = await _attempts(services, "calendar") + await _attempts(services, "confirmation_sms")
    # The CRM steps running during the outage were tried again (later ones may have started after it).
    assert max(crm_attempts) >= 2
    assert set(other_attempts) == {1}


def _server_errors() -> Fault:
    return Fault(kind="server_error", times=0, status=503)


async def _attempts(services: Services, job: str) -> list[int]:
    query = select(SyncStepRow.attempts).where(SyncStepRow.job == job)
    return list(await services.db.run(lambda session: list(session.execute(query).scalars())))
