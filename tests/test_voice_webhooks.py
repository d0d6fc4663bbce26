"""Call-completed webhooks: verified on the raw body, normalized into one record, replay-proof."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, AgentFactory
from tests.support.voice import fixture, raw
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.store.tables import CallEventRow, CallRecordRow
from tool_server.voice.signatures import sign_bland, sign_elevenlabs, sign_retell, sign_synthflow, sign_vapi

SECRET = "whsec_platform_secret_for_tests"


@dataclass(frozen=True)
class Delivery:
    """How one platform delivers one fixture: where, and which headers sign it at a given time."""

    platform: str
    fixture: str
    call_id: str
    path: Callable[[CreatedAgent], str]
    sign: Callable[[bytes, int], dict[str, str]]
    # Seconds into the past that the scheme refuses; None when the scheme carries no timestamp.
    stale_after: int | None


def _retell(body: bytes, now: int) -> dict[str, str]:
    return {"X-Retell-Signature": sign_retell(SECRET, body, now * 1000)}


def _elevenlabs(body: bytes, now: int) -> dict[str, str]:
    return {"ElevenLabs-Signature": sign_elevenlabs(SECRET, body, now)}


def _vapi(body: bytes, now: int) -> dict[str, str]:
    return {"x-timestamp": str(now), "x-signature": sign_vapi(SECRET, body, now)}


def _bland(body: bytes, _now: int) -> dict[str, str]:
    return {"X-Webhook-Signature": sign_bland(SECRET, body)}


def _synthflow(_body: bytes, _now: int) -> dict[str, str]:
    return {"Synthflow-Signature": sign_synthflow(SECRET, "synthflow-call-9")}


DELIVERIES = [
    Delivery(
        "retell", "retell_call_ended", "retell-call-9", lambda a: f"/voice/retell/webhook/{a.agent.id}", _retell, 301
    ),
    Delivery(
        "elevenlabs",
        "elevenlabs_post_call_transcription",
        "conv_9",
        lambda a: f"/voice/elevenlabs/webhook/{a.agent.id}",
        _elevenlabs,
        1801,
    ),
    Delivery("vapi", "vapi_end_of_call_report", "vapi-call-9", lambda _a: "/voice/vapi", _vapi, 301),
    Delivery("bland", "bland_post_call", "bland-call-9", lambda a: f"/voice/bland/webhook/{a.agent.id}", _bland, None),
    Delivery(
        "synthflow",
        "synthflow_post_call",
        "synthflow-call-9",
        lambda a: f"/voice/synthflow/webhook/{a.agent.id}",
        _synthflow,
        None,
    ),
]
IDS = [d.platform for d in DELIVERIES]


@pytest.fixture
async def receiving(agent: CreatedAgent, services: Services) -> CreatedAgent:
    for platform in ("retell", "elevenlabs", "vapi", "bland", "synthflow"):
        await services.platform_secrets.set(agent.agent.id, platform, SECRET)  # type: ignore[arg-type]
    return agent


def headers_for(delivery: Delivery, agent: CreatedAgent, body: bytes, at: int) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **delivery.sign(body, at)}
    if delivery.platform == "vapi":
        headers["Authorization"] = f"Bearer {agent.api_key}"  # Vapi's URL carries no agent: the key names it
    return headers


async def counts(services: Services, agent: CreatedAgent) -> tuple[int, int]:
    def work(session: Any) -> tuple[int, int]:
        records = session.execute(
            select(func.count()).select_from(CallRecordRow).where(CallRecordRow.agent_id == agent.agent.id)
        ).scalar_one()
        events = session.execute(
            select(func.count()).select_from(CallEventRow).where(CallEventRow.agent_id == agent.agent.id)
        ).scalar_one()
        return int(records), int(events)

    return await services.db.run(work)


@pytest.mark.parametrize("delivery", DELIVERIES, ids=IDS)
async def test_a_valid_delivery_gives_2xx_and_exactly_one_call_record(
    delivery: Delivery, receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    body = raw(fixture(delivery.fixture))

    response = await http.post(
        delivery.path(receiving), content=body, headers=headers_for(delivery, receiving, body, int(NOW.timestamp()))
    )

    assert 200 <= response.status_code < 300, response.text
    assert await counts(services, receiving) == (1, 1)
    record = await services.calls.get(receiving.agent.id, delivery.call_id)
    assert record is not None
    assert record.platform == delivery.platform
    assert record.caller_phone == "+12125550142"
    # Retell's call_ended is followed by call_analyzed, which starts the sync; the others are final.
    assert record.sync_status == ("waiting" if delivery.fixture == "retell_call_ended" else "queued")
    assert record.payloads  # the platform's own payload is kept


@pytest.mark.parametrize("delivery", DELIVERIES, ids=IDS)
async def test_a_bad_signature_gives_401_and_records_nothing(
    delivery: Delivery, receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    body = raw(fixture(delivery.fixture))
    signed = headers_for(delivery, receiving, body, int(NOW.timestamp()))
    tampered = body.replace(b"Jane", b"Jake") if delivery.platform != "synthflow" else body

    if delivery.platform == "synthflow":
        signed = {**signed, "Synthflow-Signature": sign_synthflow("wrong-secret", delivery.call_id)}
    response = await http.post(delivery.path(receiving), content=tampered, headers=signed)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert await counts(services, receiving) == (0, 0)


@pytest.mark.parametrize(
    "delivery", [d for d in DELIVERIES if d.stale_after], ids=[d.platform for d in DELIVERIES if d.stale_after]
)
async def test_a_timestamp_outside_the_tolerance_gives_401(
    delivery: Delivery, receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    body = raw(fixture(delivery.fixture))
    assert delivery.stale_after is not None
    stale = int((NOW - timedelta(seconds=delivery.stale_after)).timestamp())

    response = await http.post(
        delivery.path(receiving), content=body, headers=headers_for(delivery, receiving, body, stale)
    )

    assert response.status_code == 401
    assert await counts(services, receiving) == (0, 0)


@pytest.mark.parametrize("delivery", DELIVERIES, ids=IDS)
async def test_the_same_delivery_replayed_five_times_concurrently_gives_one_record(
    delivery: Delivery, receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    body = raw(fixture(delivery.fixture))
    headers = headers_for(delivery, receiving, body, int(NOW.timestamp()))

    responses = await asyncio.gather(
        *(http.post(delivery.path(receiving), content=body, headers=headers) for _ in range(5))
    )

    assert all(200 <= r.status_code < 300 for r in responses)
    assert sorted(r.json()["duplicate"] for r in responses) == [False, True, True, True, True]
    assert await counts(services, receiving) == (1, 1)


async def test_a_webhook_for_an_agent_without_the_platform_secret_is_refused(
    agent: CreatedAgent, http: httpx.AsyncClient
) -> None:
    body = raw(fixture("retell_call_ended"))

    response = await http.post(
        f"/voice/retell/webhook/{agent.agent.id}", content=body, headers=_retell(body, int(NOW.timestamp()))
    )

    assert response.status_code == 401


async def test_retell_call_ended_then_call_analyzed_make_one_merged_record(
    receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    for name in ("retell_call_ended", "retell_call_analyzed"):
        body = raw(fixture(name))
        response = await http.post(
            f"/voice/retell/webhook/{receiving.agent.id}", content=body, headers=_retell(body, int(NOW.timestamp()))
        )
        assert response.status_code == 200

    record = await services.calls.get(receiving.agent.id, "retell-call-9")

    assert await counts(services, receiving) == (1, 2)
    assert record is not None
    assert record.events == ["call_analyzed", "call_ended"]
    assert record.summary == "Jane booked a cleaning for Monday at 10."
    assert record.sentiment == "Positive"
    assert record.duration_seconds == 600
    assert [turn.speaker for turn in record.transcript] == ["agent", "caller"]  # kept from call_ended
    assert record.appointment is not None
    assert record.appointment.appointment_id == "apt_2"
    assert set(record.payloads) == {"call_ended", "call_analyzed"}


@pytest.mark.parametrize(
    ("delivery", "expected"),
    [
        (DELIVERIES[0], {"caller_name": "Jane Doe", "direction": "inbound", "outcome": "user_hangup"}),
        (DELIVERIES[1], {"caller_name": "Jane Doe", "summary": "Jane booked Monday at 10.", "outcome": "success"}),
        (
            DELIVERIES[2],
            {
                "caller_name": "Jane Doe",
                "summary": "Jane booked a cleaning for Monday at 10.",
                "outcome": "customer-ended-call",
                "recording_url": "https://storage.vapi.ai/recording-9.wav",
            },
        ),
        (DELIVERIES[3], {"caller_name": "Jane Doe", "summary": "Jane asked for Monday at 10.", "direction": "inbound"}),
        (DELIVERIES[4], {"caller_name": "Jane Doe", "outcome": "human_goodbye", "duration_seconds": 113.0}),
    ],
    ids=IDS,
)
async def test_each_platform_is_normalized_into_the_same_record_fields(
    delivery: Delivery, expected: dict[str, Any], receiving: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    body = raw(fixture(delivery.fixture))
    await http.post(
        delivery.path(receiving), content=body, headers=headers_for(delivery, receiving, body, int(NOW.timestamp()))
    )

    record = await services.calls.get(receiving.agent.id, delivery.call_id)

    assert record is not None
    assert {key: getattr(record, key) for key in expected} == expected
    assert record.transcript, "every fixture carries a transcript"
    assert record.started_at is not None


async def test_the_generic_call_api_takes_the_flat_shape_and_ignores_a_replay(
    agent: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Authorization": f"Bearer {agent.api_key}"}
    first = await http.post("/v1/calls", content=raw(fixture("generic_call")), headers=headers)
    again = await http.post("/v1/calls", content=raw(fixture("generic_call")), headers=headers)
    fetched = await http.get("/v1/calls/zap-call-9", headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    record = fetched.json()
    assert record["caller_phone"] == "+12125550142"
    assert record["appointment"] == {
        "status": "booked",
        "title": "Cleaning",
        "start": None,
        "date": "2026-03-09",
        "time": "10:00",
        "timezone": "America/New_York",
        "duration_minutes": 30,
        "appointment_id": None,
    }
    assert record["duration_seconds"] == 300
    assert [t["speaker"] for t in record["transcript"]] == ["agent", "caller"]


async def test_a_call_record_is_visible_only_to_its_agent(
    agent: CreatedAgent, make_agent: AgentFactory, http: httpx.AsyncClient
) -> None:
    other = await make_agent("Other")
    await http.post(
        "/v1/calls", content=raw(fixture("generic_call")), headers={"Authorization": f"Bearer {agent.api_key}"}
    )

    mine = await http.get("/v1/calls/zap-call-9", headers={"Authorization": f"Bearer {agent.api_key}"})
    theirs = await http.get("/v1/calls/zap-call-9", headers={"Authorization": f"Bearer {other.api_key}"})

    assert mine.status_code == 200
    assert theirs.status_code == 404


async def test_platform_secrets_can_be_set_over_http_and_are_never_echoed(
    agent: CreatedAgent, http: httpx.AsyncClient, services: Services
) -> None:
    headers = {"Authorization": f"Bearer {agent.api_key}"}
    stored = await http.put("/v1/platforms/retell/secret", json={"secret": "key_retell_123456"}, headers=headers)
    unknown = await http.put("/v1/platforms/acme/secret", json={"secret": "key_retell_123456"}, headers=headers)

    assert stored.status_code == 204
    assert stored.content == b""
    assert unknown.status_code == 400
    assert await services.platform_secrets.get(agent.agent.id, "retell") == "key_retell_123456"
