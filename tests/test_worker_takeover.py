"""A dead worker's workflows are taken over by a live worker, whatever its `--id`, and run once.

Workers are `tool-server worker` subprocesses with different ids on one database, as in
tests/test_postcall_workers.py; the test process only enqueues. One provider request of a call is
held in its emulator, the worker sending it is SIGKILLed, and the other worker must finish the
call within 5 seconds, each effect landing once in the emulators. The heartbeat and takeover
defaults (1 s, 3 s) are the ones a deployment gets.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS
from sqlalchemy import create_engine, select, update

from integrations.common.sandbox import Fault
from integrations.registry import INTEGRATIONS
from tests.support.postcall import SECRET_KEY, Workers, batch_calls, record_calls, step_counts, worker_env
from tests.support.postgres import create_database
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection
from tool_server.postcall.engine import PostCallEngine
from tool_server.postcall.followups import FollowUps
from tool_server.postcall.liveness import Liveness
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database
from tool_server.store.tables import PostCallExecutorRow

# A death is noticed after 3 s of silence (checked four times a second): the dead worker's job runs
# on the survivor within 5 s of the kill, and on an idle machine the call is synced by then too (the
# rest of the CRM job takes well under a second); the margin is for a loaded test machine.
TAKEOVER_WITHIN = 5.0
FINISHED_WITHIN = 10.0


@dataclass
class Backend:
    name: str
    database_url: str


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, migrated_template: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "tool_server.db"
        shutil.copy(migrated_template, path)
        return Backend("sqlite", f"sqlite:///{path}")
    url = create_database(request.getfixturevalue("postgres_url"), f"takeover_{uuid.uuid4().hex[:12]}")
    upgrade_database(url)
    return Backend("postgres", url)


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


async def emulator_agent(services: Services, sandboxes: ServedSandboxes, *, confirmation_sms: bool) -> str:
    connections, secrets = [], {}
    for capability, provider in (("crm", "hubspot"), ("calendar", "google_calendar"), ("messaging", "twilio")):
        sandbox = INTEGRATIONS[provider].sandbox_connection(sandboxes.url(provider))
        connection = Connection(capability=capability, provider=provider, settings=sandbox.settings)
        connections.append(services.providers.validate(connection, sandbox.secrets))
        secrets[capability] = dict(sandbox.secrets)
    created = await services.agents.create(
        "Takeover Dental", timezone="America/New_York", phone_region="US", connections=connections, secrets=secrets
    )
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=confirmation_sms))
    return created.agent.id


async def executors(services: Services) -> dict[str, tuple[str, str | None]]:
    """executor id → (state, taken_by), from the heartbeat table."""
    query = select(PostCallExecutorRow.executor_id, PostCallExecutorRow.state, PostCallExecutorRow.taken_by)
    rows = await services.db.run(lambda session: session.execute(query).all())
    return {executor_id: (state, taken_by) for executor_id, state, taken_by in rows}


async def until(check: Any, within: float, what: str, workers: Workers) -> Any:
    """Poll the async `check` until it returns something truthy; fail with the workers' logs."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within} s\n{workers.output()}")
        await asyncio.sleep(0.05)


async def start_workers(services: Services, workers: Workers, ids: list[str]) -> float:
    """Start the workers and wait until each heartbeats; returns when they all did (monotonic)."""
    for worker_id in ids:
        workers.start(worker_id)

    async def all_alive() -> bool:
        rows = await executors(services)
        return all(rows.get(worker_id, ("", None))[0] == "alive" for worker_id in ids)

    await until(all_alive, 60, "heartbeat from every worker", workers)
    return time.monotonic()


async def until_steady(alive_at: float) -> None:
    """A worker judges others only once its own heartbeats have run unbroken for the takeover time."""
    await asyncio.sleep(max(0.0, alive_at + 3.5 - time.monotonic()))


