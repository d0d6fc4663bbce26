"""Post-call to every connected CRM: one primary for the live tools, each secondary synced as its own step.

A call record for an agent with HubSpot (primary) and Salesforce (secondary) lands as one contact
and one note in each. A CRM that keeps failing does not hold the other back, and its own step is
retried until it succeeds. Ten records from one new number, synced by two worker processes on
PostgreSQL, make one contact in each CRM.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from integrations.common.sandbox import Fault
from integrations.registry import INTEGRATIONS
from tests.support.postcall import SECRET_KEY, Workers, record_calls, wait_until_settled, worker_env
from tests.support.postgres import create_database
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.postcall.engine import PostCallEngine
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database
from tool_server.store.tables import SyncStepRow

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

PRIMARY, SECONDARY = "hubspot", "salesforce"
CALLER = "+14155550123"


def _crm_counts(provider: str, sandboxes: ServedSandboxes) -> tuple[int, int]:
    """(contacts, notes) the provider's emulator holds."""
    state = sandboxes.sandboxes[provider].state.dump()
    if provider == "hubspot":
        return len(state["contacts"]), len(state["notes"])
    if provider == "salesforce":
        notes = [task for task in state["tasks"] if task.get("TaskSubtype") == "Task"]
        return len(state["contacts"]) + len(state["leads"]), len(notes)
    raise AssertionError(f"no counter for {provider}")


def _connect(
    services: Services, sandboxes: ServedSandboxes, provider: str, role: str
) -> tuple[Connection, dict[str, str]]:
    sandbox = INTEGRATIONS[provider].sandbox_connection(sandboxes.url(provider))
    connection = Connection(capability="crm", provider=provider, settings=sandbox.settings, role=role)  # type: ignore[arg-type]
    return services.providers.validate(connection, sandbox.secrets), dict(sandbox.secrets)


async def _two_crm_agent(services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    primary, primary_secrets = _connect(services, sandboxes, PRIMARY, "primary")
    secondary, secondary_secrets = _connect(services, sandboxes, SECONDARY, "secondary")
    return await services.agents.create(
        "Two CRM Plumbing",
        timezone="America/New_York",
        phone_region="US",
        connections=[primary, secondary],
        secrets={"crm": primary_secrets, f"crm:{SECONDARY}": secondary_secrets},
    )


def _call(call_id: str) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "customer_name": "Jane Doe",
        "customer_phone": "(415) 555-0123",
        "call_outcome": "question answered",
        "call_summary": "Asked whether the water heater can be looked at this week.",
        "started_at": datetime.now(UTC).isoformat(),
        "duration_seconds": 95,
    }


# -- one process, the engine inline -------------------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_retry_max_seconds=0.5,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=40,
    )


async def _record(http: httpx.AsyncClient, created: CreatedAgent, call_id: str) -> None:
    response = await http.post("/v1/calls", json=_call(call_id), headers={"Authorization": f"Bearer {created.api_key}"})
    assert response.status_code == 200, response.text


async def _steps(http: httpx.AsyncClient, created: CreatedAgent, call_id: str) -> tuple[str, dict[str, Any]]:
    response = await http.get(f"/v1/calls/{call_id}", headers={"Authorization": f"Bearer {created.api_key}"})
    body = response.json()
    return body["sync_status"], {step["job"]: step for step in body["sync_steps"]}


