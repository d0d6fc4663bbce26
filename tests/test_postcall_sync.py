"""The post-call sync in one process, through the public surface: POST /v1/calls, GET /v1/calls/{id}."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import MONDAY
from tool_server.agents import Connection, CreatedAgent
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import AppointmentRow, ContactRow, NoteRow, OutboxMessageRow

BUILTIN = [
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
    Connection(capability="messaging", provider="outbox"),
]


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    # The app's lifespan runs the engine in this process, retrying fast.
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
    )


def headers(created: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.api_key}"}


def call(call_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "customer_name": "Jane Doe",
        "customer_phone": "(212) 555-0142",
        "customer_email": "jane@example.com",
        "call_outcome": "appointment requested",
        "call_summary": "Wants a cleaning on Monday morning.",
        "call_sentiment": "positive",
        "transcript": "agent: Hello\ncaller: Monday at 10 please",
        "started_at": "2026-03-04T14:50:00Z",
        "ended_at": "2026-03-04T14:55:00Z",
        "duration_seconds": 300,
        "appointment_requested": {"date": MONDAY, "time": "10:00", "timezone": "America/New_York", "title": "Cleaning"},
        **extra,
    }


async def settled(http: httpx.AsyncClient, created: CreatedAgent, call_id: str, within: float = 30) -> dict[str, Any]:
    """The call record once its sync is synced or failed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await http.get(f"/v1/calls/{call_id}", headers=headers(created))
        body: dict[str, Any] = response.json()
        if body.get("sync_status") in ("synced", "failed"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"call {call_id} did not settle: {body.get('sync_status')} {body.get('sync_steps')}")
        await asyncio.sleep(0.05)


async def count(services: Services, table: Any, agent_id: str) -> int:
    query = select(func.count()).select_from(table).where(table.agent_id == agent_id)
    return int(await services.db.run(lambda session: session.execute(query).scalar_one()))


async def test_a_finished_call_writes_its_contact_note_booking_and_confirmation_once(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))

    response = await http.post("/v1/calls", json=call("call-1"), headers=headers(created))
    assert response.status_code == 200, response.text
    record = await settled(http, created, "call-1")

    assert record["sync_status"] == "synced"
    steps = {step["job"]: step for step in record["sync_steps"]}
    assert set(steps) == {"crm", "calendar", "confirmation_sms"}
    assert all(step["status"] == "done" and step["attempts"] == 1 for step in steps.values()), steps
    agent_id = created.agent.id
    assert [await count(services, t, agent_id) for t in (ContactRow, NoteRow, AppointmentRow, OutboxMessageRow)] == [
        1,
        1,
        1,
        1,
    ]
