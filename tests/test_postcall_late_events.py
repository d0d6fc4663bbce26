"""Events that arrive after a call was synced: the CRM gets what changed, nothing else runs again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.test_postcall_sync import BUILTIN, call, count, headers, settled
from tool_server.postcall.followups import FollowUps
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import AppointmentRow, ContactRow, NoteRow, OutboxMessageRow

RECORDING = "https://recordings.example.com/call-1.mp3"


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


async def notes(services: Services, agent_id: str) -> list[str]:
    """The agent's notes, the call note first and update notes after (the test clock stands still)."""
    query = select(NoteRow.body).where(NoteRow.agent_id == agent_id)
    bodies = await services.db.run(lambda session: list(session.execute(query).scalars()))
    return sorted(bodies, key=lambda body: body.startswith("Update to call"))


async def synced_call(http: httpx.AsyncClient, services: Services, make_agent: Any, call_id: str) -> Any:
    created = await make_agent(connections=BUILTIN)
    await services.followups.set(created.agent.id, FollowUps(confirmation_sms=True))
    response = await http.post("/v1/calls", json=call(call_id), headers=headers(created))
    assert response.status_code == 200, response.text
    assert (await settled(http, created, call_id))["sync_status"] == "synced"
    return created


async def test_a_recording_that_arrives_after_the_sync_adds_one_update_note_and_books_and_texts_nothing_again(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await synced_call(http, services, make_agent, "call-1")

    late = {"event": "recording_ready", "call_id": "call-1", "recording_url": RECORDING}
    response = await http.post("/v1/calls", json=late, headers=headers(created))
    assert response.status_code == 200, response.text
    assert response.json()["sync_status"] == "syncing"
    record = await settled(http, created, "call-1")

    assert record["sync_status"] == "synced"
    assert record["recording_url"] == RECORDING
    updates = [step for step in record["sync_steps"] if step["job"].startswith("update:")]
    assert [step["status"] for step in updates] == ["done"]
    written = await notes(services, created.agent.id)
    assert len(written) == 2
    assert written[1] == f"Update to call call-1 via generic\nRecording: {RECORDING}"
    agent_id = created.agent.id
    assert [await count(services, t, agent_id) for t in (ContactRow, AppointmentRow, OutboxMessageRow)] == [1, 1, 1]


async def test_the_same_late_change_delivered_again_or_by_another_event_adds_no_second_update(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await synced_call(http, services, make_agent, "call-2")

    for event in ("recording_ready", "recording_ready", "recording_uploaded"):
        late = {"event": event, "call_id": "call-2", "recording_url": RECORDING}
        response = await http.post("/v1/calls", json=late, headers=headers(created))
        assert response.status_code == 200, response.text
    record = await settled(http, created, "call-2")

    assert len([step for step in record["sync_steps"] if step["job"].startswith("update:")]) == 1
    assert len(await notes(services, created.agent.id)) == 2


async def test_a_late_analysis_sends_only_the_fields_it_changed(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await synced_call(http, services, make_agent, "call-3")

    analysis = call(
        "call-3", event="call_analyzed", call_summary="Booked a cleaning for Monday at 10.", call_sentiment="positive"
    )
    response = await http.post("/v1/calls", json=analysis, headers=headers(created))
    assert response.status_code == 200, response.text
    await settled(http, created, "call-3")

    written = await notes(services, created.agent.id)
    assert written[1:] == ["Update to call call-3 via generic\nSummary: Booked a cleaning for Monday at 10."]


async def test_an_event_that_changes_nothing_the_crm_shows_starts_no_update(
    make_agent: Any, http: httpx.AsyncClient, services: Services
) -> None:
    created = await synced_call(http, services, make_agent, "call-4")

    response = await http.post("/v1/calls", json=call("call-4", event="call_summarized"), headers=headers(created))
    assert response.status_code == 200, response.text

    assert response.json()["sync_status"] == "synced"
    assert len(await notes(services, created.agent.id)) == 1
