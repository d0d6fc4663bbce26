"""Benchmark: post-call sync, call records per second end to end, on SQLite and on PostgreSQL.

Each call goes to three integrations on their emulators (HubSpot contact + note, a Google
Calendar booking, a Twilio confirmation SMS), and every emulator answers each request 50 ms
late, like a provider across the internet.

- **Baseline** (same run, same emulators): one loop in one process that runs each call's jobs
  one after another, calling the same job code with no engine, no checkpoints and no queue.
- **Durable sync**: the calls are recorded and enqueued as the server does, and `tool-server
  worker` processes run the DBOS workflows (2 workers on SQLite, 4 on PostgreSQL).

Records per second counts from the first enqueue to the moment every record is synced. Usage:
    .venv/bin/python scripts/bench_postcall.py [--calls 100] [--quick] [--no-write] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sections import replace_section  # noqa: E402

from integrations.common.sandbox import Fault  # noqa: E402
from integrations.registry import INTEGRATIONS  # noqa: E402
from tests.support.postcall import (  # noqa: E402
    SECRET_KEY,
    Workers,
    batch_calls,
    record_calls,
    wait_until_settled,
    worker_env,
)
from tests.support.postgres import create_database, find_server_binaries, running_postgres  # noqa: E402
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes  # noqa: E402
from tool_server.agents import Connection  # noqa: E402
from tool_server.postcall.engine import PostCallEngine  # noqa: E402
from tool_server.postcall.followups import FollowUps  # noqa: E402
from tool_server.postcall.jobs import JobContext, plan, run_job  # noqa: E402
from tool_server.services import Services  # noqa: E402
from tool_server.settings import ServerSettings  # noqa: E402
from tool_server.store.migrate import upgrade_database  # noqa: E402

LATENCY_SECONDS = 0.05
# Jobs one worker runs at once per integration (TOOL_SERVER_POSTCALL_CONCURRENCY's default).
CONCURRENCY = 16
PROVIDERS = (("crm", "hubspot"), ("calendar", "google_calendar"), ("messaging", "twilio"))


@dataclass
class Result:
    database: str
    kind: str
    mode: str
    calls: int
    seconds: float
    workers: int

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds


@contextmanager
def slow_emulators() -> Iterator[ServedSandboxes]:
    sandboxes = {name: INTEGRATIONS[name].sandbox() for _capability, name in PROVIDERS}
    with serve_sandboxes(sandboxes) as served:
        for sandbox in served.sandboxes.values():
            sandbox.faults.append(Fault(kind="slow", times=0, seconds=LATENCY_SECONDS))
        yield served


async def emulated_agent(services: Services, served: ServedSandboxes, name: str) -> str:
    connections, secrets = [], {}
    for capability, provider in PROVIDERS:
        sandbox = INTEGRATIONS[provider].sandbox_connection(served.url(provider))
        connection = Connection(capability=capability, provider=provider, settings=sandbox.settings)
        connections.append(services.providers.validate(connection, sandbox.secrets))
        secrets[capability] = dict(sandbox.secrets)
    created = await services.agents.create(
        name, timezone="America/New_York", phone_region="US", connections=connections, secrets=secrets
    )
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    return created.agent.id


async def baseline(services: Services, served: ServedSandboxes, calls: int, concurrency: int) -> float:
    """The same jobs with no engine, in this process: no checkpoints, no queue, nothing durable.

    `concurrency` 1 is a plain loop, one call after another; more runs that many calls at once,
    each call's jobs side by side, which is the most a non-durable in-process sync could overlap.
    """
    agent_id = await emulated_agent(services, served, f"Baseline Dental {concurrency}")
    prefix = f"base{concurrency}-{uuid.uuid4().hex[:6]}"
    record_ids = await record_calls(services, agent_id, batch_calls(calls, prefix=prefix))
    agent = await services.agents.get(agent_id)
    assert agent is not None
    followups = await services.followups.get(agent_id)
    gate = asyncio.Semaphore(concurrency)

    async def sync_one(record_id: str) -> None:
        async with gate:
            record = await services.calls.by_id(record_id)
            assert record is not None
            assert agent is not None
            context = JobContext(services, agent, record_id, record, followups)
            jobs = plan(agent, followups)
            if concurrency == 1:
                for job in jobs:
                    await run_job(context, job)
            else:
                await asyncio.gather(*(run_job(context, job) for job in jobs))

    started = time.perf_counter()
    await asyncio.gather(*(sync_one(record_id) for record_id in record_ids))
    elapsed = time.perf_counter() - started
    for record_id in record_ids:
        # Done by the loop: keep the workers' sweep from starting them again.
        await services.calls.set_status(record_id, "synced")
    return elapsed


async def durable(services: Services, served: ServedSandboxes, calls: int, workers: Workers, count: int) -> float:
    agent_id = await emulated_agent(services, served, "Durable Dental")
    record_ids = await record_calls(services, agent_id, batch_calls(calls, prefix=f"sync-{uuid.uuid4().hex[:6]}"))
    engine = PostCallEngine(services, listen=False, executor_id="bench-submitter")
    await engine.start()
    try:
        for index in range(count):
            workers.start(f"bench-worker-{index + 1}")
        await asyncio.sleep(4)  # let the workers import and launch before the clock starts
        started = time.perf_counter()
        for record_id in record_ids:
            await engine.submit(record_id)
        statuses = await wait_until_settled(services, calls, workers, within=600, agent_id=agent_id)
        elapsed = time.perf_counter() - started
    finally:
        await engine.stop()
        workers.stop()
    log = workers.output()
    print(f"worker warnings: {log.count(' WARNING ')}; queue contention backoffs: {log.count('Contention detected')}")
    if statuses != {"synced": calls}:
        raise RuntimeError(f"not every call synced: {statuses}\n{workers.output()}")
    return elapsed


async def measure(database: str, url: str, calls: int, worker_count: int, scratch: Path) -> list[Result]:
    upgrade_database(url)
    settings = ServerSettings(database_url=url, secret_key=SECRET_KEY, postcall="enqueue")
    services = Services.build(settings)
    logs = scratch / f"logs-{database}"
    logs.mkdir()
    try:
        with slow_emulators() as served:
            sequential = await baseline(services, served, calls, 1)
            concurrent = await baseline(services, served, calls, CONCURRENCY * worker_count)
            workers = Workers(worker_env(url), logs)
            synced = await durable(services, served, calls, workers, worker_count)
    finally:
        await services.aclose()
    return [
        Result(database, "sequential", "baseline: one call at a time, no engine", calls, sequential, 1),
        Result(
            database,
            "concurrent",
            f"baseline: {CONCURRENCY * worker_count} calls at once in one process, no engine",
            calls,
            concurrent,
            1,
        ),
        Result(database, "durable", "durable sync: DBOS workflows in worker processes", calls, synced, worker_count),
    ]


def report(results: list[Result], calls: int) -> str:
    lines = [
        "## Post-call sync",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/bench_postcall.py` on 2 cores, "
        f"Python {platform.python_version()}. {calls} call records per run, each going to HubSpot (find or "
        "create the contact, write the note), Google Calendar (book the requested slot) and Twilio (confirmation "
        f"SMS), every emulator answering each request {int(LATENCY_SECONDS * 1000)} ms late. Emulators, workers "
        "and the database share the machine.",
        "",
        "| database | run | workers | seconds | records/s |",
        "|---|---|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.database} | {result.mode} | {result.workers} | {result.seconds:.1f} | {result.per_second:.1f} |"
        )
    lines += [
        "",
        "| database | durable / sequential baseline | durable / concurrent baseline |",
        "|---|---:|---:|",
    ]
    by_database: dict[str, dict[str, Result]] = {}
    for result in results:
        by_database.setdefault(result.database, {})[result.kind] = result
    for database, runs in by_database.items():
        durable_rate = runs["durable"].per_second
        lines.append(
            f"| {database} | {durable_rate / runs['sequential'].per_second:.2f}x | "
            f"{durable_rate / runs['concurrent'].per_second:.2f}x |"
        )
    lines += [
        "",
        "Both baselines run the same job code against the same emulators with no engine: they never wait on "
        "a queue or write a checkpoint, and lose whatever they were doing if the process dies. The durable "
        "sync checkpoints every step in the DBOS system database, runs each integration's jobs on their own "
        "queue, and overlaps the 50 ms provider round trips across calls and workers. The concurrent baseline "
        "shows what durability costs; the sequential one what a naive loop would do.",
    ]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[Result]:
    # The connectors' blocking SDK calls run on the loop's default executor: give the baselines
    # as many threads as the engine gives the workers, so neither side waits for a thread.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=128))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-postcall-") as folder, ExitStack() as stack:
        scratch = Path(folder)
        sqlite = scratch / "bench.db"
        results += await measure("SQLite", f"sqlite:///{sqlite}", args.calls, args.sqlite_workers, scratch)
        if not args.no_postgres:
            if not find_server_binaries():
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql), or pass --no-postgres")
            server = stack.enter_context(running_postgres())
            url = create_database(server, f"bench_{uuid.uuid4().hex[:8]}")
            results += await measure("PostgreSQL", url, args.calls, args.postgres_workers, scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 calls, to check the script works")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--sqlite-workers", type=int, default=2)
    parser.add_argument("--postgres-workers", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    if args.quick:
        args.calls = 20
    results = asyncio.run(run(args))
    text = report(results, args.calls)
    print(text)
    if not args.no_write:
        replace_section(Path(args.output), "postcall", text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
