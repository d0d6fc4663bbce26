#!/usr/bin/env python3
"""Benchmark check_availability and book_appointment over HTTP and MCP against same-run baselines.

Three servers run as separate uvicorn processes with identical settings, each on its own SQLite
file and agent (built-in calendar, 08:00-20:00 every day, 15-minute slots):

  ours      the tool server: HTTP function calling (/v1/tools/...) and MCP (/mcp), full dispatch
  bare      a bare FastAPI route calling the same built-in provider function, no dispatch
  sdk       the MCP SDK's own minimal server (MCPServer, stateless, JSON responses) calling it too

A small raw-socket HTTP/1.1 client drives them over keep-alive connections: latency (p50, p99)
from one sequential connection, throughput from several concurrent ones. Every response is
checked for success, so an error path is never measured by mistake. Each figure is the median
of --repeats runs, with the servers interleaved within each run.

`tool-server serve --workers 1` and `--workers 2` are measured side by side too (check_availability
throughput over HTTP, connections spread evenly over the worker processes).

Usage: .venv/bin/python scripts/bench_tools.py [--repeats 3] [--quick] [--no-write] [--no-workers | --workers-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sections import replace_section  # noqa: E402

ZONE = "America/New_York"
CALENDAR_SETTINGS = {
    "weekly_hours": {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "slot_minutes": 15,
    "min_notice_minutes": 0,
    "horizon_days": 1000,
}
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
}
MCP_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
}


# --------------------------------------------------------------------------------------------
# Servers (run in child processes: `bench_tools.py serve KIND ...`)
# --------------------------------------------------------------------------------------------


def _calendar(database_url: str, agent_id: str) -> Any:
    from tool_server.builtin import LocalCalendar, LocalCalendarSettings
    from tool_server.clock import system_clock
    from tool_server.store.database import Database

    rules = LocalCalendarSettings.model_validate(CALENDAR_SETTINGS).rules(ZONE)
    return LocalCalendar(Database(database_url), agent_id, rules, system_clock)


def _day_window(day: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(ZONE)
    first = date.fromisoformat(day)
    start = max(datetime.combine(first, dtime(0), tzinfo=zone), datetime.now(UTC))
    return start, datetime.combine(first + timedelta(days=1), dtime(0), tzinfo=zone)


def _booking_request(start: str, caller_name: str, caller_phone: str) -> Any:
    from integrations.capabilities import BookingRequest

    begin = datetime.fromisoformat(start)
    return BookingRequest(
        start=begin,
        end=begin.astimezone(UTC) + timedelta(minutes=15),
        attendee_name=caller_name,
        attendee_phone=caller_phone,
    )


class CheckBody(BaseModel):
    date: str


class BookBody(BaseModel):
    start: str
    caller_name: str
    caller_phone: str


def bare_app(database_url: str, agent_id: str) -> Any:
    from fastapi import FastAPI

    calendar = _calendar(database_url, agent_id)
    app = FastAPI()

    @app.post("/check_availability")
    async def check(body: CheckBody) -> dict[str, Any]:
        slots = await calendar.free_slots(*_day_window(body.date), timedelta(minutes=15))
        return {"slots": [slot.model_dump(mode="json") for slot in slots]}

    @app.post("/book_appointment")
    async def book(body: BookBody) -> dict[str, Any]:
        appointment = await calendar.book(_booking_request(body.start, body.caller_name, body.caller_phone))
        return {"appointment": appointment.model_dump(mode="json")}

    return app


def sdk_app(database_url: str, agent_id: str) -> Any:
    import contextlib

    from fastapi import FastAPI
    from mcp.server import MCPServer

    calendar = _calendar(database_url, agent_id)
    server = MCPServer("bench-sdk")

    @server.tool()
    async def check_availability(date: str) -> dict[str, Any]:
        """Free slots on a day."""
        slots = await calendar.free_slots(*_day_window(date), timedelta(minutes=15))
        return {"slots": [slot.model_dump(mode="json") for slot in slots]}

    @server.tool()
    async def book_appointment(start: str, caller_name: str, caller_phone: str) -> dict[str, Any]:
        """Book a slot."""
        appointment = await calendar.book(_booking_request(start, caller_name, caller_phone))
        return {"appointment": appointment.model_dump(mode="json")}

    mcp_app = server.streamable_http_app(json_response=True, stateless_http=True)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        async with server.session_manager.run():
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/", mcp_app)
    return app


def ours_app(database_url: str, _agent_id: str) -> Any:
    from tool_server.app import create_app
    from tool_server.settings import ServerSettings

    return create_app(ServerSettings(database_url=database_url, log_level="warning"))


def serve(kind: str, database_url: str, agent_id: str, port: int) -> None:
    import uvicorn

    factories: dict[str, Callable[[str, str], Any]] = {"bare": bare_app, "sdk": sdk_app, "ours": ours_app}
    app = factories[kind](database_url, agent_id)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------


async def make_agent(database_url: str, home: Path | None = None) -> tuple[str, str]:
    from tool_server.agents import Connection
    from tool_server.services import Services
    from tool_server.settings import ServerSettings
    from tool_server.store.migrate import upgrade_database

    upgrade_database(database_url)
    settings = ServerSettings(database_url=database_url)
    if home is not None:
        # The generated key goes there too, not under the user's own data home.
        settings = ServerSettings(database_url=database_url, home=home)
    services = Services.build(settings)
    try:
        created = await services.agents.create(
            "Bench",
            timezone=ZONE,
            phone_region="US",
            connections=[
                services.providers.validate(
                    Connection(capability="calendar", provider="local_calendar", settings=CALENDAR_SETTINGS)
                ),
                Connection(capability="crm", provider="contact_book"),
            ],
        )
    finally:
        await services.aclose()
    return created.agent.id, created.api_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    kind: str
    port: int
    api_key: str
    process: subprocess.Popen[bytes]


def start_server(kind: str, workdir: Path) -> Server:
    database_url = f"sqlite:///{workdir / kind}.db"
    agent_id, api_key = asyncio.run(make_agent(database_url))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "serve", kind, database_url, agent_id, str(port)],
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Server(kind, port, api_key, process)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} server exited with {process.returncode}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{kind} server did not start")


def start_cli_server(workers: int, workdir: Path) -> Server:
    """`tool-server serve --workers N` as shipped, on its own data home (sandbox emulators off: with
    more than one worker they are refused; off for one worker too, so the two differ only in N)."""
    home = workdir / f"workers-{workers}"
    database_url = f"sqlite:///{home / 'tool_server.db'}"
    home.mkdir(parents=True)
    _agent_id, api_key = asyncio.run(make_agent(database_url, home))
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TOOL_SERVER_")}
    env |= {"TOOL_SERVER_HOME": str(home), "TOOL_SERVER_SANDBOX": "false", "TOOL_SERVER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("tool-server")), "serve", "--workers", str(workers), "--port", str(port)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    # Every worker is a fresh interpreter importing the app: wait until each has answered.
    deadline = time.monotonic() + 180
    seen: set[int] = set()
    while len(seen) < workers:
        if process.poll() is not None:
            raise RuntimeError(f"serve --workers {workers} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve --workers {workers} did not start")
        try:
            seen.add(asyncio.run(worker_pid(port)))
        except (OSError, ValueError):
            time.sleep(0.2)
    return Server(f"workers-{workers}", port, api_key, process)


def stop(server: Server) -> None:
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# The client: raw HTTP/1.1 over keep-alive sockets, so client cost is small and identical
# --------------------------------------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = b""
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            if size == 0:
                await self.reader.readline()
                return status, body
            body += await self.reader.readexactly(size)
            await self.reader.readline()

    def close(self) -> None:
        self.writer.close()


async def worker_pid(port: int, connection: Connection | None = None) -> int:
    """The pid of the `serve` process answering on `connection` (a fresh one by default)."""
    own = connection is None
    connection = connection or await Connection.open(port)
    try:
        raw = f"GET /healthz/worker HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        status, body = await connection.send(raw)
        if status != 200:
            raise ValueError(f"/healthz/worker answered {status}")
        return int(json.loads(body)["pid"])
    finally:
        if own:
            connection.close()


async def open_spread(port: int, connections: int, workers: int) -> tuple[list[Connection], list[int]]:
    """`connections` keep-alive connections, as evenly spread over the workers as a load balancer
    would: the kernel hands a burst of new connections to whichever worker wakes first, so a
    connection landing on a worker that already has its share is closed and opened again (up to
    50 times; the spread actually reached is returned with the connections)."""
    share = -(-connections // workers)
    opened: list[Connection] = []
    pids: list[int] = []
    attempts = 0
    while len(opened) < connections:
        connection = await Connection.open(port)
        pid = await worker_pid(port, connection)
        attempts += 1
        if pids.count(pid) >= share and attempts < 50:
            connection.close()
            continue
        opened.append(connection)
        pids.append(pid)
    return opened, pids


def http_request(port: int, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass(frozen=True)
class Target:
    """One way of running one tool: which server, which path, how to build and check a request."""

    label: str
    server: str
    tool: str
    protocol: str  # "http" or "mcp"

    def build(self, port: int, api_key: str, arguments: dict[str, Any], request_id: int) -> bytes:
        auth = {"Authorization": f"Bearer {api_key}"} if self.server == "ours" else {}
        if self.protocol == "http":
            path = f"/v1/tools/{self.tool}" if self.server == "ours" else f"/{self.tool}"
            return http_request(port, path, arguments, auth)
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": self.tool, "arguments": arguments, "_meta": MCP_META},
        }
        return http_request(port, "/mcp", body, {**MCP_HEADERS, "Mcp-Name": self.tool, **auth})

    def check(self, status: int, body: bytes) -> None:
        if status != 200 or b'"isError":true' in body or b'"error"' in body[:20]:
            raise RuntimeError(f"{self.label}: unexpected answer {status} {body[:300]!r}")


class SlotFeed:
    """An endless supply of distinct 15-minute starts, per server (each server has its own calendar)."""

    def __init__(self, first_day: date) -> None:
        self._first_day = first_day
        self._positions: dict[str, int] = {}

    def next_start(self, server: str) -> datetime:
        position = self._positions.get(server, 0)
        self._positions[server] = position + 1
        day = self._first_day + timedelta(days=position // 48)
        local = datetime.combine(day, dtime(8), tzinfo=ZoneInfo(ZONE)) + timedelta(minutes=15 * (position % 48))
        return local


def arguments_for(target: Target, feed: SlotFeed, check_day: str, index: int) -> dict[str, Any]:
    if target.tool == "check_availability":
        return {"date": check_day}
    return {
        "start": feed.next_start(target.server).isoformat(),
        "caller_name": f"Caller {index}",
        "caller_phone": f"+1212555{index % 10000:04d}",
    }


async def latency_run(
    target: Target, server: Server, feed: SlotFeed, check_day: str, warmup: int, count: int
) -> list[float]:
    connection = await Connection.open(server.port)
    samples: list[float] = []
    try:
        for index in range(warmup + count):
            raw = target.build(server.port, server.api_key, arguments_for(target, feed, check_day, index), index)
            started = time.perf_counter()
            status, body = await connection.send(raw)
            elapsed = time.perf_counter() - started
            target.check(status, body)
            if index >= warmup:
                samples.append(elapsed * 1000)
    finally:
        connection.close()
    return samples


async def throughput_run(
    target: Target,
    server: Server,
    feed: SlotFeed,
    check_day: str,
    connections: int,
    per_connection: int,
    spread: list[int] | None = None,
    workers: int = 1,
) -> float:
    """Calls per second over `connections` keep-alive connections; with `spread`, the connections
    are spread over `workers` processes first and the pid behind each is appended to it."""
    requests = [
        [
            target.build(server.port, server.api_key, arguments_for(target, feed, check_day, c * 100000 + i), i)
            for i in range(per_connection)
        ]
        for c in range(connections)
    ]
    if spread is None:
        opened = [await Connection.open(server.port) for _ in range(connections)]
    else:
        opened, pids = await open_spread(server.port, connections, workers)
        spread += pids

    async def drive(connection: Connection, batch: list[bytes]) -> None:
        for raw in batch:
            status, body = await connection.send(raw)
            target.check(status, body)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(drive(c, batch) for c, batch in zip(opened, requests, strict=True)))
    finally:
        for connection in opened:
            connection.close()
    return connections * per_connection / (time.perf_counter() - started)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


TARGETS = [
    Target("bare FastAPI route (baseline)", "bare", "check_availability", "http"),
    Target("tool server, HTTP", "ours", "check_availability", "http"),
    Target("MCP SDK minimal server (baseline)", "sdk", "check_availability", "mcp"),
    Target("tool server, MCP", "ours", "check_availability", "mcp"),
    Target("bare FastAPI route (baseline)", "bare", "book_appointment", "http"),
    Target("tool server, HTTP", "ours", "book_appointment", "http"),
    Target("MCP SDK minimal server (baseline)", "sdk", "book_appointment", "mcp"),
    Target("tool server, MCP", "ours", "book_appointment", "mcp"),
]


async def idempotency_cost(workdir: Path, count: int) -> tuple[float, float]:
    """Median ms of one idempotency claim and one completion, alone, on a SQLite file like the servers'."""
    from tool_server.dispatch.idempotency import Claim, IdempotencyStore
    from tool_server.store.database import Database
    from tool_server.store.migrate import upgrade_database
    from tool_server.store.tables import AgentRow

    url = f"sqlite:///{workdir / 'idempotency'}.db"
    upgrade_database(url)
    db = Database(url)
    now = datetime.now(UTC)
    await db.run(
        lambda session: session.add(
            AgentRow(id="agt_bench", name="b", timezone=ZONE, phone_region="US", created_at=now, booking_seq=0)
        )
    )
    store = IdempotencyStore(db, lambda: datetime.now(UTC), ttl=timedelta(hours=1), ttl_without_call=timedelta(hours=1))
    outcome = {"tool": "book_appointment", "result": {"speech": "x" * 60, "appointment": {"id": "apt_" + "0" * 20}}}
    claims, completions = [], []
    try:
        for index in range(count):
            started = time.perf_counter()
            claim = await store.begin(
                "agt_bench", f"k{index}", "book_appointment", "h", scoped=True, hold=timedelta(seconds=15)
            )
            claimed = time.perf_counter()
            assert isinstance(claim, Claim)
            await store.complete(claim, outcome)
            claims.append((claimed - started) * 1000)
            completions.append((time.perf_counter() - claimed) * 1000)
    finally:
        await db.dispose()
    return statistics.median(claims), statistics.median(completions)


