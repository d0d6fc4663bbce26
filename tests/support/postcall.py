"""Post-call batches across processes: `tool-server worker` subprocesses, records, and waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tool_server.calls.models import CallRecord
from tool_server.services import Services
from tool_server.store.tables import CallRecordRow, SyncStepRow
from tool_server.voice import generic

ROOT = Path(__file__).resolve().parents[2]
ZONE = "America/New_York"
# Obviously fake; only seals the test credentials.
SECRET_KEY = "test-secret-key-not-for-production-0123456789"


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment a `tool-server worker` needs to share the test's database and credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOOL_SERVER_")}
    env.update(
        {
            "TOOL_SERVER_DATABASE_URL": database_url,
            "TOOL_SERVER_SECRET_KEY": SECRET_KEY,
            "TOOL_SERVER_LOG_LEVEL": "warning",
            "TOOL_SERVER_POSTCALL_POLL_SECONDS": "0.1",
            "TOOL_SERVER_POSTCALL_RETRY_BASE_SECONDS": "0.2",
            "TOOL_SERVER_POSTCALL_RETRY_MAX_SECONDS": "2",
            "TOOL_SERVER_POSTCALL_MAX_ATTEMPTS": "30",
            "TOOL_SERVER_POSTCALL_SWEEP_SECONDS": "2",
            # The emulators have no request limits, and a batch of one agent's calls would wait on HubSpot's.
            "TOOL_SERVER_POSTCALL_RATE_LIMITS": "false",
        }
    )
    env.update({f"TOOL_SERVER_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class Workers:
    """`tool-server worker --id <id>` processes; their stderr goes to files under `logs`."""

    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, worker_id: str) -> None:
        with (self.logs / f"{worker_id}.log").open("ab") as log:
            self.processes[worker_id] = subprocess.Popen(
                [sys.executable, "-m", "tool_server", "worker", "--id", worker_id, "--no-migrate"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )

    def kill(self, worker_id: str) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        process = self.processes.pop(worker_id)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def alive(self) -> list[str]:
        return [worker_id for worker_id, process in self.processes.items() if process.poll() is None]

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs.glob("*.log"))


def weekday_slots(start: date, count: int) -> Iterator[tuple[str, str]]:
    """(date, "HH:MM") pairs on weekdays from `start`, 09:00–16:30 every 30 minutes."""
    day, made = start, 0
    while made < count:
        if day.weekday() < 5:
            for minutes in range(9 * 60, 17 * 60, 30):
                if made == count:
                    return
                yield day.isoformat(), f"{minutes // 60:02d}:{minutes % 60:02d}"
                made += 1
        day += timedelta(days=1)


def batch_calls(count: int, *, prefix: str = "batch") -> list[dict[str, Any]]:
    """`count` distinct finished calls in the flat /v1/calls shape, each asking for an appointment."""
    first_day = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=2)
    calls = []
    for index, (day, time) in enumerate(weekday_slots(first_day, count)):
        calls.append(
            {
                "call_id": f"{prefix}-{index:04d}",
                "customer_name": f"Caller {index:04d}",
                "customer_phone": f"+1212555{index:04d}",
                "customer_email": f"caller{index:04d}@example.com",
                "call_outcome": "appointment requested",
                "call_summary": f"Caller {index} asked for a cleaning.",
                "call_sentiment": "positive",
                "transcript": "agent: Hello\ncaller: I'd like a cleaning",
                "started_at": datetime.now(UTC).isoformat(),
                "duration_seconds": 60 + index,
                "appointment_requested": {"date": day, "time": time, "timezone": ZONE, "title": "Cleaning"},
            }
        )
    return calls


async def record_calls(services: Services, agent_id: str, calls: list[dict[str, Any]]) -> list[str]:
    """Record each call as its final event; returns the record ids."""
    ids = []
    for payload in calls:
        normalized: CallRecord = generic.parse(payload, phone_region="US")
        recorded = await services.calls.record(agent_id, "call_completed", normalized, payload, final=True)
        ids.append(recorded.record_id)
    return ids


async def step_counts(services: Services) -> dict[tuple[str, str], int]:
    """(job, status) → how many steps."""
    query = select(SyncStepRow.job, SyncStepRow.status, func.count()).group_by(SyncStepRow.job, SyncStepRow.status)
    rows = await services.db.run(lambda session: session.execute(query).all())
    return {(job, status): int(n) for job, status, n in rows}


async def record_statuses(services: Services, agent_id: str | None = None) -> dict[str, int]:
    query = select(CallRecordRow.sync_status, func.count()).group_by(CallRecordRow.sync_status)
    if agent_id is not None:
        query = query.where(CallRecordRow.agent_id == agent_id)
    rows = await services.db.run(lambda session: session.execute(query).all())
    return {status: int(n) for status, n in rows}


async def wait_until_settled(
    services: Services, total: int, workers: Workers, within: float, agent_id: str | None = None
) -> dict[str, int]:
    """Wait until every record (of `agent_id`) is synced or failed; fail with the workers' logs otherwise."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        statuses = await record_statuses(services, agent_id)
        if statuses.get("synced", 0) + statuses.get("failed", 0) == total:
            return statuses
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not settled after {within} s: {statuses}\n{workers.output()}")
        await asyncio.sleep(0.25)


async def wait_for_done_steps(services: Services, at_least: int, within: float) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        done = sum(n for (_job, status), n in (await step_counts(services)).items() if status == "done")
        if done >= at_least or asyncio.get_running_loop().time() > deadline:
            return done
        await asyncio.sleep(0.05)
