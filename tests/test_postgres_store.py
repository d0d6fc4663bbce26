"""The store on a real PostgreSQL server: migrations, the tool flow, races and sealed secrets.

Every test gets a fresh, migrated database on the session's private server (`postgres_url`),
and a `Services` built from nothing but `ServerSettings(database_url=postgresql://…)`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text

from tests.conftest import DEFAULT_CONNECTIONS, MONDAY, NOW
from tests.support.callers import DirectCaller
from tests.support.postgres import create_database
from tool_server.agents import Connection, CreatedAgent
from tool_server.app import create_app
from tool_server.clock import fixed_clock
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.database import sync_database_url
from tool_server.store.migrate import alembic_config, upgrade_database
from tool_server.store.tables import AppointmentRow, Base, ContactRow, ToolCallRow

JANE = {"caller_name": "Jane Doe", "caller_phone": "(212) 555-0142", "caller_email": "Jane.Doe@Example.com"}
BOB = {"caller_name": "Bob Roe", "caller_phone": "+12125550199"}


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A fresh database on the session's PostgreSQL server, migrated to head."""
    url = create_database(postgres_url, f"t_{uuid.uuid4().hex[:16]}")
    upgrade_database(url)
    return url


@pytest.fixture
async def pg_services(pg_url: str) -> AsyncIterator[Services]:
    settings = ServerSettings(database_url=pg_url, secret_key=SecretStr("postgres-store-tests"))
    built = Services.build(settings, clock=fixed_clock(NOW))
    assert built.db.engine.dialect.name == "postgresql"
    yield built
    await built.aclose()


@pytest.fixture
async def pg_agent(pg_services: Services) -> CreatedAgent:
    return await pg_services.agents.create(
        "Test Dental",
        timezone="America/New_York",
        phone_region="US",
        connections=[pg_services.providers.validate(c, None) for c in DEFAULT_CONNECTIONS],
    )


@pytest.fixture
def pg_caller(pg_services: Services, pg_agent: CreatedAgent) -> DirectCaller:
    return DirectCaller(pg_services.dispatcher, pg_agent.agent)


def booking(start: str = f"{MONDAY}T10:00", **extra: Any) -> dict[str, Any]:
    return {"start": start, **JANE, **extra}


async def booked_count(services: Services, agent_id: str) -> int:
    query = select(func.count()).where(AppointmentRow.agent_id == agent_id, AppointmentRow.status == "booked")
    return int(await services.db.run(lambda session: session.execute(query).scalar_one()))


def test_the_migrations_build_exactly_the_declared_schema_on_postgresql(pg_url: str) -> None:
    upgrade_database(pg_url)  # a second run is harmless
    engine = create_engine(sync_database_url(pg_url))
    try:
        with engine.connect() as connection:
            assert connection.dialect.name == "postgresql"
            context = MigrationContext.configure(connection)
            differences = compare_metadata(context, Base.metadata)
            current = context.get_current_revision()
            partial_indexes = set(
                connection.execute(
                    text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexdef LIKE '%WHERE%'")
                ).scalars()
            )
    finally:
        engine.dispose()

    assert differences == []
    assert current == ScriptDirectory.from_config(alembic_config(pg_url)).get_current_head()
    assert {"uq_contacts_agent_phone", "uq_contacts_agent_email", "uq_outbox_agent_idempotency"} <= partial_indexes