def held_requests(sandboxes: ServedSandboxes, hold: Hold) -> int:
    """Requests the held path has received (the emulator records a request before delaying it)."""
    requests = sandboxes.sandboxes[hold.provider].provider_requests()
    return len([r for r in requests if r.method == "POST" and r.path.endswith(hold.path)])


async def runner(workflow_id: str) -> str | None:
    """The executor DBOS last recorded as running the workflow."""
    status = await DBOS.get_workflow_status_async(workflow_id)
    return None if status is None else status.executor_id


@dataclass(frozen=True)
class Hold:
    """One provider request to hold in its emulator, and the job that sends it."""

    provider: str
    path: str
    job: str
    seconds: float


# HubSpot's call engagement, created by the CRM job outside any tool (no idempotency claim is
# held while it is in flight): the job's last request, after its contact and note are written.
LOG_CALL = "/crm/v3/objects/calls"


def emulator_effects(sandboxes: ServedSandboxes) -> dict[str, Any]:
    hubspot = sandboxes.sandboxes["hubspot"].state.dump()
    calendar = sandboxes.sandboxes["google_calendar"].state.dump()
    twilio = sandboxes.sandboxes["twilio"].state.dump()
    events = [event for entry in calendar["calendars"].values() for event in entry["events"]]
    return {
        "contacts": len(hubspot["contacts"]),
        "notes": len(hubspot["notes"]),
        "calls": len(hubspot["calls"]),
        "events": len([event for event in events if event.get("status") != "cancelled"]),
        "sms": len(twilio["messages"]),
    }


ONCE_EACH = {"contacts": 1, "notes": 1, "calls": 1, "events": 1, "sms": 1}
ALL_DONE = {("calendar", "done"): 1, ("crm", "done"): 1, ("confirmation_sms", "done"): 1}


async def held_call(
    services: Services,
    submitter: PostCallEngine,
    sandboxes: ServedSandboxes,
    workers: Workers,
    hold: Hold,
    *,
    confirmation_sms: bool = True,
) -> tuple[str, str, str]:
    """Record and submit one call whose `hold` request waits `hold.seconds` in its emulator.

    Returns the record id, the holding job's workflow id and the worker running that job.
    """
    agent_id = await emulator_agent(services, sandboxes, confirmation_sms=confirmation_sms)
    fault = Fault(kind="slow", times=1, seconds=hold.seconds, path=hold.path, method="POST")
    sandboxes.sandboxes[hold.provider].faults.append(fault)
    [record_id] = await record_calls(services, agent_id, batch_calls(1, prefix="takeover"))
    await submitter.submit(record_id)
    record = await services.calls.by_id(record_id)
    assert record is not None
    workflow_id = f"postcall:{record.agent_id}:{record.platform}:{record.call_id}:{hold.job}"

    async def holder() -> str | None:
        return await runner(workflow_id) if held_requests(sandboxes, hold) else None

    return record_id, workflow_id, await until(holder, 30, f"{hold.path} held", workers)


async def synced(services: Services, record_id: str) -> bool:
    record = await services.calls.by_id(record_id)
    return record is not None and record.sync_status == "synced"


