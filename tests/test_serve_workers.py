"""`tool-server serve --workers N`: N processes on one port, one migration, one post-call engine.

The server runs as it does in production, a real `tool-server serve` process on 127.0.0.1. Each
request goes over a fresh connection, so the kernel hands it to whichever worker accepts first;
`/healthz/worker` says which process answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import SECRET_KEY, TOOL_SERVER, free_port, server_env
from tool_server.agents import Connection
from tool_server.services import Services
from tool_server.settings import ServerSettings

pytestmark = pytest.mark.e2e

CALENDAR = {"weekly_hours": {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody reaped yet counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def create_agent(settings: ServerSettings) -> str:
    services = Services.build(settings)
    try:
        created = await services.agents.create(
            "Two Workers Dental",
            timezone="America/New_York",
            phone_region="US",
            connections=[
                services.providers.validate(
                    Connection(capability="calendar", provider="local_calendar", settings=CALENDAR)
                ),
                Connection(capability="crm", provider="contact_book"),
            ],
        )
        return created.api_key
    finally:
        await services.aclose()


def fresh_get(url: str) -> dict[str, Any]:
    # A new connection each time: keep-alive would pin every request to one worker.
    with httpx.Client(timeout=10) as client:
        answer: dict[str, Any] = client.get(url, headers={"Connection": "close"}).json()
        return answer


def start(home: Path, port: int, *args: str, **settings: str) -> subprocess.Popen[bytes]:
    env = server_env(home, public_url=f"http://127.0.0.1:{port}", **settings)
    log = (home / f"server-{port}.log").open("wb")
    with log:
        return subprocess.Popen(
            [TOOL_SERVER, "serve", "--port", str(port), *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_until_up(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    # Each worker is a fresh interpreter that imports the whole app: allow for a busy machine.
    deadline = time.monotonic() + 150
    while True:
        assert process.poll() is None, f"tool-server serve exited:\n{log.read_text()}"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"tool-server serve did not come up:\n{log.read_text()}"
        time.sleep(0.1)


def test_two_workers_share_one_port_the_parent_syncs_their_calls_and_sigterm_ends_every_process(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A fresh home: the parent creates and migrates the database before any worker starts.
    process = start(tmp_path, port, "--workers", "2", sandbox="false", postcall_poll_seconds="0.05")
    workers: set[int] = set()
    try:
        wait_until_up(process, base, tmp_path / f"server-{port}.log")
        settings = ServerSettings(home=tmp_path, secret_key=SECRET_KEY)
        key = asyncio.run(create_agent(settings))
        auth = {"Authorization": f"Bearer {key}", "Connection": "close"}

        # Concurrent requests over fresh connections until both workers have answered (the
        # second may still be importing the app when the first answers, on a busy machine).
        answers: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        with ThreadPoolExecutor(8) as pool:
            while len({answer["pid"] for answer in answers}) < 2 and time.monotonic() < deadline:
                answers += pool.map(fresh_get, [f"{base}/healthz/worker"] * 16)
            checks = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{base}/v1/tools/check_availability", json={"date": "tomorrow"}, headers=auth, timeout=20
                    ),
                    range(16),
                )
            )
        workers = {answer["pid"] for answer in answers}
        assert len(workers) == 2, f"one process answered everything: {answers[:3]}"
        assert all(parent_of(pid) == process.pid for pid in workers)
        assert [response.status_code for response in checks] == [200] * 16, checks[0].text
        # The workers only start post-call workflows, each under an executor id no other process has.
        by_pid = {answer["pid"]: answer for answer in answers}
        assert {answer["postcall"] for answer in by_pid.values()} == {"enqueue"}
        assert len({answer["executor_id"] for answer in by_pid.values()}) == 2

        # A call reported to a worker is synced by the engine in the parent.
        report = {"call_id": "two-workers-1", "customer_phone": "+12125550142", "summary": "Asked about hours."}
        assert httpx.post(f"{base}/v1/calls", json=report, headers=auth, timeout=20).status_code == 200
        deadline = time.monotonic() + 30
        while (record := httpx.get(f"{base}/v1/calls/two-workers-1", headers=auth, timeout=20).json())[
            "sync_status"
        ] not in ("synced", "failed"):
            assert time.monotonic() < deadline, f"the call was never synced: {record}"
            time.sleep(0.1)
        assert record["sync_status"] == "synced", record

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        seconds = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    # Two shutdowns in turn: the workers' (in parallel), then the parent's post-call engine.
    assert seconds < 12, f"the server took {seconds:.1f} s to stop"
    assert process.returncode == 0
    assert not [pid for pid in workers if alive(pid)], "a worker outlived its parent"


def test_more_than_one_worker_is_refused_while_the_sandbox_emulators_are_mounted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = subprocess.run(
        [TOOL_SERVER, "serve", "--workers", "2", "--port", str(free_port())],
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert refused.returncode == 2, refused.stderr
    assert "TOOL_SERVER_SANDBOX=false" in refused.stderr
    assert not (home / "tool_server.db").exists(), "refused after migrating"


def test_a_worker_count_below_one_is_refused_by_the_parser(tmp_path: Path) -> None:
    refused = subprocess.run(
        [TOOL_SERVER, "serve", "--workers", "0"], env=server_env(tmp_path), capture_output=True, text=True, timeout=60
    )

    assert refused.returncode == 2
    assert "must be at least 1" in refused.stderr