async def _until(check: Any, within: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_a_call_lands_as_one_contact_and_one_note_in_each_connected_crm(
    http: httpx.AsyncClient, services: Services, sandboxes: ServedSandboxes
) -> None:
    created = await _two_crm_agent(services, sandboxes)

    await _record(http, created, "call-1")

    async def synced() -> dict[str, Any] | None:
        status, steps = await _steps(http, created, "call-1")
        return steps if status == "synced" else None

    steps = await _until(synced)
    assert set(steps) == {"crm", f"crm:{SECONDARY}"}
    assert all(step["status"] == "done" and step["attempts"] == 1 for step in steps.values()), steps
    assert _crm_counts(PRIMARY, sandboxes) == (1, 1)
    assert _crm_counts(SECONDARY, sandboxes) == (1, 1)


async def test_a_failing_secondary_crm_does_not_hold_back_the_primary_and_succeeds_once_it_recovers(
    http: httpx.AsyncClient, services: Services, sandboxes: ServedSandboxes
) -> None:
    created = await _two_crm_agent(services, sandboxes)
    sandboxes.sandboxes[SECONDARY].inject(Fault(kind="server_error", status=503, times=0))

    await _record(http, created, "call-1")

    async def primary_done_secondary_retrying() -> dict[str, Any] | None:
        _status, steps = await _steps(http, created, "call-1")
        secondary = steps.get(f"crm:{SECONDARY}", {})
        ready = steps.get("crm", {}).get("status") == "done" and secondary.get("attempts", 0) >= 2
        return steps if ready else None

    steps = await _until(primary_done_secondary_retrying)
    assert _crm_counts(PRIMARY, sandboxes) == (1, 1)
    assert steps[f"crm:{SECONDARY}"]["status"] != "done"
    assert steps[f"crm:{SECONDARY}"]["error"]
    assert _crm_counts(SECONDARY, sandboxes) == (0, 0)

    sandboxes.sandboxes[SECONDARY].faults.clear()

    async def synced() -> dict[str, Any] | None:
        status, steps = await _steps(http, created, "call-1")
        return steps if status == "synced" else None

    steps = await _until(synced)
    assert steps[f"crm:{SECONDARY}"]["status"] == "done"
    assert steps["crm"]["attempts"] == 1
    assert _crm_counts(PRIMARY, sandboxes) == (1, 1)
    assert _crm_counts(SECONDARY, sandboxes) == (1, 1)


# -- two worker processes on PostgreSQL ----------------------------------------------------------


@pytest.fixture
def pg_database(postgres_url: str) -> str:
    url = create_database(postgres_url, f"crm_{uuid.uuid4().hex[:12]}")
    upgrade_database(url)
    return url


@pytest.fixture
async def pg_services(pg_database: str) -> AsyncIterator[Services]:
    built = Services.build(ServerSettings(database_url=pg_database, secret_key=SECRET_KEY, postcall="enqueue"))
    yield built
    await built.aclose()


@pytest.fixture
def workers(pg_database: str, tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    running = Workers(worker_env(pg_database), logs)
    yield running
    running.stop()


async def test_ten_calls_from_one_new_number_synced_by_two_workers_on_postgresql_make_one_contact_per_crm(
    pg_services: Services, workers: Workers, sandboxes: ServedSandboxes
) -> None:
    created = await _two_crm_agent(pg_services, sandboxes)
    # Slow creates widen the window two workers would race through without the claims.
    for provider in (PRIMARY, SECONDARY):
        sandboxes.sandboxes[provider].inject(Fault(kind="slow", seconds=0.3, times=0, method="POST"))
    record_ids = await record_calls(pg_services, created.agent.id, [_call(f"call-{n}") for n in range(10)])
    workers.start("worker-1")
    workers.start("worker-2")
    submitter = PostCallEngine(pg_services, listen=False, executor_id="test-submitter")
    await submitter.start()
    try:
        await asyncio.gather(*(submitter.submit(record_id) for record_id in record_ids))
        statuses = await wait_until_settled(pg_services, 10, workers, within=120, agent_id=created.agent.id)
    finally:
        await submitter.stop()

    assert statuses == {"synced": 10}
    contacts_primary, notes_primary = _crm_counts(PRIMARY, sandboxes)
    contacts_secondary, notes_secondary = _crm_counts(SECONDARY, sandboxes)
    assert (contacts_primary, contacts_secondary) == (1, 1)
    assert (notes_primary, notes_secondary) == (10, 10)
    query = select(SyncStepRow.job, func.count()).where(SyncStepRow.status == "done").group_by(SyncStepRow.job)
    done = dict(await pg_services.db.run(lambda session: session.execute(query).all()))
    assert done == {"crm": 10, f"crm:{SECONDARY}": 10}
