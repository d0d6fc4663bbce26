"""Soak test: post-call records and live tool calls over minutes, on PostgreSQL, with three
`tool-server serve` processes, three `tool-server worker` processes, provider faults and a
worker SIGKILLed every minute. It ends by counting, from the emulators' own state, what was lost
and what was done twice.

Set-up (everything on 127.0.0.1, in temp folders, stopped at the end):

- a private PostgreSQL (`tests/support/postgres.py`), migrated once here;
- the HubSpot, Google Calendar and Twilio emulators, served from this process as
  `scripts/bench_postcall.py` serves them, with `--fault-rate` (10%) of their provider requests
  answered by an injected fault through the sandbox Fault API: a 5xx, a 429 with Retry-After, or
  an answer 2 s late;
- three separate `tool-server serve` processes, each on its own port with `postcall=enqueue`
  and an executor id of its own: they record calls and start post-call workflows but run none,
  so every workflow runs on the workers below, the processes that get killed. (`serve --workers
  3` would put the engine in the parent, a fourth runner nobody kills, and leave the spread of
  requests to the kernel; separate ports let the load go round-robin, request by request.)
- three `tool-server worker --id ...` processes sharing the database. Every `--kill-every`
  seconds (first at half that) one of them, in turn, is SIGKILLed and started again: alternately
  under the same id and under a new one, so both the restart of an id and the takeover of a dead
  id by the other live workers (`tool_server/postcall/liveness.py`) are exercised. A worker that
  exits on its own (a fenced one exits 75) is started again too, as a supervisor would.

Load, spread evenly over `--minutes`:

- `--calls` finished calls POSTed to `/v1/calls` (the flat call-completed shape), each asking
  for an appointment, so each is synced to a HubSpot contact + note + call, a calendar event and
  a confirmation SMS; a share is delivered twice (to another server), as platforms redeliver
  webhooks, and a failed delivery is retried as a platform would;
- `--tool-calls` HTTP function calls (`/v1/tools/<name>`), round-robin over the servers:
  check_availability, book_appointment, send_sms and create_contact, each write under an
  Idempotency-Key; a share of the writes is sent again under the same key, either at the same
  moment to the next server (a race) or two seconds later.

At the end it waits (bounded) for every record to settle and counts:
- lost: records not synced; for synced records, a contact, note, event or SMS missing from
  the emulators; a tool write answered 200 whose contact, event or message is not there;
- duplicated: more than one contact per phone, note or call activity per call, event per
  requested slot or booking key, SMS per call or per key.

Exit status 1 if either is non-zero. Usage:
    .venv/bin/python scripts/soak.py [--minutes 10] [--calls 1000] [--tool-calls 5000]
        [--fault-rate 0.1] [--kill-every 60] [--settle-seconds 600] [--no-write] [--keep-logs DIR]
A smoke run: --minutes 1 --calls 100 --tool-calls 500 --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_postcall import PROVIDERS, launched  # noqa: E402
from bench_sections import replace_section  # noqa: E402

from integrations.common.sandbox import Fault, Sandbox  # noqa: E402
from integrations.registry import INTEGRATIONS  # noqa: E402
from tests.support.loopback import serve_on_loopback  # noqa: E402
from tests.support.postcall import (  # noqa: E402
    SECRET_KEY,
    ZONE,
    Workers,
    batch_calls,
    record_statuses,
    worker_env,
)
from tests.support.postgres import find_server_binaries, running_postgres  # noqa: E402
from tests.support.sandbox_server import ServedSandboxes  # noqa: E402
from tool_server.agents import Connection  # noqa: E402
from tool_server.postcall.followups import FollowUps  # noqa: E402
from tool_server.services import Services  # noqa: E402
from tool_server.settings import ServerSettings  # noqa: E402
from tool_server.store.migrate import upgrade_database  # noqa: E402
from tool_server.store.tables import CallRecordRow  # noqa: E402

SERVERS = 3
WORKERS = 3
# Share of writes sent a second time under the same Idempotency-Key, and of call records delivered twice.
RETRY_SHARE = 0.15
REDELIVERY_SHARE = 0.05
LATER_RETRY_SECONDS = 2.0
SLOW_SECONDS = 2.0
# The tool path books far from the post-call bookings (weekdays from the day after tomorrow,
# batch_calls): every day from this many days ahead, 08:00-19:30, so the two never collide.
TOOL_BOOKING_FIRST_DAY = 150
OPEN_EVERY_DAY = {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
# tests/support/live_server.py has both, but importing it brings a module mypy faults into this check.
TOOL_SERVER = str(Path(sys.executable).parent / "tool-server")
TAKEOVER_LINE = re.compile(r"post-call executor (\S+) is gone: (\d+) of its workflows")


# --------------------------------------------------------------------------------------------
# Emulators with injected faults
# --------------------------------------------------------------------------------------------


@dataclass
class FaultMix:
    """Before `rate` of an emulator's provider requests, inject one fault through the Fault API.

    The fault (`times=1`) is the next one the emulator takes, so it lands on this request or, when
    requests overlap, on one next to it: either way `rate` of the requests are faulted. Control
    routes and the emulator's exempt paths (token endpoints) never are.
    """

    sandbox: Sandbox
    rate: float
    rng: random.Random
    slow_seconds: float = SLOW_SECONDS
    injected: Counter[str] = field(default_factory=Counter)

    def pick(self) -> Fault:
        roll = self.rng.random()
        if roll < 0.4:
            return Fault(kind="server_error", status=self.rng.choice([500, 502, 503]))
        if roll < 0.7:
            return Fault(kind="rate_limit", retry_after=1.0)
        return Fault(kind="slow", seconds=self.slow_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            local = path[len(root) :] if root and path.startswith(root) else path
            exempt = local.startswith("/_") or any(local.startswith(p) for p in self.sandbox.exempt_paths)
            if not exempt and self.rng.random() < self.rate:
                fault = self.pick()
                self.sandbox.inject(fault)
                self.injected[fault.kind] += 1
        await self.sandbox(scope, receive, send)

    def taken(self) -> int:
        """Faults the emulator answered with (injected, less any still waiting at the end)."""
        return sum(self.injected.values()) - len(self.sandbox.faults)


@contextmanager
def faulty_emulators(rate: float, seed: int) -> Iterator[tuple[ServedSandboxes, dict[str, FaultMix]]]:
    sandboxes = {name: INTEGRATIONS[name].sandbox() for _capability, name in PROVIDERS}
    mixes = {name: FaultMix(sandbox, rate, random.Random(f"{seed}-{name}")) for name, sandbox in sandboxes.items()}
    app = Starlette(routes=[Mount(f"/sandbox/{name}", app=mix) for name, mix in mixes.items()])
    with serve_on_loopback(app, "soak-emulators") as base_url:
        yield ServedSandboxes(base_url, sandboxes), mixes


async def soak_agent(services: Services, served: ServedSandboxes) -> tuple[str, str]:
    """The agent every request acts for; (agent id, API key). Open every day, booking far ahead."""
    connections, secrets = [], {}
    for capability, provider in PROVIDERS:
        sandbox = INTEGRATIONS[provider].sandbox_connection(served.url(provider))
        settings = dict(sandbox.settings)
        if capability == "calendar":
            settings.update(weekly_hours=OPEN_EVERY_DAY, min_notice_minutes=0, horizon_days=1000)
        connection = Connection(capability=capability, provider=provider, settings=settings)
        connections.append(services.providers.validate(connection, sandbox.secrets))
        secrets[capability] = dict(sandbox.secrets)
    created = await services.agents.create(
        "Soak Dental", timezone=ZONE, phone_region="US", connections=connections, secrets=secrets
    )
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    return created.agent.id, created.api_key


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_servers(url: str, logs: Path, count: int) -> list[Server]:
    servers = []
    for index in range(1, count + 1):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = worker_env(
            url,
            home=str(logs / f"home-{index}"),
            postcall="enqueue",
            sandbox="false",
            postcall_executor_id=f"soak-http-{index}",
            public_url=base,
        )
        log = logs / f"server-{index}.log"
        with log.open("wb") as sink:
            command = [TOOL_SERVER, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        servers.append(Server(base, process, log))
    deadline = time.monotonic() + 180
    for server in servers:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"tool-server serve exited:\n{server.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{server.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tool-server serve did not come up:\n{server.log.read_text()[-3000:]}")
            time.sleep(0.2)
    return servers


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@dataclass
class Killer:
    """SIGKILLs one worker every `every` seconds, in turn, and starts it again (same id, then a new one)."""

    workers: Workers
    slots: list[str]
    every: float
    kills: int = 0
    self_exits: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def run(self, started: float, until: float) -> None:
        loop = asyncio.get_running_loop()
        next_kill = started + self.every / 2
        while loop.time() < until:
            self.supervise()
            if loop.time() >= next_kill:
                slot = self.kills % len(self.slots)
                victim = self.slots[slot]
                if victim in self.workers.processes:
                    await asyncio.to_thread(self.workers.kill, victim)
                reborn = victim if self.kills % 2 == 0 else f"soak-worker-{slot + 1}-r{self.kills + 1}"
                self.workers.start(reborn)
                self.slots[slot] = reborn
                self.kills += 1
                self.log.append(f"{loop.time() - started:6.1f}s SIGKILL {victim}, started {reborn}")
                print(self.log[-1], flush=True)
                next_kill += self.every
            await asyncio.sleep(0.5)

    def supervise(self) -> None:
        """Start again any worker that exited by itself (a fenced worker exits 75 for this)."""
        for worker_id, process in list(self.workers.processes.items()):
            code = process.poll()
            if code is not None:
                self.self_exits.append(f"{worker_id} exited {code}")
                print(f"worker {worker_id} exited by itself ({code}); starting it again", flush=True)
                self.workers.processes.pop(worker_id)
                self.workers.start(worker_id)


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


@dataclass
class ToolOp:
    index: int
    tool: str
    body: dict[str, Any]
    key: str | None
    at: float
    retry_of: int | None = None
    race: bool = False


@dataclass
class ToolOutcome:
    op: ToolOp
    server: int
    status: int
    seconds: float
    answer: dict[str, Any] | None
    replayed: bool


def tool_slots(first: date) -> Iterator[str]:
    """Local starts every day from `first`, 08:00-19:30 every 30 minutes."""
    day = first
    while True:
        for minutes in range(8 * 60, 20 * 60, 30):
            yield f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}"
        day += timedelta(days=1)


def plan_tool_calls(count: int, seconds: float, rng: random.Random, today: date) -> list[ToolOp]:
    """`count` requests spread over `seconds`: 30% availability checks, 30% bookings, 20% texts,
    20% new contacts; `RETRY_SHARE` of the writes sent again under the same key (counted in `count`)."""
    first = today + timedelta(days=TOOL_BOOKING_FIRST_DAY)
    slots = tool_slots(first)
    spacing = seconds / max(count, 1)
    ops: list[ToolOp] = []
    while len(ops) < count:
        index = len(ops)
        at = index * spacing
        roll = rng.random()
        if roll < 0.3:
            day = first + timedelta(days=rng.randrange(60))
            ops.append(ToolOp(index, "check_availability", {"date": day.isoformat(), "max_slots": 5}, None, at))
            continue
        if roll < 0.6:
            body = {
                "start": next(slots),
                "caller_name": f"Tool Caller {index:05d}",
                "caller_phone": f"+1312555{index:04d}",
            }
            op = ToolOp(index, "book_appointment", body, f"soak-book-{index:05d}", at)
        elif roll < 0.8:
            body = {"to": f"+1415555{index:04d}", "body": f"Soak {index:05d}: your appointment is confirmed."}
            op = ToolOp(index, "send_sms", body, f"soak-sms-{index:05d}", at)
        else:
            body = {"contact_name": f"New Caller {index:05d}", "contact_phone": f"+1646555{index:04d}"}
            op = ToolOp(index, "create_contact", body, f"soak-contact-{index:05d}", at)
        ops.append(op)
        if len(ops) < count and rng.random() < RETRY_SHARE:
            race = rng.random() < 0.5
            again = at if race else at + LATER_RETRY_SECONDS
            ops.append(ToolOp(len(ops), op.tool, op.body, op.key, again, retry_of=index, race=race))
    return ops


@dataclass
class Load:
    clients: list[httpx.AsyncClient]
    outcomes: list[ToolOutcome] = field(default_factory=list)
    record_posts: Counter[int] = field(default_factory=Counter)
    record_failures: list[str] = field(default_factory=list)
    records_accepted: set[str] = field(default_factory=set)

    async def tool_call(self, op: ToolOp) -> None:
        server = op.index % len(self.clients)
        headers = {"Idempotency-Key": op.key} if op.key else {}
        started = time.perf_counter()
        try:
            response = await self.clients[server].post(f"/v1/tools/{op.tool}", json=op.body, headers=headers)
            status, replayed = response.status_code, response.headers.get("Idempotent-Replayed") == "true"
            answer = (
                response.json() if response.headers.get("content-type", "").startswith("application/json") else None
            )
        except httpx.HTTPError:
            status, replayed, answer = 0, False, None
        self.outcomes.append(ToolOutcome(op, server, status, time.perf_counter() - started, answer, replayed))

    async def post_record(self, index: int, payload: dict[str, Any], delay: float = 0.0) -> None:
        """Deliver a call record as a platform does: retried (on the next server) until accepted."""
        await asyncio.sleep(delay)
        last = ""
        for attempt in range(8):
            client = self.clients[(index + attempt) % len(self.clients)]
            try:
                response = await client.post("/v1/calls", json=payload)
                self.record_posts[response.status_code] += 1
                if response.status_code == 200:
                    self.records_accepted.add(payload["call_id"])
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                self.record_posts[0] += 1
                last = repr(error)
            await asyncio.sleep(1 + attempt)
        self.record_failures.append(f"{payload['call_id']}: {last}")


async def run_schedule(items: list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]], started: float) -> None:
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    for at, make in sorted(items, key=lambda item: item[0]):
        delay = started + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make()))
    await asyncio.gather(*tasks)


# --------------------------------------------------------------------------------------------
# Counting from the emulators' state
# --------------------------------------------------------------------------------------------


def digits(phone: str | None) -> str:
    return re.sub(r"\D", "", phone or "")[-10:]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Tally:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def expect_one(self, what: str, count: int, *, required: bool = True) -> None:
        if count > 1:
            self.duplicated.append(f"{what}: {count}")
        elif count == 0 and required:
            self.lost.append(f"{what}: missing")


def count_state(
    served: ServedSandboxes, calls: list[dict[str, Any]], statuses: dict[str, str], outcomes: list[ToolOutcome]
) -> Tally:
    tally = Tally()
    hubspot = served.sandboxes["hubspot"].state.dump()
    calendar = served.sandboxes["google_calendar"].state.dump()
    twilio = served.sandboxes["twilio"].state.dump()

    contacts_by_phone: Counter[str] = Counter()
    contact_ids = set()
    for contact in hubspot["contacts"]:
        contact_ids.add(str(contact["id"]))
        for name in ("phone", "mobilephone"):
            if contact["properties"].get(name):
                contacts_by_phone[digits(contact["properties"][name])] += 1
                break
    note_bodies = [str(note["properties"].get("hs_note_body", "")) for note in hubspot["notes"]]
    call_titles = [str(call["properties"].get("hs_call_title", "")) for call in hubspot["calls"]]
    events = [event for cal in calendar["calendars"].values() for event in cal["events"]]
    live_events = [event for event in events if event.get("status") != "cancelled"]
    event_ids = {str(event["id"]) for event in live_events}
    events_at: Counter[datetime] = Counter(
        instant(event["start"]["dateTime"]) for event in live_events if "dateTime" in event.get("start", {})
    )
    messages = twilio["messages"]
    message_ids = {str(message["sid"]) for message in messages}
    texts_to: Counter[str] = Counter(digits(message.get("to")) for message in messages)
    texts_body: Counter[str] = Counter(str(message.get("body", "")) for message in messages)

    zone = ZoneInfo(ZONE)
    for payload in calls:
        call_id = payload["call_id"]
        synced = statuses.get(call_id) == "synced"
        if not synced:
            tally.lost.append(f"record {call_id}: {statuses.get(call_id, 'never recorded')}")
        phone = digits(payload["customer_phone"])
        tally.expect_one(f"contact for {call_id}", contacts_by_phone[phone], required=synced)
        tally.expect_one(
            f"note for {call_id}", sum(body.startswith(f"Call {call_id} ") for body in note_bodies), required=synced
        )
        tally.expect_one(
            f"call activity for {call_id}",
            sum(title.startswith(f"Call {call_id} ") for title in call_titles),
            required=synced,
        )
        asked = payload["appointment_requested"]
        start = datetime.fromisoformat(f"{asked['date']}T{asked['time']}").replace(tzinfo=zone)
        tally.expect_one(f"event for {call_id}", events_at[start], required=synced)
        tally.expect_one(f"confirmation SMS for {call_id}", texts_to[phone], required=synced)

    by_key: dict[str, list[ToolOutcome]] = {}
    for outcome in outcomes:
        if outcome.op.key is not None:
            by_key.setdefault(outcome.op.key, []).append(outcome)
    for key, tries in sorted(by_key.items()):
        op = tries[0].op
        answers = [t.answer for t in tries if t.status == 200 and t.answer is not None]
        if op.tool == "book_appointment":
            start = datetime.fromisoformat(op.body["start"]).replace(tzinfo=zone)
            tally.expect_one(f"event for {key}", events_at[start], required=False)
            ids = {a["appointment"]["appointment_id"] for a in answers}
            if len(ids) > 1:
                tally.duplicated.append(f"{key}: answered with {len(ids)} appointment ids")
            tally.lost += [f"{key}: event {i} answered but not in the calendar" for i in ids if i not in event_ids]
            if not answers and events_at[start]:
                tally.notes.append(f"{key}: every try failed, yet the event exists")
        elif op.tool == "send_sms":
            tally.expect_one(f"SMS for {key}", texts_body[op.body["body"]], required=False)
            ids = {a["message"]["message_id"] for a in answers}
            tally.lost += [f"{key}: message {i} answered but not sent" for i in ids if i not in message_ids]
            if not answers and texts_body[op.body["body"]]:
                tally.notes.append(f"{key}: every try failed, yet the text was sent")
        elif op.tool == "create_contact":
            tally.expect_one(f"contact for {key}", contacts_by_phone[digits(op.body["contact_phone"])], required=False)
            ids = {a["contact"]["contact_id"] for a in answers}
            tally.lost += [f"{key}: contact {i} answered but not in HubSpot" for i in ids if i not in contact_ids]
    return tally


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Figures:
    minutes: float
    calls: int
    tool_calls: int
    load_seconds: float
    settle_seconds: float
    records_per_second: float
    tools_per_second: float
    p50_ms: float
    p95_ms: float
    provider_requests: int
    faults: int
    faults_by_kind: dict[str, int]
    kills: int
    self_exits: list[str]
    takeovers: int
    takeover_workflows: int
    tool_statuses: dict[str, dict[int, int]]
    replays: int
    record_posts: dict[int, int]
    statuses: dict[str, int]
    tally: Tally
    error_samples: list[str]

    def lines(self) -> list[str]:
        tools = "; ".join(
            f"{tool} {', '.join(f'{status}: {n}' for status, n in sorted(codes.items()))}"
            for tool, codes in sorted(self.tool_statuses.items())
        )
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults_by_kind.items()))
        share = self.faults / self.provider_requests if self.provider_requests else 0.0
        return [
            f"call records: {self.calls} in {self.load_seconds:.0f} s, all settled {self.settle_seconds:.0f} s "
            f"after the load ended: {self.records_per_second:.2f} records/s; statuses {self.statuses}; "
            f"deliveries {dict(sorted(self.record_posts.items()))}",
            f"tool calls: {self.tool_calls} at {self.tools_per_second:.2f}/s, latency p50 {self.p50_ms:.0f} ms, "
            f"p95 {self.p95_ms:.0f} ms; {self.replays} answered as idempotent replays",
            f"tool answers by status: {tools}",
            f"provider faults injected: {self.faults} of {self.provider_requests} provider requests "
            f"({share:.1%}; injected {kinds})",
            f"workers SIGKILLed: {self.kills}; exited by themselves: {len(self.self_exits)}; takeovers in worker "
            f"logs: {self.takeovers} ({self.takeover_workflows} workflows put back on their queues)",
            f"lost: {len(self.tally.lost)}; duplicated: {len(self.tally.duplicated)}",
        ]


async def record_status_by_call(services: Services, agent_id: str) -> dict[str, str]:
    query = select(CallRecordRow.call_id, CallRecordRow.sync_status).where(CallRecordRow.agent_id == agent_id)
    rows = await services.db.run(lambda session: session.execute(query).all())
    return {str(call_id): str(status) for call_id, status in rows}


def schedule(
    load: Load, calls: list[dict[str, Any]], ops: list[ToolOp], seconds: float, rng: random.Random
) -> list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]]:
    """(when, request) for every call record delivery and tool call, spread over `seconds`."""
    items: list[tuple[float, Callable[[], Coroutine[Any, Any, None]]]] = []
    spacing = seconds / max(len(calls), 1)

    def deliver(index: int, payload: dict[str, Any], delay: float) -> Callable[[], Coroutine[Any, Any, None]]:
        return lambda: load.post_record(index, payload, delay)

    def call(op: ToolOp) -> Callable[[], Coroutine[Any, Any, None]]:
        return lambda: load.tool_call(op)

    for index, payload in enumerate(calls):
        items.append((index * spacing, deliver(index, payload, 0.0)))
        if rng.random() < REDELIVERY_SHARE:
            # The platform delivers it again, a few seconds later, to another server.
            items.append((index * spacing, deliver(index + 1, payload, 3.0)))
    items += [(op.at, call(op)) for op in ops]
    return items


async def wait_for_records(
    services: Services, agent_id: str, expected: int, killer: Killer, within: float
) -> dict[str, int]:
    """Wait (at most `within` s) until `expected` records are synced or failed; their statuses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        killer.supervise()
        statuses = await record_statuses(services, agent_id)
        if statuses.get("synced", 0) + statuses.get("failed", 0) >= expected or loop.time() > deadline:
            return statuses
        await asyncio.sleep(1)


