"""Benchmark: post-call sync, call records per second end to end, on SQLite and on PostgreSQL.

Each call goes to three integrations on their emulators (HubSpot contact + note, a Google
Calendar booking, a Twilio confirmation SMS), and every emulator answers each request 50 ms
late, like a provider across the internet.

- **Concurrent baseline** (same run, same emulators): the same job code in this process with
  no engine, no checkpoints and no queue, as many calls at once as the durable workers run
  (16 per worker), each call's jobs side by side. It shows what durability costs.
- **Sequential baseline**: one call after another, its jobs one after another (run sizes up
  to 100 calls only: at 1,000 it would take 12 minutes to say what a naive loop does).
- **Durable sync**: the calls are recorded and enqueued as the server does, and `tool-server
  worker` processes run the DBOS workflows.

Each (database, calls, workers) run gets a fresh database. Records per second counts from the
first enqueue to the moment every record is synced. Usage:
    .venv/bin/python scripts/bench_postcall.py [--calls 100 1000] [--postgres-workers 1 2 4]
        [--sqlite-workers 2] [--no-sqlite] [--no-postgres] [--no-sequential] [--quick]
        [--py-spy DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import subprocess
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
from tool_server.postcall.jobs import JobContext, JobFailedError, plan, run_job  # noqa: E402
from tool_server.services import Services  # noqa: E402
from tool_server.settings import ServerSettings  # noqa: E402
from tool_server.store.migrate import upgrade_database  # noqa: E402

LATENCY_SECONDS = 0.05
# Jobs one worker runs at once per integration (TOOL_SERVER_POSTCALL_CONCURRENCY's default).
CONCURRENCY = 16
PROVIDERS = (("crm", "hubspot"), ("calendar", "google_calendar"), ("messaging", "twilio"))
# A worker runs this many threads once DBOS is launched (queue threads, listener); one while importing.
_LAUNCHED_THREADS = 5
# The largest run that also gets the sequential baseline.
SEQUENTIAL_MAX_CALLS = 100


@dataclass
class Result:
    database: str
    calls: int
    workers: int
    baseline: float
    durable: float
    sequential: float | None = None

    def rate(self, seconds: float) -> float:
        return self.calls / seconds


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
        settings = dict(sandbox.settings)
        if capability == "calendar":
            # 1,000 calls ask for 1,000 half-hour slots: about 90 days of weekdays, past the default 60.
            settings["horizon_days"] = 365
        connection = Connection(capability=capability, provider=provider, settings=settings)
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
    retries: list[str] = []

    async def sync_one(record_id: str) -> None:
        async with gate:
            record = await services.calls.by_id(record_id)
            assert record is not None
            assert agent is not None
            context = JobContext(services, agent, record_id, record, followups)
            jobs = plan(agent, followups)
            if concurrency == 1:
                for job in jobs:
                    await run_until_done(context, job)
            else:
                await asyncio.gather(*(run_until_done(context, job) for job in jobs))

    async def run_until_done(context: JobContext, job: str) -> None:
        # Retried as the workers retry (worker_env: 0.2 s doubling to 2 s, 30 tries), so a
        # timeout on a busy machine costs both sides the same instead of ending the run.
        for attempt in range(30):
            try:
                await run_job(context, job)
                return
            except JobFailedError as error:
                if not error.retryable or attempt == 29:
                    raise
                retries.append(job)
                await asyncio.sleep(max(min(0.2 * 2**attempt, 2.0), error.retry_after or 0.0))

    started = time.perf_counter()
    await asyncio.gather(*(sync_one(record_id) for record_id in record_ids))
    elapsed = time.perf_counter() - started
    if retries:
        print(f"baseline retries: {len(retries)}")
    for record_id in record_ids:
        # Done by the loop: keep the workers' sweep from starting them again.
        await services.calls.set_status(record_id, "synced")
    return elapsed


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next((int(line.split()[1]) for line in status if line.startswith("Threads:")), 0)


async def launched(workers: Workers, within: float = 180) -> None:
    """Wait until every worker has imported and launched DBOS (its queue and listener threads run).

    On a busy machine an import takes far longer than the 4 s this once slept: the clock would
    have counted the workers' start-up against the durable sync.
    """
    for process in workers.processes.values():
        for _tick in range(int(within / 0.2)):
            if _threads(process.pid) >= _LAUNCHED_THREADS:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1)


@contextmanager
def profiled(workers: Workers, folder: Path | None, label: str) -> Iterator[None]:
    """py-spy sampling each worker process into `folder` (collapsed stacks), when asked for."""
    spies: list[subprocess.Popen[bytes]] = []
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).parent / "py-spy"
        for worker_id, process in workers.processes.items():
            output = folder / f"{label}-{worker_id}.txt"
            command = [str(spy), "record", "--format", "raw", "--rate", "50", "--nonblocking", "-o", str(output)]
            spies.append(subprocess.Popen([*command, "--pid", str(process.pid)], stdout=subprocess.DEVNULL))
    try:
        yield
    finally:
        for spy_process in spies:
            # py-spy writes its file when the process it samples exits (the workers stop below).
            try:
                spy_process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy_process.terminate()


async def durable(
    services: Services, served: ServedSandboxes, calls: int, workers: Workers, count: int, spy: Path | None, label: str
) -> float:
    agent_id = await emulated_agent(services, served, "Durable Dental")
    record_ids = await record_calls(services, agent_id, batch_calls(calls, prefix=f"sync-{uuid.uuid4().hex[:6]}"))
    engine = PostCallEngine(services, listen=False, executor_id="bench-submitter")
    await engine.start()
    try:
        for index in range(count):
            workers.start(f"bench-worker-{index + 1}")
        await launched(workers)
        with ExitStack() as spying:
            spying.enter_context(profiled(workers, spy, label))
            started = time.perf_counter()
            for record_id in record_ids:
                await engine.submit(record_id)
            statuses = await wait_until_settled(services, calls, workers, within=1800, agent_id=agent_id)
            elapsed = time.perf_counter() - started
            workers.stop()
    finally:
        await engine.stop()
        workers.stop()
    log = workers.output()
    print(f"worker warnings: {log.count(' WARNING ')}; queue contention backoffs: {log.count('Contention detected')}")
    if statuses != {"synced": calls}:
        raise RuntimeError(f"not every call synced: {statuses}\n{workers.output()}")
    return elapsed


async def measure(
    database: str, url: str, calls: int, worker_count: int, scratch: Path, sequential: bool, spy: Path | None
) -> Result:
    upgrade_database(url)
    # The emulators have no request limits: the durable path is measured without the provider budgets.
    settings = ServerSettings(database_url=url, secret_key=SECRET_KEY, postcall="enqueue", postcall_rate_limits=False)
    services = Services.build(settings)
    label = f"{database.lower()}-{calls}-{worker_count}w"
    logs = scratch / f"logs-{label}"
    logs.mkdir()
    try:
        with slow_emulators() as served:
            once = await baseline(services, served, calls, 1) if sequential else None
            concurrent = await baseline(services, served, calls, CONCURRENCY * worker_count)
            workers = Workers(worker_env(url), logs)
            synced = await durable(services, served, calls, workers, worker_count, spy, label)
    finally:
        await services.aclose()
    result = Result(database, calls, worker_count, concurrent, synced, once)
    print(
        f"{database} {calls} calls, {worker_count} workers: baseline {result.rate(concurrent):.1f}/s, "
        f"durable {result.rate(synced):.1f}/s, ratio {concurrent / synced:.2f}x",
        flush=True,
    )
    return result


def report(results: list[Result]) -> str:
    lines = [
        "## Post-call sync",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/bench_postcall.py` on 2 cores, "
        f"Python {platform.python_version()}. Each call record goes to HubSpot (find or create the contact, "
        "write the note), Google Calendar (book the requested slot) and Twilio (confirmation SMS), every "
        f"emulator answering each request {int(LATENCY_SECONDS * 1000)} ms late. Emulators, workers and the "
        "database share the machine; each run has a fresh database.",
        "",
        "| database | calls | workers | baseline s | baseline records/s | durable s | durable records/s "
        "| durable / baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.database} | {r.calls} | {r.workers} | {r.baseline:.1f} | {r.rate(r.baseline):.1f} | "
            f"{r.durable:.1f} | {r.rate(r.durable):.1f} | {r.baseline / r.durable:.2f}x |"
        )
    naive = [r for r in results if r.sequential is not None]
    if naive:
        lines += [
            "",
            "| database | calls | sequential baseline s | records/s | durable / sequential |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in naive:
            assert r.sequential is not None
            lines.append(
                f"| {r.database} | {r.calls} | {r.sequential:.1f} | {r.rate(r.sequential):.1f} | "
                f"{r.sequential / r.durable:.2f}x |"
            )
    lines += [
        "",
        "The baseline runs the same job code against the same emulators with no engine, as many calls at once "
        f"as the durable workers run ({CONCURRENCY} per worker per integration), in one process: it never waits "
        "on a queue or writes a checkpoint, and loses whatever it was doing if the process dies. The durable sync "
        "checkpoints every step in the DBOS system database, runs each integration's jobs on their own queue, "
        "and overlaps the 50 ms provider round trips across calls and workers. The sequential baseline (one call "
        "at a time) shows what a naive loop would do.",
    ]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[Result]:
    # The connectors' blocking SDK calls run on the loop's default executor: give the baselines
    # as many threads as the engine gives the workers, so neither side waits for a thread.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=128))
    spy = args.py_spy
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-postcall-") as folder, ExitStack() as stack:
        scratch = Path(folder)
        server = None
        for calls in args.calls:
            sequential = not args.no_sequential and calls <= SEQUENTIAL_MAX_CALLS
            if not args.no_sqlite:
                url = f"sqlite:///{scratch / f'bench-{calls}.db'}"
                results.append(await measure("SQLite", url, calls, args.sqlite_workers, scratch, sequential, spy))
            if args.no_postgres:
                continue
            if not find_server_binaries():
                raise SystemExit("PostgreSQL is not installed (apt-get install postgresql), or pass --no-postgres")
            if server is None:
                server = stack.enter_context(running_postgres())
            for index, count in enumerate(args.postgres_workers):
                url = create_database(server, f"bench_{uuid.uuid4().hex[:8]}")
                once = sequential and index == 0
                results.append(await measure("PostgreSQL", url, calls, count, scratch, once, spy))
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000], help="run sizes (call records)")
    parser.add_argument("--quick", action="store_true", help="20 calls, 2 PostgreSQL workers: check the script works")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sequential", action="store_true", help="skip the one-call-at-a-time baseline")
    parser.add_argument("--sqlite-workers", type=int, default=2)
    parser.add_argument("--postgres-workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--py-spy", metavar="DIR", help="sample each worker with py-spy into DIR (collapsed stacks)")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    if args.quick:
        args.calls, args.postgres_workers = [20], [2]
    args.py_spy = Path(args.py_spy).absolute() if args.py_spy else None
    results = asyncio.run(run(args))
    text = report(results)
    print(text)
    if not args.no_write:
        replace_section(Path(args.output), "postcall", text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
