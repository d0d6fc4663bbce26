"""Post-call starts from what the call's own tools did: the booking, the caller's name, the follow-ups.

Each test makes tool calls under a platform call id, then reports the finished call the way a
platform does, and reads the record and the built-in providers back through the public surface.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

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
CALLER = "+12125550142"


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    # The app's lifespan runs the post-call engine in this process, retrying fast.
    return ServerSettings(
        database_url=database_url,
        postcall="inline",
        postcall_retry_base_seconds=0.05,
        postcall_poll_seconds=0.05,
        postcall_max_attempts=3,
    )


def bearer(created: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.api_key}"}


async def settled(http: httpx.AsyncClient, created: CreatedAgent, call_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        body: dict[str, Any] = (await http.get(f"/v1/calls/{call_id}", headers=bearer(created))).json()
        if body.get("sync_status") in ("synced", "failed"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{call_id} did not settle: {body}")
        await asyncio.sleep(0.05)


async def rows(services: Services, table: Any, agent_id: str) -> list[Any]:
    query = select(table).where(table.agent_id == agent_id)
    return await services.db.run(lambda session: list(session.execute(query).scalars()))


def steps(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["job"]: step for step in record["sync_steps"]}


async def vapi_tool_call(
    http: httpx.AsyncClient, created: CreatedAgent, call_id: str, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    message = {
        "message": {
            "type": "tool-calls",
            "call": {"id": call_id, "type": "inboundPhoneCall"},
            "customer": {"number": CALLER},
            "toolCallList": [{"id": f"tc-{name}", "function": {"name": name, "arguments": arguments}}],
        }
    }
    response = await http.post("/voice/vapi", json=message, headers=bearer(created))
    assert response.status_code == 200, response.text
    [entry] = response.json()["results"]
    assert "result" in entry, entry
    result: dict[str, Any] = json.loads(entry["result"])
    return result


def vapi_report_with_top_level_artifacts(call_id: str) -> dict[str, Any]:
    """An end-of-call report carrying transcript, summary and recording at the top of the message."""
    return {
        "message": {
            "type": "end-of-call-report",
            "endedReason": "customer-ended-call",
            "startedAt": "2026-03-04T14:50:00Z",
            "endedAt": "2026-03-04T14:55:00Z",
            "call": {"id": call_id, "type": "inboundPhoneCall"},
            "customer": {"number": CALLER},
            "transcript": "AI: Bright Smiles, how can I help?\nUser: Hi, I'd like a cleaning on Monday at 10.",
            "summary": "Booked a cleaning for Monday at 10.",
            "recordingUrl": "https://storage.vapi.example/recordings/abc.wav",
            "analysis": {},
            "artifact": {},
        }
    }


async def test_a_vapi_booking_then_a_report_with_top_level_artifacts_links_the_booking_and_confirms_it(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    booked = await vapi_tool_call(
        http, created, "vapi-1", "book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Maria Garcia"}
    )

    response = await http.post(
        "/voice/vapi", json=vapi_report_with_top_level_artifacts("vapi-1"), headers=bearer(created)
    )
    assert response.status_code == 200, response.text
    record = await settled(http, created, "vapi-1")

    assert record["sync_status"] == "synced", record["sync_steps"]
    assert record["appointment"]["status"] == "booked"
    assert record["appointment"]["appointment_id"] == booked["appointment"]["appointment_id"]
    assert record["caller_name"] == "Maria Garcia"
    assert record["summary"] == "Booked a cleaning for Monday at 10."
    assert record["recording_url"] == "https://storage.vapi.example/recordings/abc.wav"
    assert [turn["speaker"] for turn in record["transcript"]] == ["agent", "caller"]
    calendar = steps(record)["calendar"]
    assert calendar["status"] == "done"
    assert calendar["result"]["booked_during_call"] is True
    assert len(await rows(services, AppointmentRow, created.agent.id)) == 1
    [contact] = await rows(services, ContactRow, created.agent.id)
    assert contact.name == "Maria Garcia"
    [text] = await rows(services, OutboxMessageRow, created.agent.id)
    assert "You're booked for Monday, March 9 at 10 AM" in text.body


async def test_a_flat_report_of_a_booking_made_through_the_tools_links_it_without_an_id(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    made = await http.post(
        "/v1/tools/book_appointment",
        json={"start": f"{MONDAY}T11:00", "caller_name": "Sam Lee", "caller_phone": CALLER},
        headers={**bearer(created), "X-Call-Id": "zap-1"},
    )
    assert made.status_code == 200, made.text
    report = {
        "call_id": "zap-1",
        "customer_phone": CALLER,
        "appointment_booked": {"date": MONDAY, "time": "11:00", "timezone": "America/New_York"},
    }

    assert (await http.post("/v1/calls", json=report, headers=bearer(created))).status_code == 200
    record = await settled(http, created, "zap-1")

    assert steps(record)["calendar"]["status"] == "done"
    assert steps(record)["calendar"]["result"]["appointment_id"] == made.json()["appointment"]["appointment_id"]
    assert len(await rows(services, AppointmentRow, created.agent.id)) == 1


async def test_a_flat_report_of_a_booking_the_calendar_does_not_have_books_it_once(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    report = {
        "call_id": "zap-2",
        "customer_name": "Ana Ruiz",
        "customer_phone": CALLER,
        "appointment_booked": {"date": MONDAY, "time": "14:00", "timezone": "America/New_York", "title": "Exam"},
    }

    await http.post("/v1/calls", json=report, headers=bearer(created))
    record = await settled(http, created, "zap-2")

    calendar = steps(record)["calendar"]
    assert calendar["status"] == "done", calendar
    assert calendar["result"]["start"] == f"{MONDAY}T14:00:00-04:00"
    assert (
        record["appointment"] | {"status": "booked", "appointment_id": calendar["result"]["appointment_id"]}
        == (record["appointment"])
    )
    [appointment] = await rows(services, AppointmentRow, created.agent.id)
    assert appointment.attendee_name == "Ana Ruiz"
    # The note is written once the calendar job has ended, so it says what was booked.
    [note] = await rows(services, NoteRow, created.agent.id)
    assert f"Appointment booked: {MONDAY}T14:00:00-04:00 (id {appointment.id})" in note.body


async def test_an_appointment_booked_and_cancelled_during_the_call_is_not_booked_again(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    booked = await vapi_tool_call(
        http, created, "vapi-2", "book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Maria Garcia"}
    )
    await vapi_tool_call(
        http, created, "vapi-2", "cancel_appointment", {"appointment_id": booked["appointment"]["appointment_id"]}
    )

    await http.post("/voice/vapi", json=vapi_report_with_top_level_artifacts("vapi-2"), headers=bearer(created))
    record = await settled(http, created, "vapi-2")

    assert record["appointment"]["status"] == "cancelled"
    assert steps(record)["calendar"]["status"] == "skipped"
    [appointment] = await rows(services, AppointmentRow, created.agent.id)
    assert appointment.status == "cancelled"
    [text] = await rows(services, OutboxMessageRow, created.agent.id)
    assert "booked" not in text.body


async def test_a_name_said_as_this_is_reaches_the_booking_contact_and_confirmation(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    report = {
        "call_id": "zap-3",
        "customer_phone": CALLER,
        "transcript": "agent: Bright Smiles, how can I help?\n"
        "caller: Hi, this is Maria Garcia. Could I come in on Monday at 3pm for a cleaning?",
    }

    await http.post("/v1/calls", json=report, headers=bearer(created))
    record = await settled(http, created, "zap-3")

    assert record["caller_name"] == "Maria Garcia"
    assert record["appointment"]["status"] == "booked"
    [appointment] = await rows(services, AppointmentRow, created.agent.id)
    assert appointment.attendee_name == "Maria Garcia"
    [contact] = await rows(services, ContactRow, created.agent.id)
    assert contact.name == "Maria Garcia"
    [text] = await rows(services, OutboxMessageRow, created.agent.id)
    assert text.body.startswith("Test Dental: You're booked for Monday, March 9 at 3 PM")
