"""Quiet hours: a follow-up text waits for the recipient's allowed hours; what the caller asks for live does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import AgentFactory, CallerFactory
from tests.support.clocks import MovableClock
from tests.test_postcall_sync import BUILTIN, call, headers, settled
from tool_server.agents import CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.postcall.quiet_hours import QuietHours, next_allowed, recipient_zone
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import OutboxMessageRow

NEW_YORK = ZoneInfo("America/New_York")
# 23:00 in New York, 20:00 in Los Angeles.
LATE_EVENING = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)
NEXT_MORNING = datetime(2026, 3, 5, 13, 0, tzinfo=UTC)  # 08:00 in New York


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(LATE_EVENING)


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
        postcall_quiet_poll_seconds=0.1,
    )


@pytest.fixture
async def services(settings: ServerSettings, clock: MovableClock) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=clock)
    yield built
    await built.aclose()


@pytest.fixture
async def created(make_agent: AgentFactory, services: Services) -> CreatedAgent:
    made = await make_agent(connections=BUILTIN)
    await services.followups.set(made.agent.id, FollowUps(confirmation_sms=True))
    return made


async def texts(services: Services, agent_id: str) -> list[tuple[str, datetime]]:
    query = select(OutboxMessageRow.to_number, OutboxMessageRow.created_at).where(OutboxMessageRow.agent_id == agent_id)
    return [(row[0], row[1]) for row in await services.db.run(lambda session: session.execute(query).all())]


async def step(http: httpx.AsyncClient, created: CreatedAgent, call_id: str, job: str) -> dict[str, object]:
    record = (await http.get(f"/v1/calls/{call_id}", headers=headers(created))).json()
    return next((s for s in record.get("sync_steps") or [] if s["job"] == job), {})


async def test_a_confirmation_due_at_23_local_is_held_and_sent_at_08_local(
    http: httpx.AsyncClient, created: CreatedAgent, services: Services, clock: MovableClock
) -> None:
    await http.post("/v1/calls", json=call("late-call"), headers=headers(created))
    deadline = asyncio.get_running_loop().time() + 15
    while "held for quiet hours" not in str((await step(http, created, "late-call", "confirmation_sms")).get("error")):
        assert asyncio.get_running_loop().time() < deadline, "the confirmation was never held"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    held = await texts(services, created.agent.id)

    clock.now = NEXT_MORNING
    record = await settled(http, created, "late-call")

    assert held == []
    assert record["sync_status"] == "synced"
    [(to, sent_at)] = await texts(services, created.agent.id)
    assert to == "+12125550142"
    assert sent_at.astimezone(NEW_YORK).hour == 8


async def test_a_recipient_whose_evening_is_still_allowed_gets_the_confirmation_at_once(
    http: httpx.AsyncClient, created: CreatedAgent, services: Services
) -> None:
    await http.post("/v1/calls", json=call("west-call", customer_phone="+13105550100"), headers=headers(created))
    record = await settled(http, created, "west-call")

    assert record["sync_status"] == "synced"
    assert [to for to, _ in await texts(services, created.agent.id)] == ["+13105550100"]


async def test_a_text_the_caller_asks_for_during_the_call_is_sent_at_once_even_at_23(
    created: CreatedAgent, make_caller: CallerFactory, services: Services
) -> None:
    caller = await make_caller("http", created)

    outcome = await caller.call("send_sms", {"to": "+12125550142", "body": "Here's our address."}, call_id="c-live")

    assert outcome.ok, outcome.error
    assert len(await texts(services, created.agent.id)) == 1


def test_the_recipients_zone_comes_from_their_number_and_the_business_zone_when_it_is_ambiguous() -> None:
    business = ZoneInfo("America/Chicago")

    assert recipient_zone("+12125550142", business).key == "America/New_York"
    assert recipient_zone("+447911123456", business).key == "America/Chicago"  # four zones share UK mobiles
    assert recipient_zone("+18005550100", business).key == "America/Chicago"  # toll-free spans the continent
    assert recipient_zone("not a number", business) is business


def test_the_next_allowed_minute_honours_overnight_windows() -> None:
    late = QuietHours(allowed_from="20:00", allowed_until="02:00")  # type: ignore[arg-type]

    assert next_allowed(datetime(2026, 3, 5, 2, 0, tzinfo=UTC), NEW_YORK, late) is None  # 21:00 local
    held = next_allowed(datetime(2026, 3, 5, 15, 0, tzinfo=UTC), NEW_YORK, late)  # 10:00 local
    assert held == datetime(2026, 3, 5, 20, 0, tzinfo=NEW_YORK)
