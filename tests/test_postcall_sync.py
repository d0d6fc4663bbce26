"""The post-call sync in one process, through the public surface: POST /v1/calls, GET /v1/calls/{id}."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from integrations.registry import INTEGRATIONS
from tests.conftest import MONDAY, NOW
from tests.support.catch_hook import CatchHook, serve_catch_hook
from tests.support.clocks import MovableClock
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.postcall.engine import PostCallEngine
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import AppointmentRow, ContactRow, NoteRow, OutboxMessageRow
from tool_server.voice import generic

TOOL_SERVER = str(Path(sys.executable).parent / "tool-server")
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


@pytest.fixture
def hook() -> Iterator[CatchHook]:
    with serve_catch_hook() as served:
        yield served


async def test_a_replayed_and_a_second_final_event_start_no_second_sync(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)

    for event in ("call_completed", "call_completed", "call_summarized"):
        response = await http.post("/v1/calls", json=call("call-2", event=event), headers=headers(created))
        assert response.status_code == 200, response.text
    record = await settled(http, created, "call-2")

    assert record["sync_status"] == "synced"
    assert [await count(services, t, created.agent.id) for t in (ContactRow, NoteRow, AppointmentRow)] == [1, 1, 1]


async def test_a_booking_made_during_the_call_is_linked_and_not_booked_again(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    booking = {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}
    booked = await http.post(
        "/v1/tools/book_appointment", json=booking, headers={**headers(created), "X-Call-Id": "call-3"}
    )
    assert booked.status_code == 200, booked.text
    appointment_id = booked.json()["appointment"]["appointment_id"]
    reported = call("call-3", appointment_requested=None, appointment_booked={"appointment_id": appointment_id})

    await http.post("/v1/calls", json=reported, headers=headers(created))
    record = await settled(http, created, "call-3")

    calendar = next(step for step in record["sync_steps"] if step["job"] == "calendar")
    assert calendar["status"] == "done"
    assert calendar["result"]["appointment_id"] == appointment_id
    assert calendar["result"]["booked_during_call"] is True
    assert await count(services, AppointmentRow, created.agent.id) == 1
    crm = next(step for step in record["sync_steps"] if step["job"] == "crm")
    note = await services.db.run(lambda session: session.get(NoteRow, crm["result"]["note_id"]))
    assert note is not None
    assert appointment_id in note.body
    assert "book_appointment: OK" in note.body  # the tools called during the call


async def test_a_call_that_booked_but_reported_only_the_request_is_not_booked_twice(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    booking = {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}
    await http.post("/v1/tools/book_appointment", json=booking, headers={**headers(created), "X-Call-Id": "call-4"})

    await http.post("/v1/calls", json=call("call-4"), headers=headers(created))
    record = await settled(http, created, "call-4")

    assert record["sync_status"] == "synced"
    assert await count(services, AppointmentRow, created.agent.id) == 1


async def test_a_failing_follow_up_is_parked_with_its_error_and_the_retry_endpoint_runs_it_again(
    make_agent: Any, http: httpx.AsyncClient, services: Services, hook: CatchHook
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps.model_validate({"forward_url": hook.url("zap")}))
    hook.status = 500

    await http.post("/v1/calls", json=call("call-5"), headers=headers(created))
    record = await settled(http, created, "call-5")

    assert record["sync_status"] == "failed"
    steps = {step["job"]: step for step in record["sync_steps"]}
    assert steps["forward"]["status"] == "failed"
    assert steps["forward"]["attempts"] == 3
    assert steps["forward"]["error"] == "the webhook answered 500"
    assert steps["crm"]["status"] == steps["calendar"]["status"] == "done"

    hook.status = 200
    retried = await http.post("/v1/calls/call-5/retry", headers=headers(created))
    assert retried.status_code == 202
    assert retried.json()["retried"] == ["forward"]
    record = await settled(http, created, "call-5")

    assert record["sync_status"] == "synced"
    forwarded = hook.bodies("zap")
    assert len(forwarded) == 1
    assert forwarded[0]["call_id"] == "call-5"
    assert forwarded[0]["customer_phone"] == "+12125550142"
    again = await http.post("/v1/calls/call-5/retry", headers=headers(created))
    assert (again.status_code, again.json()["retried"]) == (200, [])
    assert [key for _path, key, _body in hook.received] == [f"call:{record['record_id']}"]


async def test_retry_answers_not_found_for_another_agents_call(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    owner = await make_agent(connections=BUILTIN)
    stranger = await make_agent("Other Clinic", connections=BUILTIN)
    await http.post("/v1/calls", json=call("call-6"), headers=headers(owner))

    response = await http.post("/v1/calls/call-6/retry", headers=headers(stranger))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_the_team_channel_gets_a_one_line_summary_of_the_call(
    make_agent: Any, http: httpx.AsyncClient, services: Services, hook: CatchHook
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps.model_validate({"team_channel_url": hook.url("slack")}))

    await http.post("/v1/calls", json=call("call-7"), headers=headers(created))
    record = await settled(http, created, "call-7")

    assert record["sync_status"] == "synced"
    [message] = hook.bodies("slack")
    assert message["text"].startswith("Test Dental: call from Jane Doe, outcome appointment requested.")
    assert "Wants a cleaning" in message["text"]


async def test_an_appointment_asked_for_only_in_the_transcript_is_read_out_and_booked(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    bare = call("call-8", call_summary=None, call_outcome=None, appointment_requested=None)
    bare["transcript"] = "agent: Hello, Bright Smiles\ncaller: I'd like to book a cleaning on Monday at 10am"

    await http.post("/v1/calls", json=bare, headers=headers(created))
    record = await settled(http, created, "call-8")

    # No model is configured: the deterministic fallback read the request and left the summary unknown.
    assert record["analysis"]["extraction"]["source"] == "fallback"
    assert "summary" in record["analysis"]["extraction"]["unknown"]
    calendar = next(step for step in record["sync_steps"] if step["job"] == "calendar")
    assert calendar["status"] == "done"
    assert calendar["result"]["start"] == f"{MONDAY}T10:00:00-04:00"
    # Once booked, the record says so: the request became this appointment.
    assert record["appointment"]["status"] == "booked"
    assert record["appointment"]["appointment_id"] == calendar["result"]["appointment_id"]
    assert await count(services, AppointmentRow, created.agent.id) == 1


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": database_url}
    return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=environment, timeout=120)


async def test_calls_retry_on_the_command_line_runs_the_failed_steps_again(
    make_agent: Any, http: httpx.AsyncClient, services: Services, hook: CatchHook, database_url: str
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps.model_validate({"forward_url": hook.url("zap")}))
    hook.status = 503
    await http.post("/v1/calls", json=call("call-9"), headers=headers(created))
    assert (await settled(http, created, "call-9"))["sync_status"] == "failed"
    hook.status = 200

    retried = await asyncio.to_thread(cli, database_url, "calls", "retry", "call-9", "--agent", created.agent.id)

    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["retried"] == ["forward"]
    assert (await settled(http, created, "call-9"))["sync_status"] == "synced"
    shown = await asyncio.to_thread(cli, database_url, "calls", "show", "call-9", "--agent", created.agent.id)
    steps = {step["job"]: step for step in json.loads(shown.stdout)["sync_steps"]}
    assert (steps["forward"]["status"], steps["forward"]["retries"]) == ("done", 1)
    assert len(hook.bodies("zap")) == 1


def test_followups_set_changes_only_what_it_names_and_refuses_a_bad_url(database_url: str) -> None:
    created = json.loads(cli(database_url, "agents", "create", "--name", "Clinic").stdout)
    agent_id = created["id"]

    first = cli(database_url, "followups", "set", agent_id, "--confirmation-sms", "--payment-receipt")
    second = cli(database_url, "followups", "set", agent_id, "--team-channel-url", "https://hooks.example.com/T1")
    bad = cli(database_url, "followups", "set", agent_id, "--forward-url", "not a url")

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    shown = json.loads(cli(database_url, "followups", "show", agent_id).stdout)
    assert shown["confirmation_sms"] is True
    assert shown["payment_receipt"] is True
    assert shown["team_channel_url"] == "https://hooks.example.com/T1"
    assert bad.returncode == 2
    assert "forward_url" in bad.stderr


async def test_the_payment_link_follow_up_texts_a_stripe_link_once(
    make_agent: Any, http: httpx.AsyncClient, services: Services, sandboxes: ServedSandboxes, fresh_sandboxes: None
) -> None:
    stripe = INTEGRATIONS["stripe"].sandbox_connection(sandboxes.url("stripe"))
    created = await make_agent(
        connections=[*BUILTIN, Connection(capability="payments", provider="stripe", settings=stripe.settings)],
        secrets={"payments": dict(stripe.secrets)},
    )
    deposit = {"amount_minor": 4900, "currency": "USD", "description": "Cleaning deposit"}
    await services.followups.set(created.agent.id, FollowUps.model_validate({"payment_link": deposit}))

    await http.post("/v1/calls", json=call("call-10"), headers=headers(created))
    record = await settled(http, created, "call-10")

    assert record["sync_status"] == "synced"
    step = next(step for step in record["sync_steps"] if step["job"] == "payment_link")
    assert step["status"] == "done"
    [session] = sandboxes.sandboxes["stripe"].state.dump()["checkout_sessions"]
    texts = await services.db.run(
        lambda session: list(session.execute(select(OutboxMessageRow.body, OutboxMessageRow.to_number)).all())
    )
    assert len(texts) == 1
    body, to = texts[0]
    assert to == "+12125550142"
    assert "Cleaning deposit" in body
    assert session["url"] in body
    assert session["amount_total"] == 4900


async def test_a_call_whose_final_event_never_comes_is_synced_with_what_arrived_after_the_wait(
    database_url: str,
) -> None:
    clock = MovableClock(NOW)
    settings = ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_poll_seconds=0.05,
        postcall_final_event_wait_seconds=600,
        postcall_sweep_seconds=3600,  # this test sweeps by hand
    )
    services = Services.build(settings, clock=clock)
    engine = PostCallEngine(services)
    await engine.start()
    try:
        created = await services.agents.create(
            "Clinic", timezone="America/New_York", phone_region="US", connections=BUILTIN
        )
        ended = call("call-11")
        recorded = await services.calls.record(
            created.agent.id, "call_ended", generic.parse(ended, phone_region="US"), ended, final=False
        )
        assert await engine.sweep() == 0
        clock.now = NOW + timedelta(minutes=11)

        started = await engine.sweep()
        status = await wait_for_status(services, recorded.record_id)
    finally:
        await engine.stop()
        await services.aclose()

    assert started == 1
    assert status == "synced"


async def wait_for_status(services: Services, record_id: str) -> str:
    for _ in range(600):
        record = await services.calls.by_id(record_id)
        assert record is not None
        if record.sync_status in ("synced", "failed"):
            return record.sync_status
        await asyncio.sleep(0.05)
    raise AssertionError(f"record {record_id} did not settle")