async def progress(services: Services, agent_id: str, load: Load, started: float, until: float) -> None:
    """A line a minute while the load runs: how far it got."""
    loop = asyncio.get_running_loop()
    while loop.time() + 60 < until + 1:
        await asyncio.sleep(60)
        statuses = await record_statuses(services, agent_id)
        print(f"{loop.time() - started:6.1f}s {len(load.outcomes)} tool calls answered, records {statuses}", flush=True)


async def soak(args: argparse.Namespace, scratch: Path, url: str) -> Figures:
    upgrade_database(url)
    # As worker_env: the emulators have no request limits, so the provider budgets are off everywhere.
    services = Services.build(
        ServerSettings(database_url=url, secret_key=SECRET_KEY, postcall="enqueue", postcall_rate_limits=False)
    )
    seconds = args.minutes * 60
    rng = random.Random(args.seed)
    logs = scratch / "logs"
    logs.mkdir()
    workers = Workers(worker_env(url), logs)
    servers: list[Server] = []
    loop = asyncio.get_running_loop()
    try:
        with faulty_emulators(args.fault_rate, args.seed) as (served, mixes):
            agent_id, api_key = await soak_agent(services, served)
            print(f"starting {SERVERS} servers and {WORKERS} workers", flush=True)
            servers = await asyncio.to_thread(start_servers, url, logs, SERVERS)
            slots = [f"soak-worker-{index}" for index in range(1, WORKERS + 1)]
            for worker_id in slots:
                workers.start(worker_id)
            await launched(workers)
            calls = batch_calls(args.calls, prefix=f"soak-{uuid.uuid4().hex[:4]}")
            ops = plan_tool_calls(args.tool_calls, seconds, rng, datetime.now(ZoneInfo(ZONE)).date())
            async with AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(
                        httpx.AsyncClient(
                            base_url=server.base,
                            headers={"Authorization": f"Bearer {api_key}"},
                            timeout=60,
                            limits=httpx.Limits(max_connections=64),
                        )
                    )
                    for server in servers
                ]
                load = Load(clients)
                items = schedule(load, calls, ops, seconds, rng)
                print(
                    f"load: {len(calls)} call records, {len(ops)} tool calls over {seconds:.0f} s, "
                    f"{args.fault_rate:.0%} provider faults, a worker SIGKILLed every {args.kill_every:.0f} s",
                    flush=True,
                )
                started = loop.time()
                killer = Killer(workers, slots, args.kill_every)
                killing = asyncio.create_task(killer.run(started, started + seconds))
                reporting = asyncio.create_task(progress(services, agent_id, load, started, started + seconds))
                await run_schedule(items, started)
                load_seconds = loop.time() - started
                await killing
                reporting.cancel()
            if load.record_failures:
                raise RuntimeError("call records never accepted:\n" + "\n".join(load.record_failures[:20]))
            print(f"load sent in {load_seconds:.0f} s; waiting for every record to settle", flush=True)
            settle_started = loop.time()
            statuses = await wait_for_records(
                services, agent_id, len(load.records_accepted), killer, args.settle_seconds
            )
            settle_seconds = loop.time() - settle_started
            # Anything a settled record still had in flight lands before the count.
            await asyncio.sleep(3)
            tally = count_state(served, calls, await record_status_by_call(services, agent_id), load.outcomes)
            provider_requests = sum(len(s.provider_requests()) for s in served.sandboxes.values())
            faults = sum(mix.taken() for mix in mixes.values())
            kinds: Counter[str] = Counter()
            for mix in mixes.values():
                kinds.update(mix.injected)
    finally:
        workers.stop()
        stop_servers(servers)
        await services.aclose()
    worker_logs = "".join(path.read_text(errors="replace") for path in sorted(logs.glob("soak-worker-*.log")))
    takeovers = TAKEOVER_LINE.findall(worker_logs)
    if args.keep_logs:
        shutil.copytree(logs, Path(args.keep_logs), dirs_exist_ok=True)
    latencies = [outcome.seconds * 1000 for outcome in load.outcomes]
    tool_statuses: dict[str, Counter[int]] = {}
    for outcome in load.outcomes:
        tool_statuses.setdefault(outcome.op.tool, Counter())[outcome.status] += 1
    return Figures(
        minutes=args.minutes,
        calls=len(calls),
        tool_calls=len(load.outcomes),
        load_seconds=load_seconds,
        settle_seconds=settle_seconds,
        records_per_second=len(calls) / (load_seconds + settle_seconds),
        tools_per_second=len(load.outcomes) / load_seconds,
        p50_ms=percentile(latencies, 0.5),
        p95_ms=percentile(latencies, 0.95),
        provider_requests=provider_requests,
        faults=faults,
        faults_by_kind=dict(kinds),
        kills=killer.kills,
        self_exits=killer.self_exits,
        takeovers=len(takeovers),
        takeover_workflows=sum(int(count) for _dead, count in takeovers),
        tool_statuses={tool: dict(codes) for tool, codes in tool_statuses.items()},
        replays=sum(outcome.replayed for outcome in load.outcomes),
        record_posts=dict(load.record_posts),
        statuses=statuses,
        tally=tally,
        error_samples=error_samples(load.outcomes),
    )