async def test_check_book_find_cancel_is_one_coherent_flow_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    slots = (await pg_caller.call("check_availability", {"date": MONDAY})).unwrap()["slots"]
    chosen = slots[1]["start"]
    assert chosen.startswith(f"{MONDAY}T")
    assert chosen.endswith("-04:00")

    booked = (await pg_caller.call("book_appointment", booking(chosen, notes="Cleaning"))).unwrap()
    appointment = booked["appointment"]
    assert appointment["start"] == chosen
    assert appointment["status"] == "booked"
    assert appointment["caller_phone"] == "+12125550142"

    found = (await pg_caller.call("find_appointments", {"caller_phone": "212-555-0142"})).unwrap()
    assert [a["appointment_id"] for a in found["appointments"]] == [appointment["appointment_id"]]
    again = (await pg_caller.call("check_availability", {"date": MONDAY, "max_slots": 10})).unwrap()
    assert chosen not in [slot["start"] for slot in again["slots"]]

    cancelled = (await pg_caller.call("cancel_appointment", {"appointment_id": appointment["appointment_id"]})).unwrap()
    assert cancelled["appointment"]["status"] == "cancelled"
    found = (await pg_caller.call("find_appointments", {"caller_email": "jane.doe@example.com"})).unwrap()
    assert found["appointments"] == []

    # Stored as naive UTC, read back as aware UTC: 10:00 in New York on 9 March is 14:00 UTC.
    start_at = await pg_services.db.run(
        lambda session: session.execute(
            select(AppointmentRow.start_at).where(AppointmentRow.id == appointment["appointment_id"])
        ).scalar_one()
    )
    assert start_at == datetime.fromisoformat(chosen)
    assert start_at.utcoffset() == timedelta(0)

    # The audit log (JSON arguments, boolean flags) lands in PostgreSQL too.
    await pg_services.audit.flush()
    tools = await pg_services.db.run(
        lambda session: list(
            session.execute(select(ToolCallRow.tool).where(ToolCallRow.agent_id == pg_agent.agent.id)).scalars()
        )
    )
    assert sorted(tools) == sorted(
        ["check_availability"] * 2 + ["book_appointment", "cancel_appointment"] + ["find_appointments"] * 2
    )


async def test_creating_a_contact_twice_leaves_one_contact_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    first = (await pg_caller.call("create_contact", {"contact_name": "Jane", "contact_phone": "212-555-0142"})).unwrap()
    second = (
        await pg_caller.call("create_contact", {"contact_name": "Jane Doe", "contact_phone": "+1 212 555 0142"})
    ).unwrap()
    assert second["contact"]["contact_id"] == first["contact"]["contact_id"]

    racing = await asyncio.gather(
        *(
            pg_caller.call("create_contact", {"contact_email": "bob@example.com", "contact_name": f"Bob {n}"})
            for n in range(10)
        )
    )
    assert len({outcome.unwrap()["contact"]["contact_id"] for outcome in racing}) == 1

    phones = await pg_services.db.run(
        lambda session: list(
            session.execute(select(ContactRow.phone).where(ContactRow.agent_id == pg_agent.agent.id)).scalars()
        )
    )
    assert sorted(phones, key=str) == sorted(["+12125550142", None], key=str)


async def test_twenty_concurrent_identical_bookings_make_exactly_one_appointment_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    outcomes = await asyncio.gather(*(pg_caller.call("book_appointment", booking()) for _ in range(20)))

    assert len({outcome.unwrap()["appointment"]["appointment_id"] for outcome in outcomes}) == 1
    assert await booked_count(pg_services, pg_agent.agent.id) == 1


async def test_two_callers_racing_for_one_slot_get_one_booking_and_one_slot_unavailable_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    bob = {"start": f"{MONDAY}T10:00", **BOB}
    outcomes = await asyncio.gather(
        pg_caller.call("book_appointment", booking()), pg_caller.call("book_appointment", bob)
    )

    assert sorted(str(outcome.code) for outcome in outcomes) == ["None", "SLOT_UNAVAILABLE"]
    assert await booked_count(pg_services, pg_agent.agent.id) == 1


async def test_many_callers_racing_for_one_slot_leave_exactly_one_booking_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    callers = [
        {"start": f"{MONDAY}T15:00", "caller_name": f"Caller {n}", "caller_phone": f"+1212555{n:04d}"}
        for n in range(100, 116)
    ]
    outcomes = await asyncio.gather(*(pg_caller.call("book_appointment", args) for args in callers))

    assert sum(outcome.ok for outcome in outcomes) == 1
    assert {outcome.code for outcome in outcomes if not outcome.ok} == {"SLOT_UNAVAILABLE"}
    assert await booked_count(pg_services, pg_agent.agent.id) == 1


