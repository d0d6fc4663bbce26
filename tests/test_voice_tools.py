"""Tool calls during a call, in each voice platform's own envelope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from integrations.capabilities import TimeSlot
from tests.conftest import NOW
from tests.support.scripted import ScriptedCalendar, specs_with
from tests.support.voice import fixture, raw
from tool_server.agents import Connection, CreatedAgent
from tool_server.app import create_app
from tool_server.clock import fixed_clock
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import ToolCallRow
from tool_server.voice.signatures import sign_retell, sign_vapi


def bearer(agent: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.api_key}", "Content-Type": "application/json"}


async def audited(services: Services, agent: CreatedAgent) -> list[ToolCallRow]:
    await services.audit.flush()
    query = select(ToolCallRow).where(ToolCallRow.agent_id == agent.agent.id).order_by(ToolCallRow.id)
    return await services.db.run(lambda session: list(session.execute(query).scalars()))


# -- Vapi -----------------------------------------------------------------------------------------


async def test_vapi_runs_two_parallel_calls_and_answers_both_in_order_with_http_200(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    response = await http.post("/voice/vapi", content=raw(fixture("vapi_tool_calls_schema")), headers=bearer(agent))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["toolCallId"] for r in results] == ["call_avail", "call_book"]
    assert all(isinstance(r.get("result", r.get("error")), str) for r in results)
    assert all("\n" not in r.get("result", r.get("error", "")) for r in results)
    slots = json.loads(results[0]["result"])["slots"]
    assert len(slots) == 2
    booked = json.loads(results[1]["result"])
    # The caller's number came from the call: the tool was called without a phone.
    assert booked["appointment"]["caller_phone"] == "+12125550142"


@pytest.mark.parametrize(
    ("name", "call_id", "slots"),
    [
        ("vapi_tool_calls_schema", "vapi-call-1", 2),
        ("vapi_tool_calls_arguments", "vapi-call-2", 1),
        ("vapi_tool_calls_parameters", "vapi-call-3", 3),
    ],
    ids=["function.arguments as a JSON string", "arguments as an object", "parameters"],
)
async def test_vapi_accepts_every_documented_argument_shape(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services, name: str, call_id: str, slots: int
) -> None:
    response = await http.post("/voice/vapi", content=raw(fixture(name)), headers=bearer(agent))

    first = response.json()["results"][0]
    assert response.status_code == 200
    assert "error" not in first, first
    assert len(json.loads(first["result"])["slots"]) == slots
    assert (await audited(services, agent))[0].call_id == call_id


async def test_a_failing_vapi_tool_answers_error_with_http_200(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    message = fixture("vapi_tool_calls_parameters")
    message["message"]["toolCallList"][0] = {
        "id": "tc_bad",
        "name": "book_appointment",
        "parameters": {"start": "2026-03-01T10:00"},
    }

    response = await http.post("/voice/vapi", content=raw(message), headers=bearer(agent))

    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["toolCallId"] == "tc_bad"
    assert "result" not in result
    error = json.loads(result["error"])
    assert error["code"] == "VALIDATION_ERROR"
    assert error["speech"]


async def test_vapi_arguments_that_are_not_json_answer_a_validation_error(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    message = fixture("vapi_tool_calls_schema")
    message["message"]["toolCallList"] = [
        {"id": "c1", "type": "function", "function": {"name": "check_availability", "arguments": "{not json"}}
    ]

    response = await http.post("/voice/vapi", content=raw(message), headers=bearer(agent))

    assert response.status_code == 200
    assert json.loads(response.json()["results"][0]["error"])["code"] == "VALIDATION_ERROR"


async def test_other_vapi_server_messages_are_acknowledged(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    update = {"message": {"type": "status-update", "status": "in-progress", "call": {"id": "x"}}}

    response = await http.post("/voice/vapi", content=raw(update), headers=bearer(agent))

    assert response.status_code == 200


@pytest.fixture
async def barrier_app(database_url: str) -> AsyncIterator[tuple[Any, CreatedAgent]]:
    """An app whose calendar answers only once two availability checks are in flight at once."""
    arrived = asyncio.Event()
    count = 0

    class Barrier(ScriptedCalendar):
        async def free_slots(self, start: Any, end: Any, duration: timedelta) -> list[TimeSlot]:
            nonlocal count
            count += 1
            if count >= 2:
                arrived.set()
            await arrived.wait()
            return [TimeSlot(start=start, end=start + duration)]

    calendar = Barrier()
    settings = ServerSettings(database_url=database_url, read_deadline_seconds=2)
    services = Services.build(settings, clock=fixed_clock(NOW), provider_specs=specs_with(calendar))
    created = await services.agents.create(
        "Barrier",
        timezone="America/New_York",
        phone_region="US",
        connections=[Connection(capability="calendar", provider=calendar.name)],
    )
    yield create_app(services=services), created
    await services.aclose()


async def test_vapi_runs_parallel_calls_concurrently(barrier_app: tuple[Any, CreatedAgent]) -> None:
    app, created = barrier_app
    message = fixture("vapi_tool_calls_parameters")
    message["message"]["toolCallList"] = [
        {"id": f"c{n}", "name": "check_availability", "parameters": {"date": "2026-03-09"}} for n in (1, 2)
    ]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        response = await client.post("/voice/vapi", content=raw(message), headers=bearer(created))

    # Run one after the other, the first call would wait for the second until its deadline.
    assert [("result" in r) for r in response.json()["results"]] == [True, True]


async def test_vapi_without_a_key_is_401_and_nothing_runs(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    response = await http.post("/voice/vapi", content=raw(fixture("vapi_tool_calls_schema")))

    assert response.status_code == 401
    assert await audited(services, agent) == []


async def test_with_a_vapi_secret_stored_the_hmac_or_legacy_secret_is_required(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    await services.platform_secrets.set(agent.agent.id, "vapi", "vapi-hmac-secret")
    body = raw(fixture("vapi_tool_calls_parameters"))
    stamp = int(NOW.timestamp())

    unsigned = await http.post("/voice/vapi", content=body, headers=bearer(agent))
    forged = await http.post(
        "/voice/vapi",
        content=body,
        headers={**bearer(agent), "x-timestamp": str(stamp), "x-signature": sign_vapi("wrong", body, stamp)},
    )
    signed = await http.post(
        "/voice/vapi",
        content=body,
        headers={**bearer(agent), "x-timestamp": str(stamp), "x-signature": sign_vapi("vapi-hmac-secret", body, stamp)},
    )
    legacy = await http.post(
        "/voice/vapi", content=body, headers={**bearer(agent), "X-Vapi-Secret": "vapi-hmac-secret"}
    )

    assert (unsigned.status_code, forged.status_code) == (401, 401)
    assert (signed.status_code, legacy.status_code) == (200, 200)
    assert [row.outcome for row in await audited(services, agent)] == ["OK", "OK"]


# -- Retell ---------------------------------------------------------------------------------------


async def test_retell_takes_the_name_call_args_body_and_fills_the_caller_number(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    response = await http.post(
        "/voice/retell/functions/book_appointment",
        content=raw(fixture("retell_function_wrapped")),
        headers=bearer(agent),
    )

    assert response.status_code == 200
    assert response.json()["appointment"]["caller_phone"] == "+12125550142"
    assert (await audited(services, agent))[0].call_id == "retell-call-1"


async def test_retell_takes_the_arguments_at_the_root(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post(
        "/voice/retell/functions/book_appointment",
        content=raw(fixture("retell_function_args_at_root")),
        headers={**bearer(agent), "X-Call-Id": "retell-call-2"},
    )

    assert response.status_code == 200
    assert response.json()["appointment"]["start"] == "2026-03-09T11:00:00-04:00"


async def test_a_failing_retell_function_answers_200_with_the_error_to_say(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    response = await http.post(
        "/voice/retell/functions/book_appointment",
        content=raw({"name": "book_appointment", "call": {}, "args": {"start": "2026-03-01T10:00"}}),
        headers=bearer(agent),
    )

    assert response.status_code == 200
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["speech"]


async def test_a_bad_retell_signature_is_401_and_nothing_runs(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    await services.platform_secrets.set(agent.agent.id, "retell", "key_retell_sandbox_123")
    body = raw(fixture("retell_function_wrapped"))
    now_ms = int(NOW.timestamp() * 1000)

    forged = await http.post(
        "/voice/retell/functions/book_appointment",
        content=body,
        headers={**bearer(agent), "X-Retell-Signature": sign_retell("not-the-key", body, now_ms)},
    )
    missing = await http.post("/voice/retell/functions/book_appointment", content=body, headers=bearer(agent))
    signed = await http.post(
        "/voice/retell/functions/book_appointment",
        content=body,
        headers={**bearer(agent), "X-Retell-Signature": sign_retell("key_retell_sandbox_123", body, now_ms)},
    )

    assert (forged.status_code, missing.status_code) == (401, 401)
    assert forged.json()["error"]["code"] == "UNAUTHORIZED"
    assert signed.status_code == 200
    assert [row.call_id for row in await audited(services, agent)] == ["retell-call-1"]


# -- ElevenLabs, Bland, Synthflow ---------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["elevenlabs", "bland", "synthflow"])
async def test_plain_tool_platforms_take_the_arguments_as_the_body_and_the_call_context_too(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services, platform: str
) -> None:
    response = await http.post(
        f"/voice/{platform}/tools/book_appointment",
        content=raw(
            {
                "start": "2026-03-09T14:00",
                "caller_name": "Jo",
                "_call_id": f"{platform}-1",
                "_caller_number": "(212) 555-0150",
            }
        ),
        headers=bearer(agent),
    )

    assert response.status_code == 200, response.text
    assert response.json()["appointment"]["caller_phone"] == "+12125550150"
    assert response.json()["speech"]
    row = (await audited(services, agent))[0]
    assert (row.call_id, row.transport) == (f"{platform}-1", platform)


async def test_query_parameters_count_as_arguments_for_get_tools(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.get(
        "/voice/elevenlabs/tools/check_availability",
        params={"date": "2026-03-09", "max_slots": "2"},
        headers=bearer(agent),
    )

    assert response.status_code == 200
    assert len(response.json()["slots"]) == 2


async def test_a_platform_that_is_not_served_is_a_validation_error(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    response = await http.post("/voice/acme/tools/check_availability", content=b"{}", headers=bearer(agent))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