def error_samples(outcomes: list[ToolOutcome]) -> list[str]:
    """The first answer of each (tool, status) that was not a 200."""
    seen: dict[tuple[str, int], str] = {}
    for outcome in outcomes:
        if outcome.status != 200:
            seen.setdefault((outcome.op.tool, outcome.status), f"{outcome.op.tool} {outcome.status}: {outcome.answer}")
    return list(seen.values())


def report(figures: Figures, args: argparse.Namespace, busy: str) -> str:
    lines = [
        "## Soak test",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/soak.py --minutes {args.minutes:g} --calls "
        f"{args.calls} --tool-calls {args.tool_calls}` on {platform.node() or 'this machine'} "
        f"({_cores()} cores, Python {platform.python_version()}), code at {code_version()}. {busy}",
        "",
        f"PostgreSQL (private, 127.0.0.1), {SERVERS} separate `tool-server serve` processes (own ports, "
        f"`postcall=enqueue`: they record calls and start workflows, run none) and {WORKERS} `tool-server worker` "
        "processes sharing the database; HubSpot, Google Calendar and Twilio on their emulators with "
        f"{args.fault_rate:.0%} of provider requests answered by an injected fault (5xx, 429 with Retry-After 1 s, "
        f"or {SLOW_SECONDS:g} s late). Call records are POSTed to `/v1/calls` ({REDELIVERY_SHARE:.0%} delivered "
        "twice); tool calls go round-robin over the servers' `/v1/tools/<name>`, every write under an "
        f"Idempotency-Key and {RETRY_SHARE:.0%} of them sent again under the same key (half at the same moment to "
        f"the next server, half {LATER_RETRY_SECONDS:g} s later). Every {args.kill_every:g} s one worker is "
        "SIGKILLed and started again, alternately under its id and under a new one. Lost and duplicated are "
        "counted from the emulators' own state.",
        "",
        "```",
        *figures.lines(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def code_version() -> str:
    """The commit the run used, and whether the checkout had changes on top of it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {commit}" + (" plus uncommitted changes" if changed else "")


def _cores() -> int:
    return os.cpu_count() or 0


def _interrupted(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--calls", type=int, default=1000, help="call records posted")
    parser.add_argument("--tool-calls", type=int, default=5000, help="HTTP tool calls, deliberate retries included")
    parser.add_argument("--fault-rate", type=float, default=0.10, help="share of provider requests faulted")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between two worker SIGKILLs")
    parser.add_argument("--settle-seconds", type=float, default=600.0, help="longest wait for records to settle")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--busy", default="", help="what else ran on the machine, for the report")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the servers' and workers' logs here")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    find_server_binaries()
    # The servers and workers import the code this script imports (run it from a `git worktree` to
    # soak one commit while the checkout changes), whatever the venv's editable install points at.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # SIGTERM ends the run as Ctrl-C does: workers, servers and PostgreSQL are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(prefix="soak-") as folder, running_postgres() as url:
        figures = asyncio.run(soak(args, Path(folder), url))
    print("\n".join(figures.lines()))
    for what, items in (("LOST", figures.tally.lost), ("DUPLICATED", figures.tally.duplicated)):
        for item in items[:50]:
            print(f"{what} {item}")
    for sample in figures.error_samples:
        print(f"error answer: {sample}")
    for note in figures.tally.notes[:20]:
        print(f"note: {note}")
    for exit_line in figures.self_exits:
        print(f"worker exit: {exit_line}")
    if not args.no_write:
        replace_section(Path(args.output), "soak", report(figures, args, args.busy))
        print(f"wrote the soak section of {args.output}")
    return 1 if figures.tally.lost or figures.tally.duplicated else 0


if __name__ == "__main__":
    raise SystemExit(main())
