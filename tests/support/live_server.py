"""A real `tool-server serve` process on 127.0.0.1, and a probe process that times it from outside.

Hostile-input tests need the server as it runs in production: its own process, its own event
loop, uvicorn in front. The probe runs in a third process so that the test's own CPU work
(building megabyte payloads) never shows up in the latencies it reports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tool_server.agents import Connection
from tool_server.agents.sandbox import sandbox_connections
from tool_server.services import Services
from tool_server.settings import ServerSettings

TOOL_SERVER = str(Path(sys.executable).parent / "tool-server")
# Obviously fake; only seals this test's credentials.
SECRET_KEY = "test-live-server-key-not-for-production"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(home: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOOL_SERVER_")}
    env.update(
        {"TOOL_SERVER_HOME": str(home), "TOOL_SERVER_SECRET_KEY": SECRET_KEY, "TOOL_SERVER_LOG_LEVEL": "warning"}
    )
    env.update({f"TOOL_SERVER_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> float:
        """SIGTERM, then the seconds until the process exited (killed after 30 s)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started


@contextmanager
def live_server(home: Path, *, port: int | None = None, **settings: str) -> Iterator[LiveServer]:
    """`tool-server serve` on `port` (a free one by default) with `home` as its data home; stopped on exit."""
    port = port or free_port()
    log = home / f"server-{port}.log"
    env = server_env(home, public_url=f"http://127.0.0.1:{port}", **settings)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [TOOL_SERVER, "serve", "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"tool-server serve exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"tool-server serve did not come up:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


async def create_sandbox_calendar_agent(settings: ServerSettings) -> str:
    """An agent whose calendar is the Google Calendar emulator at `settings.public_url` (sealed
    secrets) and whose contacts are the built-in book; returns its API key."""
    services = Services.build(settings)
    try:
        wired = sandbox_connections(services.providers, settings.public_url)
        contacts = services.providers.validate(Connection(capability="crm", provider="contact_book"))
        connections = [connection for connection, _ in wired if connection.capability == "calendar"] + [contacts]
        secrets = {connection.capability: secret for connection, secret in wired if connection.capability == "calendar"}
        created = await services.agents.create(
            "Restart Dental", timezone="America/New_York", phone_region="US", connections=connections, secrets=secrets
        )
        return created.api_key
    finally:
        await services.aclose()


_PROBE = r"""
import json, os, sys, time, httpx
base, key, ready_file, stop_file = sys.argv[1:5]
latencies = {"check_availability": [], "healthz": []}
warm_up = 5
with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
    while not os.path.exists(stop_file):
        started = time.perf_counter()
        response = client.post("/v1/tools/check_availability", json={"date": "tomorrow"})
        availability = (time.perf_counter() - started, response.status_code)
        started = time.perf_counter()
        response = client.get("/healthz")
        health = (time.perf_counter() - started, response.status_code)
        if warm_up:
            warm_up -= 1
            if not warm_up:
                open(ready_file, "w").close()
            continue
        latencies["check_availability"].append(availability)
        latencies["healthz"].append(health)
        time.sleep(0.005)
print(json.dumps(latencies))
"""


@dataclass
class ProbeReport:
    """What the probe saw: (seconds, status) per request, per route."""

    latencies: dict[str, list[tuple[float, int]]]

    def slowest(self, route: str) -> float:
        return max(seconds for seconds, _ in self.latencies[route])

    def statuses(self, route: str) -> set[int]:
        return {status for _, status in self.latencies[route]}

    def count(self, route: str) -> int:
        return len(self.latencies[route])


@contextmanager
def latency_probe(base: str, api_key: str, workdir: Path) -> Iterator[list[ProbeReport]]:
    """Call check_availability and /healthz in a loop from another process while the block runs.

    The block starts once the probe has warmed up (a fresh connection, first-use imports in the
    server: those calls are not reported). The report is appended to the yielded list at the end.
    """
    stamp = time.monotonic_ns()
    ready_file, stop_file = workdir / f"probe-ready-{stamp}", workdir / f"probe-stop-{stamp}"
    process = subprocess.Popen(
        [sys.executable, "-c", _PROBE, base, api_key, str(ready_file), str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reports: list[ProbeReport] = []
    try:
        deadline = time.monotonic() + 30
        while not ready_file.exists():
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "the latency probe did not warm up"
            time.sleep(0.02)
        yield reports
    finally:
        stop_file.write_text("stop")
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        raw: dict[str, list[list[Any]]] = json.loads(out)
        reports.append(ProbeReport({route: [(float(s), int(c)) for s, c in values] for route, values in raw.items()}))