async def test_a_sigkilled_workers_job_is_taken_over_by_a_worker_with_another_id_within_5_seconds_and_runs_once(
    backend: Backend,
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    alive_at = await start_workers(services, workers, ["alpha", "beta"])
    await until_steady(alive_at)
    hold = Hold("hubspot", LOG_CALL, "crm", seconds=2.0)
    # No confirmation text: it would run beside the CRM job, and a text in flight at the kill holds
    # its idempotency claim for the write deadline + 5 s (its request may still land), which is
    # the claim's guarantee, not the takeover's speed.
    record_id, workflow_id, holder = await held_call(
        services, submitter, sandboxes, workers, hold, confirmation_sms=False
    )
    survivor = "beta" if holder == "alpha" else "alpha"

    workers.kill(holder)
    killed_at = time.monotonic()

    async def resumed() -> bool:
        return await runner(workflow_id) == survivor

    await until(resumed, TAKEOVER_WITHIN, "the job running on the survivor", workers)
    # Restarted with the dead one's id just after the takeover: it must run none of it again.
    workers.start(holder)
    left = FINISHED_WITHIN - (time.monotonic() - killed_at)
    await until(lambda: synced(services, record_id), left, "call synced by the survivor", workers)
    finished = time.monotonic() - killed_at

    assert (await executors(services))[holder] in (("taken", survivor), ("alive", None)), finished
    await until(lambda: _state_is(services, holder, "alive"), 30, "the restarted worker's heartbeat", workers)
    await asyncio.sleep(1.0)  # time for a wrong recovery by the restarted worker to show in the emulators
    # The held create reached HubSpot after its sender died; the survivor found it rather than log a second.
    assert held_requests(sandboxes, hold) == 1
    assert emulator_effects(sandboxes) == {**ONCE_EACH, "sms": 0}
    assert await step_counts(services) == {("calendar", "done"): 1, ("crm", "done"): 1}


async def _state_is(services: Services, executor_id: str, state: str) -> bool:
    return (await executors(services)).get(executor_id, ("", None))[0] == state


async def test_a_live_worker_holding_a_job_longer_than_the_takeover_time_keeps_it(
    backend: Backend,
    services: Services,
    submitter: PostCallEngine,
    workers: Workers,
    sandboxes: ServedSandboxes,
    fresh_sandboxes: None,
) -> None:
    alive_at = await start_workers(services, workers, ["alpha", "beta"])
    await until_steady(alive_at)
    # Held twice as long as a silent worker takes to be declared dead: its heartbeats keep it.
    hold = Hold("hubspot", LOG_CALL, "crm", seconds=6.0)
    record_id, workflow_id, holder = await held_call(services, submitter, sandboxes, workers, hold)

    await until(lambda: synced(services, record_id), 30, "call synced", workers)

    assert await executors(services) == {"alpha": ("alive", None), "beta": ("alive", None)}
    assert await runner(workflow_id) == holder
    assert held_requests(sandboxes, hold) == 1
    assert emulator_effects(sandboxes) == ONCE_EACH
    assert sorted(workers.alive()) == ["alpha", "beta"]


# -- the claim itself, in one process ---------------------------------------------------------------


def _liveness(database_url: str, executor_id: str, fenced: list[str]) -> Liveness:
    return Liveness(
        database_url,
        executor_id,
        heartbeat_seconds=0.2,
        takeover_after_seconds=1.0,
        on_fenced=lambda: fenced.append(executor_id),
    )


def _take_until_taken(taker: Liveness, recover: Callable[[str], int], within: float = 15.0) -> dict[str, int]:
    """Look for dead executors as the engine does, a few times a heartbeat, until one is taken.

    A loaded machine can delay a heartbeat past the steadiness rule, which makes a look take
    nothing; the engine simply looks again, and so does this.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        taken = taker.take_over(recover)
        if taken:
            return taken
        time.sleep(0.05)
    return {}


def _wait_for(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _state_of(database_url: str, executor_id: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(PostCallExecutorRow.state).where(PostCallExecutorRow.executor_id == executor_id)
            ).first()
    finally:
        engine.dispose()
    return None if row is None else str(row.state)


def test_of_two_workers_finding_the_same_dead_executor_only_one_recovers_it(database_url: str) -> None:
    fenced: list[str] = []
    dead = _liveness(database_url, "dead", fenced)
    dead.register()
    takers = [_liveness(database_url, f"taker-{index}", fenced) for index in range(4)]
    for taker in takers:
        taker.register()
        taker.start()
    recovered: list[tuple[str, str]] = []
    lock = threading.Lock()

    def take(taker: Liveness) -> None:
        def recover(executor_id: str) -> int:
            with lock:
                recovered.append((taker.executor_id, executor_id))
            return 1

        # Each keeps looking until somebody has taken `dead`, as every worker's engine does.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _state_of(database_url, "dead") != "taken":
            taker.take_over(recover)
            time.sleep(0.05)

    threads = [threading.Thread(target=take, args=(taker,)) for taker in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for taker in takers:
        taker.stop()
    dead.stop()

    assert [executor_id for _, executor_id in recovered] == ["dead"]
    assert fenced == []


def test_a_worker_taken_over_while_it_was_paused_is_fenced_at_its_next_heartbeat(database_url: str) -> None:
    fenced: list[str] = []
    paused = _liveness(database_url, "paused", fenced)
    paused.register()
    with paused._db.engine.begin() as connection:  # what a taker's claim does to its row
        connection.execute(
            update(PostCallExecutorRow).where(PostCallExecutorRow.executor_id == "paused").values(state="taken")
        )
    paused.start()
    fenced_in_time = _wait_for(lambda: bool(fenced))
    paused.stop()

    assert fenced_in_time
    assert set(fenced) == {"paused"}


def test_a_fenced_worker_is_taken_over_once_more_so_what_it_dequeued_after_the_first_takeover_is_recovered(
    database_url: str,
) -> None:
    fenced: list[str] = []
    paused = _liveness(database_url, "paused", fenced)
    paused.register()
    taker = _liveness(database_url, "taker", fenced)
    taker.register()
    taker.start()
    recovered: list[str] = []

    def recover(executor_id: str) -> int:
        recovered.append(executor_id)
        return 1

    first = _take_until_taken(taker, recover)  # `paused` is silent
    paused.start()  # it wakes up, dequeues a workflow under its own id, then heartbeats
    fenced_in_time = _wait_for(lambda: bool(fenced))
    # The fenced worker beats no more: its handed-back row goes stale and is taken again.
    second = _take_until_taken(taker, recover)
    taker.stop()
    paused.stop()

    assert first == {"paused": 1}
    assert fenced_in_time
    assert second == {"paused": 1}
    assert recovered == ["paused", "paused"]
    assert fenced == ["paused"]


def test_a_worker_that_has_not_beaten_steadily_for_the_takeover_time_takes_nothing(database_url: str) -> None:
    fenced: list[str] = []
    dead = _liveness(database_url, "dead", fenced)
    dead.register()
    newcomer = _liveness(database_url, "newcomer", fenced)
    newcomer.register()
    newcomer.start()
    try:
        # Just started (or just back after a database outage): its peers may not have beaten yet.
        assert newcomer.take_over(lambda executor_id: 1) == {}
        assert _take_until_taken(newcomer, lambda executor_id: 1) == {"dead": 1}
    finally:
        newcomer.stop()
        dead.stop()


def test_a_worker_restarted_with_an_id_being_taken_over_waits_until_the_takeover_ends(database_url: str) -> None:
    fenced: list[str] = []
    dead = _liveness(database_url, "worker-1", fenced)
    dead.register()
    taker = _liveness(database_url, "worker-2", fenced)
    taker.register()
    taker.start()
    recovering, release = threading.Event(), threading.Event()
    order: list[str] = []

    def recover(executor_id: str) -> int:
        recovering.set()
        release.wait(15)
        order.append(f"recovered {executor_id}")
        return 1

    taking = threading.Thread(target=_take_until_taken, args=(taker, recover))
    taking.start()
    assert recovering.wait(15)
    restarted = _liveness(database_url, "worker-1", fenced)

    def register() -> None:
        restarted.register()
        order.append("restarted registered")

    registering = threading.Thread(target=register)
    registering.start()
    time.sleep(0.3)
    assert order == []  # still waiting: the workflows are not all back on their queues yet
    release.set()
    taking.join(15)
    registering.join(15)
    for liveness in (restarted, taker, dead):
        liveness.stop()

    assert order == ["recovered worker-1", "restarted registered"]
    assert fenced == []