async def test_a_booking_waits_for_the_agent_row_lock_and_then_sees_the_booking_made_under_it(
    pg_url: str, pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    """The built-in calendar's `UPDATE agents SET booking_seq…` really serializes bookings on PostgreSQL."""
    agent_id = pg_agent.agent.id
    parsed = sync_database_url(pg_url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    )
    with psycopg.connect(conninfo) as holder:
        # Another process booking 10:00 for this agent: it holds the row lock and has not committed yet.
        holder.execute("UPDATE agents SET booking_seq = booking_seq + 1 WHERE id = %s", (agent_id,))
        holder.execute(
            "INSERT INTO appointments (id, agent_id, start_at, end_at, status, attendee_name, attendee_phone,"
            " created_at, updated_at) VALUES ('apt_other', %s, '2026-03-09 14:00', '2026-03-09 14:30', 'booked',"
            " 'Bob Roe', '+12125550199', '2026-03-04 15:00', '2026-03-04 15:00')",
            (agent_id,),
        )
        contender = asyncio.create_task(pg_caller.call("book_appointment", booking()))
        await asyncio.sleep(0.5)
        held_back = not contender.done()
        holder.commit()

    outcome = await asyncio.wait_for(contender, timeout=10)

    assert held_back, "the booking ran while another transaction held the agent's row lock"
    assert outcome.code == "SLOT_UNAVAILABLE"
    assert await booked_count(pg_services, agent_id) == 1


async def test_connection_secrets_are_sealed_in_postgresql(
    pg_url: str, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    secret = "sk_test_" + uuid.uuid4().hex
    updated = await pg_services.agents.set_connection(
        pg_agent.agent.id, Connection(capability="payments", provider="stripe"), secrets={"api_key": secret}
    )
    connection_id = updated.connections["payments"].id
    assert connection_id is not None

    engine = create_engine(sync_database_url(pg_url))
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT credentials FROM connections")).scalars().all()
            dumped = connection.execute(text("SELECT CAST(c AS text) FROM connections AS c")).scalars().all()
    finally:
        engine.dispose()

    assert any(stored)
    assert all(secret not in (value or "") for value in stored)
    assert all(secret not in row for row in dumped)
    assert await pg_services.agents.connection_secrets(connection_id) == {"api_key": secret}


async def test_an_over_long_call_id_does_not_cost_the_audit_batch_its_rows_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    long_call_id = "c" * 255  # the longest call id the transports accept; the column holds 128
    assert (await pg_caller.call("check_availability", {"date": MONDAY}, call_id="call-short")).ok
    assert (await pg_caller.call("check_availability", {"date": MONDAY}, call_id=long_call_id)).ok

    await pg_services.audit.flush()
    call_ids = await pg_services.db.run(
        lambda session: sorted(
            session.execute(select(ToolCallRow.call_id).where(ToolCallRow.agent_id == pg_agent.agent.id)).scalars(),
            key=str,
        )
    )
    assert call_ids == ["call-short", "c" * 128]
    by_long_id = await pg_services.db.run(
        lambda session: session.execute(select(func.count()).where(ToolCallRow.call_id == long_call_id)).scalar_one()
    )
    assert by_long_id == 1


async def test_nul_characters_are_refused_in_arguments_and_removed_from_platform_reports_on_postgresql(
    pg_caller: DirectCaller, pg_services: Services, pg_agent: CreatedAgent
) -> None:
    refused = await pg_caller.call("create_contact", {"contact_name": "Jane\x00Doe", "contact_phone": "+12125550142"})
    # Recording only: the post-call engine (DBOS, one per process) is not what this test is about.
    pg_services.settings = pg_services.settings.model_copy(update={"postcall": "off"})
    app = create_app(services=pg_services)
    report = {
        "message": {
            "type": "end-of-call-report",
            "call": {"id": "pg-nul-1"},
            "customer": {"number": "+12125550142", "name": "Ja\x00ne"},
            "artifact": {"transcript": "AI: Hello\x00\nUser: Hi\x00 there"},
        }
    }
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http,
    ):
        stored = await http.post("/voice/vapi", json=report, headers={"Authorization": f"Bearer {pg_agent.api_key}"})
        record = await http.get("/v1/calls/pg-nul-1", headers={"Authorization": f"Bearer {pg_agent.api_key}"})

    assert refused.code == "VALIDATION_ERROR"
    assert refused.field == "contact_name"
    assert stored.status_code == 200, stored.text
    assert record.json()["caller_name"] == "Jane"
    assert [turn["text"] for turn in record.json()["transcript"]] == ["Hello", "Hi there"]
    assert "\x00" not in str(record.json()["payloads"])
