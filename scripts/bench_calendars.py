"""Benchmark: check_availability over three calendars of 5,000 events each.

A business whose availability is the free/busy of three calendars (Google Calendar: three
calendar ids; Outlook: the owner's mailbox plus two more schedules), each holding 5,000 events
over a year, asks for a week of slots. The emulators run in their own process, so their work
(scanning 15,000 events per request) is not counted as the tool server's.

Measured in the same run, per provider, each the median (p50) of sequential calls:
- **tool call**: `check_availability` through the tool server's dispatch (validation, the
  connector, the token, the provider round trip, slot computation, the server's hold check,
  the spoken answer, the audit record);
- **provider round trip**: the same free/busy request the connector sent, replayed raw with
  httpx: the emulator's time plus loopback;
- **server CPU**: the CPU time the tool server's process spends per tool call, all threads;
- **tool call - round trip**: the same, seen on the wall clock (as noisy as the emulator);
- **bare merge (baseline)**: from that free/busy answer, already in memory: parse it, merge
  the busy intervals and compute the week's slots with the same rules (no HTTP, no tool).

Usage: .venv/bin/python scripts/bench_calendars.py [--calls 300] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sections import replace_section  # noqa: E402

EVENTS_PER_CALENDAR = 5_000
ZONE = ZoneInfo("America/New_York")
GOOGLE_EXTRA = ("front-desk@group.calendar.google.com", "room-2@group.calendar.google.com")
OUTLOOK_EXTRA = ("frontdesk@sandbox-dental.example.com", "room2@sandbox-dental.example.com")
SECRET_KEY = "bench-calendars-key-not-for-production"


# --------------------------------------------------------------------------------------------
# The emulator process
# --------------------------------------------------------------------------------------------


def _events(rng: random.Random, today: date) -> list[tuple[datetime, datetime]]:
    """5,000 meetings of 15-90 minutes between 7 AM and 8 PM, over the half-year each side of today."""
    found = []
    for _ in range(EVENTS_PER_CALENDAR):
        day = today + timedelta(days=rng.randint(-182, 182))
        start = datetime(day.year, day.month, day.day, 7, tzinfo=ZONE) + timedelta(minutes=15 * rng.randint(0, 52))
        found.append((start, start + timedelta(minutes=15 * rng.randint(1, 6))))
    return found


def serve_emulators(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from integrations.google_calendar.sandbox import build_sandbox as google_sandbox
    from integrations.google_calendar.sandbox_state import OWNER_EMAIL, GoogleCalendarState, SandboxCalendar
    from integrations.outlook_calendar.sandbox import build_sandbox as outlook_sandbox
    from integrations.outlook_calendar.sandbox_state import OWNER, Mailbox, OutlookState

    rng = random.Random(7)
    today = datetime.now(ZONE).date()
    google, outlook = google_sandbox(), outlook_sandbox()
    google_state, outlook_state = google.state, outlook.state
    assert isinstance(google_state, GoogleCalendarState)
    assert isinstance(outlook_state, OutlookState)
    google_state.calendars[GOOGLE_EXTRA[1]] = SandboxCalendar(GOOGLE_EXTRA[1], "Room 2", "America/New_York")
    outlook_state.mailboxes[OUTLOOK_EXTRA[1]] = Mailbox(OUTLOOK_EXTRA[1], "Room 2", "Eastern Standard Time")
    for calendar_id in (OWNER_EMAIL, *GOOGLE_EXTRA):
        for start, end in _events(rng, today):
            google_state.add_event(calendar_id, start, end)
    for address in (OWNER, *OUTLOOK_EXTRA):
        for start, end in _events(rng, today):
            outlook_state.add_event(address, start, end)

    async def ready(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("ready")

    app = Starlette(
        routes=[
            Route("/ready", ready),
            Mount("/sandbox/google_calendar", app=google),
            Mount("/sandbox/outlook_calendar", app=outlook),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    provider: str
    tool_call: list[float]
    server_cpu: list[float]
    round_trip: list[float]
    bare: list[float]

    @staticmethod
    def p50(samples: list[float]) -> float:
        return statistics.median(samples) * 1000

    @property
    def server_time(self) -> float:
        return self.p50(self.tool_call) - self.p50(self.round_trip)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_emulators() -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-emulators", str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the emulator process exited")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the emulators did not come up")


def _connection_settings(provider: str, base: str) -> tuple[dict[str, Any], dict[str, str]]:
    from integrations.registry import INTEGRATIONS

    sandbox = INTEGRATIONS[provider].sandbox_connection(f"{base}/sandbox/{provider}")
    settings = dict(sandbox.settings)
    if provider == "google_calendar":
        settings["calendar_ids"] = ["primary", *GOOGLE_EXTRA]
    else:
        settings["schedules"] = list(OUTLOOK_EXTRA)
    return settings, dict(sandbox.secrets)


def _access_token(provider: str, base: str, secrets: dict[str, str], settings: dict[str, Any]) -> str:
    import httpx

    url = (
        f"{base}/sandbox/{provider}/token"
        if provider == "google_calendar"
        else f"{settings['login_url']}/{settings['tenant']}/oauth2/v2.0/token"
    )
    form = {"grant_type": "refresh_token", **{k: secrets[k] for k in ("client_id", "client_secret", "refresh_token")}}
    if provider == "outlook_calendar":
        form["scope"] = "https://graph.microsoft.com/Calendars.ReadWrite offline_access"
    answer = httpx.post(url, data=form, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _last_free_busy(provider: str, base: str) -> dict[str, Any]:
    import httpx

    wanted = "freeBusy" if provider == "google_calendar" else "getSchedule"
    recorded = httpx.get(f"{base}/sandbox/{provider}/_requests", timeout=30).json()
    return [request for request in recorded if request["path"].endswith(wanted)][-1]


def _bare_merge(
    provider: str, answer: bytes, rules: Any, start: datetime, end: datetime, now: datetime
) -> Callable[[], Any]:
    """The same free/busy merge and slot computation, from the answer already in memory."""
    from integrations.capabilities.scheduling import candidate_slots

    duration = timedelta(minutes=rules.slot_minutes)

    def google() -> Any:
        body = json.loads(answer)
        busy = sorted(
            (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
            for calendar in body["calendars"].values()
            for b in calendar.get("busy", [])
        )
        return candidate_slots(rules, start, end, duration, _merged(busy), now)

    def outlook() -> Any:
        from integrations.outlook_calendar.windows_zones import iana_zone

        body = json.loads(answer)
        busy = []
        for schedule in body["value"]:
            for item in schedule.get("scheduleItems", []):
                if item["status"] in ("busy", "oof", "tentative"):
                    zones = (
                        ZoneInfo(iana_zone(item["start"]["timeZone"])),
                        ZoneInfo(iana_zone(item["end"]["timeZone"])),
                    )
                    busy.append(
                        (
                            datetime.fromisoformat(item["start"]["dateTime"][:26]).replace(tzinfo=zones[0]),
                            datetime.fromisoformat(item["end"]["dateTime"][:26]).replace(tzinfo=zones[1]),
                        )
                    )
        return candidate_slots(rules, start, end, duration, _merged(sorted(busy)), now)

    return google if provider == "google_calendar" else outlook


def _merged(busy: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for begins, ends in busy:
        if merged and begins <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((begins, ends))
    return merged


async def measure(provider: str, base: str, calls: int, workdir: Path) -> Figures:
    import httpx

    from integrations.capabilities.scheduling import BookingRules
    from tool_server.agents import Connection
    from tool_server.dispatch.dispatcher import CallInfo
    from tool_server.services import Services
    from tool_server.settings import ServerSettings
    from tool_server.store.migrate import upgrade_database

    settings_model = ServerSettings(
        home=workdir, database_url=f"sqlite:///{workdir / f'{provider}.db'}", secret_key=SECRET_KEY, sandbox=False
    )
    upgrade_database(settings_model.database_url)
    services = Services.build(settings_model)
    try:
        settings, secrets = _connection_settings(provider, base)
        connection = services.providers.validate(
            Connection(capability="calendar", provider=provider, settings=settings), secrets
        )
        created = await services.agents.create(
            "Bench",
            timezone="America/New_York",
            phone_region="US",
            connections=[connection],
            secrets={"calendar": secrets},
        )
        first = datetime.now(ZONE).date() + timedelta(days=7)
        arguments = {"date": first.isoformat(), "end_date": (first + timedelta(days=6)).isoformat()}

        async def tool_call() -> None:
            outcome = await services.dispatcher.execute(
                created.agent, "check_availability", arguments, CallInfo("bench")
            )
            if outcome.error is not None:
                raise SystemExit(f"{provider}: {outcome.error}")

        for _ in range(20):
            await tool_call()
        tool_samples, cpu_samples = [], []
        for _ in range(calls):
            started, cpu = time.perf_counter(), time.process_time()
            await tool_call()
            tool_samples.append(time.perf_counter() - started)
            cpu_samples.append(time.process_time() - cpu)

        recorded = _last_free_busy(provider, base)
        token = _access_token(provider, base, secrets, settings)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if provider == "outlook_calendar":
            headers["Prefer"] = 'outlook.timezone="Eastern Standard Time"'
        url = f"{base}/sandbox/{provider}{recorded['path']}"
        payload = json.dumps(recorded["body"]).encode()
        trip_samples = []
        answer = b""
        async with httpx.AsyncClient(timeout=30) as client:
            for index in range(calls + 20):
                started = time.perf_counter()
                response = await client.post(url, content=payload, headers=headers, params=recorded["query"])
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                answer = response.content
                if index >= 20:
                    trip_samples.append(elapsed)

        rules = BookingRules(timezone="America/New_York")
        start = datetime.combine(first, datetime.min.time(), tzinfo=ZONE)
        end = start + timedelta(days=7)
        bare = _bare_merge(provider, answer, rules, start, end, datetime.now(UTC))
        assert bare(), "the bare merge found no slot: the week is fully booked"
        bare_samples = []
        for index in range(calls + 20):
            started = time.perf_counter()
            bare()
            if index >= 20:
                bare_samples.append(time.perf_counter() - started)
        return Figures(provider, tool_samples, cpu_samples, trip_samples, bare_samples)
    finally:
        await services.aclose()


def report(results: list[Figures], calls: int) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## check_availability over three busy calendars",
        "",
        f"Measured {stamp} by `scripts/bench_calendars.py` on {_cores()} cores, Python {platform.python_version()}. "
        f"Three calendars of {EVENTS_PER_CALENDAR:,} events each (a year of meetings), one week asked for; "
        f"{calls} sequential calls each, medians. The emulators run in their own process.",
        "",
        "| provider | tool call p50 ms | provider round trip p50 ms | tool call - round trip ms | "
        "server CPU p50 ms (aim < 10) | bare merge p50 ms (baseline) | server CPU / bare merge |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for figures in results:
        bare, cpu = Figures.p50(figures.bare), Figures.p50(figures.server_cpu)
        lines.append(
            f"| {figures.provider} | {Figures.p50(figures.tool_call):.2f} | {Figures.p50(figures.round_trip):.2f} | "
            f"{figures.server_time:.2f} | {cpu:.2f} | {bare:.2f} | {cpu / bare:.2f}x |"
        )
    lines += [
        "",
        "Server CPU is the CPU time the tool server's process (every thread) spends per call: dispatch and "
        "validation, the connector, its SDK and token, parsing and merging the answer, the slot grid, the check "
        "against other callers' holds, the spoken answer and the audit record. The emulators answer from another "
        "process, so none of their work is in it. Tool call - round trip is the same cost seen on the wall clock; "
        "it is the difference of two medians of ~250 ms each (the emulator scans all 15,000 events per request), "
        "so it is only as good as their spread. The bare merge is only the parse, merge and slot grid, in memory.",
        "",
        "Reproduce with `.venv/bin/python scripts/bench_calendars.py`.",
    ]
    return "\n".join(lines)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="50 calls per measure")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--serve-emulators", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulators:
        serve_emulators(args.serve_emulators)
        return 0
    calls = 50 if args.quick else args.calls
    process, base = _start_emulators()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            results = [
                asyncio.run(measure(provider, base, calls, Path(workdir)))
                for provider in ("google_calendar", "outlook_calendar")
            ]
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = report(results, calls)
    print(text)
    if not args.no_write:
        replace_section(ROOT / "docs" / "benchmarks.md", "calendars", text)
        print(f"wrote {ROOT / 'docs' / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
