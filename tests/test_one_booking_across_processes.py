"""Three `tool-server serve` processes on one database behave like one: a slot is booked once.

Twenty callers race for the same slot through three real server processes (round robin), on
one SQLite file and on one PostgreSQL database. Every provider's emulator is served by the first
process, so all three reach the same vendor state, as they would the real vendor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from integrations.common.spec import SandboxConnection
from integrations.outlook_calendar.windows_zones import iana_zone
from integrations.registry import INTEGRATIONS
from tests.support.live_server import SECRET_KEY, free_port, live_server
from tests.support.postgres import create_database
from tool_server.agents import Connection
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.database import sync_database_url
from tool_server.store.migrate import upgrade_database
from tool_server.store.tables import AppointmentRow

CALLERS = 20
NEW_YORK = ZoneInfo("America/New_York")


def _google(state: dict[str, Any], start: datetime) -> int:
    return sum(
        1
        for calendar in state["calendars"].values()
        for event in calendar["events"]
        if event.get("status") != "cancelled" and datetime.fromisoformat(event["start"]["dateTime"]) == start
    )


def _outlook(state: dict[str, Any], start: datetime) -> int:
    return sum(
        1
        for mailbox in state["mailboxes"].values()
        for event in mailbox["events"]
        if _graph_time(event["start"]) == start
    )


def _graph_time(value: dict[str, str]) -> datetime:
    zone = ZoneInfo(iana_zone(value["timeZone"]))
    return datetime.fromisoformat(value["dateTime"][:26]).replace(tzinfo=zone)


def _calcom(state: dict[str, Any], start: datetime) -> int:
    return sum(
        1
        for booking in state["bookings"]
        if booking["status"] == "accepted" and datetime.fromisoformat(booking["start"].replace("Z", "+00:00")) == start
    )


def _calendly(state: dict[str, Any], start: datetime) -> int:
    return sum(
        1
        for event in state["events"]
        if event["status"] == "active" and datetime.fromisoformat(event["start_time"].replace("Z", "+00:00")) == start
    )


BOOKED_AT: dict[str, Callable[[dict[str, Any], datetime], int]] = {
    "google_calendar": _google,
    "outlook_calendar": _outlook,
    "calcom": _calcom,
    "calendly": _calendly,
}


@dataclass
class Cluster:
    database_url: str
    bases: list[str]
    home: Path

    @property
    def emulators(self) -> str:
        return self.bases[0]


def _cluster(home: Path, database_url: str) -> Iterator[Cluster]:
    upgrade_database(database_url)
    ports = [free_port() for _ in range(3)]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                live_server(home / f"server-{index}", port=port, database_url=database_url, postcall="off")
            )
            for index, port in enumerate(ports)
        ]
        yield Cluster(database_url, [server.base for server in servers], home)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("cluster")
    for index in range(3):
        (home / f"server-{index}").mkdir()
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'shared.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_url"), f"cluster_{free_port()}")
    yield from _cluster(home, url)


async def _agent(cluster: Cluster, provider: str) -> str:
    """An agent on the shared database whose calendar is `provider`'s emulator in the first process
    (or the built-in calendar, kept in the shared database)."""
    settings = ServerSettings(
        home=cluster.home, database_url=cluster.database_url, secret_key=SECRET_KEY, public_url=cluster.emulators
    )
    services = Services.build(settings)
    try:
        if provider == "local_calendar":
            sandbox = SandboxConnection(settings={}, secrets={})
        else:
            sandbox = INTEGRATIONS[provider].sandbox_connection(f"{cluster.emulators}/sandbox/{provider}")
        calendar = services.providers.validate(
            Connection(capability="calendar", provider=provider, settings=sandbox.settings), sandbox.secrets
        )
        contacts = services.providers.validate(Connection(capability="crm", provider="contact_book"))
        created = await services.agents.create(
            f"Race {provider}",
            timezone="America/New_York",
            phone_region="US",
            connections=[calendar, contacts],
            secrets={"calendar": dict(sandbox.secrets)},
        )
        return created.api_key
    finally:
        await services.aclose()


def _weekday_at(hour: int, weeks_out: int) -> datetime:
    today = datetime.now(NEW_YORK).date()
    day = today + timedelta(days=7 * weeks_out + (2 - today.weekday()) % 7)  # a Wednesday
    return datetime(day.year, day.month, day.day, hour, tzinfo=NEW_YORK)


async def _race(cluster: Cluster, key: str, tool: str, arguments: Callable[[int], dict[str, Any]]) -> list[Any]:
    """`CALLERS` calls at once, each its own phone call, spread round robin over the processes."""
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(index: int) -> Any:
            response = await client.post(
                f"{cluster.bases[index % 3]}/v1/tools/{tool}",
                json=arguments(index),
                headers={"Authorization": f"Bearer {key}", "X-Call-Id": f"{tool}-call-{index}"},
            )
            return response.status_code, response.json()

        return await asyncio.gather(*(one(index) for index in range(CALLERS)))


def _caller(index: int) -> dict[str, str]:
    return {"caller_name": f"Caller {index}", "caller_phone": f"+1212555{1000 + index:04d}"}


def _emulator_count(cluster: Cluster, provider: str, start: datetime) -> int:
    """Appointments at `start`: in the emulator, or for the built-in calendar in the shared database."""
    if provider == "local_calendar":
        engine = create_engine(sync_database_url(cluster.database_url))
        try:
            with engine.connect() as connection:
                query = select(func.count()).where(AppointmentRow.start_at == start, AppointmentRow.status == "booked")
                return int(connection.execute(query).scalar_one())
        finally:
            engine.dispose()
    state = httpx.get(f"{cluster.emulators}/sandbox/{provider}/_state", timeout=10).json()
    return BOOKED_AT[provider](state, start)


def _split(answers: list[Any]) -> tuple[list[Any], list[Any]]:
    won = [body for status, body in answers if status == 200]
    lost = [body["error"] for status, body in answers if status != 200]
    return won, lost


@pytest.mark.parametrize("provider", [*sorted(BOOKED_AT), "local_calendar"])
async def test_twenty_callers_racing_for_one_slot_through_three_processes_get_one_appointment(
    cluster: Cluster, provider: str
) -> None:
    key = await _agent(cluster, provider)
    start = _weekday_at(10, weeks_out=1)

    answers = await _race(
        cluster, key, "book_appointment", lambda index: {"start": start.isoformat(), **_caller(index)}
    )

    won, lost = _split(answers)
    assert len(won) == 1, answers
    assert [error["code"] for error in lost] == ["SLOT_UNAVAILABLE"] * (CALLERS - 1), lost
    assert all(error["details"]["alternatives"] for error in lost)
    assert all(start.isoformat() not in [a["start"] for a in error["details"]["alternatives"]] for error in lost)
    assert _emulator_count(cluster, provider, start) == 1


@pytest.mark.parametrize("provider", [*sorted(BOOKED_AT), "local_calendar"])
async def test_twenty_callers_racing_to_hold_one_slot_through_three_processes_get_one_hold_and_one_booking(
    cluster: Cluster, provider: str
) -> None:
    key = await _agent(cluster, provider)
    start = _weekday_at(11, weeks_out=2)

    answers = await _race(cluster, key, "hold_slot", lambda index: {"start": start.isoformat()})

    won, lost = _split(answers)
    assert len(won) == 1, answers
    assert [error["code"] for error in lost] == ["SLOT_UNAVAILABLE"] * (CALLERS - 1), lost
    booked_by_others = await _race(
        cluster, key, "book_appointment", lambda index: {"start": start.isoformat(), **_caller(100 + index)}
    )
    assert {status for status, _ in booked_by_others} == {409}, booked_by_others
    async with httpx.AsyncClient(timeout=60) as client:
        confirmed = await client.post(
            f"{cluster.bases[2]}/v1/tools/book_appointment",
            json={"hold_id": won[0]["hold_id"], **_caller(0)},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["appointment"]["start"] == start.isoformat()
    assert _emulator_count(cluster, provider, start) == 1