@dataclass
class Figures:
    p50: float
    p99: float
    rps: float


def run_benchmark(
    repeats: int, warmup: int, count: int, connections: int, per_connection: int
) -> dict[Target, Figures]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    servers = {kind: start_server(kind, workdir) for kind in ("bare", "ours", "sdk")}
    today = datetime.now(ZoneInfo(ZONE)).date()
    feed = SlotFeed(today + timedelta(days=30))
    check_day = (today + timedelta(days=10)).isoformat()
    runs: dict[Target, list[Figures]] = {target: [] for target in TARGETS}
    try:
        for repeat in range(repeats):
            order = TARGETS if repeat % 2 == 0 else list(reversed(TARGETS))
            for target in order:
                server = servers[target.server]
                samples = asyncio.run(latency_run(target, server, feed, check_day, warmup, count))
                rps = asyncio.run(throughput_run(target, server, feed, check_day, connections, per_connection))
                runs[target].append(Figures(percentile(samples, 0.5), percentile(samples, 0.99), rps))
                print(
                    f"  run {repeat + 1}/{repeats} {target.tool:<19} {target.label:<34} "
                    f"p50 {runs[target][-1].p50:6.2f} ms  p99 {runs[target][-1].p99:6.2f} ms  {rps:7.0f} req/s",
                    flush=True,
                )
    finally:
        for server in servers.values():
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        target: Figures(
            statistics.median(f.p50 for f in figures),
            statistics.median(f.p99 for f in figures),
            statistics.median(f.rps for f in figures),
        )
        for target, figures in runs.items()
    }


WORKERS_TARGET = Target("tool server, HTTP", "ours", "check_availability", "http")


@dataclass
class WorkersFigures:
    """check_availability throughput of `serve --workers N` (median req/s), with the spread of the
    last run's connections over the worker processes."""

    rps: dict[int, float]
    spread: dict[int, list[int]]


def run_workers_pair(
    repeats: int, connections: int, per_connection: int, counts: tuple[int, ...] = (1, 2)
) -> WorkersFigures:
    workdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    servers = {workers: start_cli_server(workers, workdir) for workers in counts}
    today = datetime.now(ZoneInfo(ZONE)).date()
    feed = SlotFeed(today + timedelta(days=30))
    check_day = (today + timedelta(days=10)).isoformat()
    runs: dict[int, list[float]] = {workers: [] for workers in counts}
    spread: dict[int, list[int]] = {}
    try:
        for workers, server in servers.items():
            # Warm-up: first-use imports and caches in every worker.
            warm: list[int] = []
            asyncio.run(throughput_run(WORKERS_TARGET, server, feed, check_day, connections, 20, warm, workers))
        for repeat in range(repeats):
            order = counts if repeat % 2 == 0 else tuple(reversed(counts))
            for workers in order:
                pids: list[int] = []
                rps = asyncio.run(
                    throughput_run(
                        WORKERS_TARGET, servers[workers], feed, check_day, connections, per_connection, pids, workers
                    )
                )
                runs[workers].append(rps)
                spread[workers] = sorted(pids.count(pid) for pid in set(pids))
                print(
                    f"  run {repeat + 1}/{repeats} check_availability serve --workers {workers:<2} "
                    f"{rps:7.0f} req/s  connections per worker {spread[workers]}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return WorkersFigures({workers: statistics.median(values) for workers, values in runs.items()}, spread)


def workers_report(figures: WorkersFigures, args: argparse.Namespace) -> list[str]:
    """The `serve --workers` lines of the report (part of the tools section)."""
    lines = [
        "",
        "### serve --workers (check_availability over HTTP)",
        "",
        "`tool-server serve --workers N` as shipped (SQLite, default post-call engine in the parent, sandbox "
        f"emulators off), {args.connections} keep-alive connections x {args.per_connection} calls, spread evenly "
        "over the worker processes (the kernel gives a burst of new connections to whichever worker wakes first, "
        "so a connection that lands on a worker that has its share already is opened again, as a load balancer "
        f"would spread them). Median of {args.repeats} interleaved runs. The client is one Python process on the "
        "same cores as the servers.",
        "",
        "| workers | req/s | connections per worker |",
        "|---:|---:|---|",
    ]
    for workers, rps in figures.rps.items():
        lines.append(f"| {workers} | {rps:.0f} | {' / '.join(str(n) for n in figures.spread.get(workers, []))} |")
    if 1 in figures.rps and 2 in figures.rps:
        lines += ["", f"`serve --workers 2` over `--workers 1`: {figures.rps[2] / figures.rps[1]:.2f}x."]
    return lines


def report(
    results: dict[Target, Figures],
    idempotency: tuple[float, float],
    args: argparse.Namespace,
    workers: WorkersFigures | None = None,
) -> str:
    def find(server: str, tool: str, protocol: str) -> Figures:
        return next(f for t, f in results.items() if (t.server, t.tool, t.protocol) == (server, tool, protocol))

    lines = [
        "## Tool calls",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/bench_tools.py` on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}. "
        "Client and servers share the machine; every server is one uvicorn process (h11, no access log).",
        "",
        f"Latency: one keep-alive connection, {args.warmup} warm-up then {args.count} sequential calls. "
        f"Throughput: {args.connections} keep-alive connections x {args.per_connection} calls. "
        f"Each figure is the median of {args.repeats} interleaved runs. The built-in calendar runs on SQLite "
        "(WAL); every booking takes a fresh 15-minute slot.",
        "",
        "| tool | server | p50 ms | p99 ms | req/s |",
        "|---|---|---:|---:|---:|",
    ]
    for target, figures in results.items():
        lines.append(f"| {target.tool} | {target.label} | {figures.p50:.2f} | {figures.p99:.2f} | {figures.rps:.0f} |")
    lines += ["", "### Ratios (same run)", "", "| tool | measure | ratio | aim | met |", "|---|---|---:|---:|---|"]
    verdicts = []
    for tool in ("check_availability", "book_appointment"):
        http_ratio = find("ours", tool, "http").p50 / find("bare", tool, "http").p50
        mcp_ratio = find("ours", tool, "mcp").rps / find("sdk", tool, "mcp").rps
        verdicts += [http_ratio <= 1.5, mcp_ratio >= 0.9]
        lines.append(
            f"| {tool} | HTTP p50, tool server / bare route | {http_ratio:.2f}x | <= 1.5x | "
            f"{'yes' if http_ratio <= 1.5 else 'no'} |"
        )
        lines.append(
            f"| {tool} | MCP throughput, tool server / SDK minimal server | {mcp_ratio:.2f}x | >= 0.9x | "
            f"{'yes' if mcp_ratio >= 0.9 else 'no'} |"
        )
    claim_ms, complete_ms = idempotency
    book_gap = find("ours", "book_appointment", "http").p50 - find("bare", "book_appointment", "http").p50
    lines += [
        "",
        "What the baselines leave out and the tool server does on every call: API-key authentication "
        "(cached for a few seconds), argument validation with phone normalization, the deadline, the audit "
        "record (batched off the request path), the spoken result, and for writes the idempotency claim "
        "and its completion.",
        "",
        f"Measured alone in the same run, one idempotency claim takes {claim_ms:.2f} ms and its completion "
        f"{complete_ms:.2f} ms (median, SQLite file, one worker thread hop each): "
        f"{claim_ms + complete_ms:.2f} ms of the {book_gap:.2f} ms by which a booking over HTTP exceeds the "
        "bare route at p50. They are two durable writes the baselines never make; on SQLite, whose writers "
        "take turns, they also cap booking throughput. Reads pay neither.",
        "",
    ]
    if workers is not None:
        lines += workers_report(workers, args)
    lines += [
        "",
        "Reproduce with `.venv/bin/python scripts/bench_tools.py` (after `scripts/test` or `scripts/demo` "
        "has created `.venv`).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("serve")
    for name in ("kind", "database_url", "agent_id", "port"):
        child.add_argument(name)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--per-connection", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--no-workers", action="store_true", help="skip the serve --workers 1 / 2 pair")
    parser.add_argument(
        "--workers-only", action="store_true", help="only the serve --workers 1 / 2 pair, printed (nothing written)"
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.kind, args.database_url, args.agent_id, int(args.port))
        return 0
    if args.quick:
        args.repeats, args.warmup, args.count, args.connections, args.per_connection = 1, 5, 20, 2, 10
    if args.workers_only:
        figures = run_workers_pair(args.repeats, args.connections, args.per_connection)
        print("\n".join(workers_report(figures, args)))
        return 0
    results = run_benchmark(args.repeats, args.warmup, args.count, args.connections, args.per_connection)
    workers = None if args.no_workers else run_workers_pair(args.repeats, args.connections, args.per_connection)
    with tempfile.TemporaryDirectory(prefix="bench-idempotency-") as scratch:
        idempotency = asyncio.run(idempotency_cost(Path(scratch), max(args.count, 50)))
    text = report(results, idempotency, args, workers)
    print()
    print(text)
    if not args.no_write:
        replace_section(Path(args.output), "tools", text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
