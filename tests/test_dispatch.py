"""Dispatch: deadlines, idempotency, error translation and the audit log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from integrations.capabilities import RateLimitedError, UpstreamError
from tests.conftest import MONDAY, NOW, AgentFactory, CallerFactory
from tests.support.callers import DirectCaller, ToolCaller
from tests.support.clocks import MovableClock
from tests.support.scripted import ScriptedCalendar, Step, specs_with
from tool_server.agents import Connection, CreatedAgent
from tool_server.app import create_app
from tool_server.clock import fixed_clock
from tool_server.dispatch import Deadlines
from tool_server.dispatch.idempotency import Claim, IdempotencyStore, derive_key
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import IdempotencyRow, ToolCallRow

BOOKING = {"start": f"{MONDAY}T10:00", "caller_name": "Jane Doe", "caller_phone": "+12125550142"}


@pytest.fixture
def calendar() -> ScriptedCalendar:
    return ScriptedCalendar()


@pytest.fixture
async def scripted(database_url: str, calendar: ScriptedCalendar) -> AsyncIterator[tuple[Services, CreatedAgent]]:
    settings = ServerSettings(
        database_url=database_url, tool_deadlines={"check_availability": 0.3, "book_appointment": 0.5}
    )
    services = Services.build(settings, clock=fixed_clock(NOW), provider_specs=specs_with(calendar))
    created = await services.agents.create(
        "Scripted",
        timezone="America/New_York",
        phone_region="US",
        connections=[Connection(capability="calendar", provider=calendar.name)],
    )
    yield services, created
    await services.aclose()


@pytest.fixture
def direct(scripted: tuple[Services, CreatedAgent]) -> ToolCaller:
    services, created = scripted
    return DirectCaller(services.dispatcher, created.agent)


async def test_a_read_that_overruns_its_deadline_answers_timeout_at_the_deadline(
    direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    calendar.script["free_slots"] = [Step(delay=30)]
    started = time.monotonic()

    outcome = await direct.call("check_availability", {"date": MONDAY})

    assert outcome.code == "TIMEOUT"
    assert outcome.error is not None
    assert outcome.error["retryable"] is True
    assert outcome.error["speech"] == "That's taking longer than it should. Let me try that again in a moment."
    assert time.monotonic() - started < 5  # cut at the 0.3 s deadline, not after the provider's 30 s


async def test_a_write_that_timed_out_is_not_remembered_so_its_retry_runs(
    direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    calendar.script["book"] = [Step(delay=30)]

    first = await direct.call("book_appointment", BOOKING, call_id="call-1")
    second = await direct.call("book_appointment", BOOKING, call_id="call-1")

    assert first.code == "TIMEOUT"
    assert second.ok
    assert calendar.calls["book"] == 2
    assert len(calendar.booked) == 1


async def test_a_provider_failure_is_a_speakable_provider_error_and_the_retry_runs(
    direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    calendar.script["book"] = [Step(error=UpstreamError("google_calendar", "backend error", status=503))]

    first = await direct.call("book_appointment", BOOKING, call_id="call-1")
    second = await direct.call("book_appointment", BOOKING, call_id="call-1")

    assert first.code == "PROVIDER_ERROR"
    assert first.error is not None
    assert first.error["retryable"] is True
    assert first.error["speech"] == "Our system isn't responding right now. I can have someone follow up with you."
    assert second.ok


async def test_a_provider_rate_limit_is_rate_limited(direct: ToolCaller, calendar: ScriptedCalendar) -> None:
    calendar.script["free_slots"] = [Step(error=RateLimitedError("hubspot", retry_after=2))]

    outcome = await direct.call("check_availability", {"date": MONDAY})

    assert outcome.code == "RATE_LIMITED"


async def test_an_unexpected_error_is_internal_error_and_leaks_nothing(
    scripted: tuple[Services, CreatedAgent], calendar: ScriptedCalendar
) -> None:
    services, created = scripted
    calendar.script["free_slots"] = [Step(error=RuntimeError("token sk_test_do_not_leak at /secret/path"))]
    app = create_app(services=services)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        response = await client.post(
            "/v1/tools/check_availability",
            json={"date": MONDAY},
            headers={"Authorization": f"Bearer {created.api_key}"},
        )

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "sk_test_do_not_leak" not in response.text
    assert "Traceback" not in response.text
    assert "/secret/path" not in response.text


async def test_concurrent_duplicates_wait_for_the_first_and_share_its_result(
    direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    calendar.script["book"] = [Step(delay=0.1)]

    outcomes = await asyncio.gather(*(direct.call("book_appointment", BOOKING, call_id="call-7") for _ in range(8)))

    assert calendar.calls["book"] == 1
    assert len({outcome.unwrap()["appointment"]["appointment_id"] for outcome in outcomes}) == 1


def test_the_same_idempotency_key_from_two_agents_gives_providers_two_keys() -> None:
    first, _, _ = derive_key("agt_a", "send_sms", {"to": "+1"}, idempotency_key="k", call_id=None)
    second, _, _ = derive_key("agt_b", "send_sms", {"to": "+1"}, idempotency_key="k", call_id=None)

    assert first != second


async def test_the_provider_receives_a_stable_idempotency_key_per_call_and_arguments(
    direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    await direct.call("book_appointment", BOOKING, call_id="call-1")
    await direct.call("book_appointment", {**BOOKING, "start": f"{MONDAY}T11:00"}, call_id="call-1")

    keys = [request.idempotency_key for request in calendar.booked]
    assert len(keys) == 2
    assert all(keys)
    assert keys[0] != keys[1]


async def plant_running_claim(services: Services, agent_id: str, call_id: str, *, stale_after: datetime) -> str:
    """A claim as another process would leave it while running (or after dying mid-call)."""
    key, request_hash, _ = derive_key(agent_id, "book_appointment", BOOKING, idempotency_key=None, call_id=call_id)
    row = {
        "agent_id": agent_id,
        "key": key,
        "tool": "book_appointment",
        "request_hash": request_hash,
        "state": "running",
        "outcome": None,
        "created_at": NOW - timedelta(minutes=5),
        "expires_at": NOW + timedelta(hours=1),
        "stale_after": stale_after,
    }
    await services.db.run(lambda session: session.execute(insert(IdempotencyRow).values(**row)))
    return key


async def test_a_claim_left_running_by_a_dead_process_is_taken_over(
    scripted: tuple[Services, CreatedAgent], direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    services, created = scripted
    key = await plant_running_claim(services, created.agent.id, "call-dead", stale_after=NOW - timedelta(minutes=1))

    outcome = await direct.call("book_appointment", BOOKING, call_id="call-dead")

    assert outcome.ok
    assert calendar.calls["book"] == 1
    query = select(IdempotencyRow.state, IdempotencyRow.created_at).where(IdempotencyRow.key == key)
    # The row keeps the dead attempt's start: a later takeover would look back that far.
    assert await services.db.run(lambda session: tuple(session.execute(query).one())) == (
        "done",
        NOW - timedelta(minutes=5),
    )


async def test_a_claim_still_running_elsewhere_makes_a_duplicate_wait_until_the_deadline(
    scripted: tuple[Services, CreatedAgent], direct: ToolCaller, calendar: ScriptedCalendar
) -> None:
    services, created = scripted
    await plant_running_claim(services, created.agent.id, "call-busy", stale_after=NOW + timedelta(minutes=1))

    outcome = await direct.call("book_appointment", BOOKING, call_id="call-busy")

    assert outcome.code == "TIMEOUT"
    assert calendar.calls.get("book", 0) == 0


async def test_deadlines_default_to_five_seconds_for_reads_and_ten_for_writes(services: Services) -> None:
    deadlines = Deadlines()
    check = services.catalogue.get("check_availability")
    book = services.catalogue.get("book_appointment")
    assert check is not None
    assert book is not None

    assert deadlines.for_tool(check) == 5.0
    assert deadlines.for_tool(book) == 10.0
    assert Deadlines(per_tool={"book_appointment": 8.0}).for_tool(book) == 8.0


def test_per_tool_deadlines_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_SERVER_TOOL_DEADLINES", '{"book_appointment": 8}')
    monkeypatch.setenv("TOOL_SERVER_READ_DEADLINE_SECONDS", "2.5")

    settings = ServerSettings()

    assert settings.tool_deadlines == {"book_appointment": 8.0}
    assert settings.read_deadline_seconds == 2.5


async def test_an_idempotency_key_reused_for_different_arguments_is_a_conflict(caller: ToolCaller) -> None:
    first = await caller.call("book_appointment", BOOKING, idempotency_key="idem-1")
    other = await caller.call("book_appointment", {**BOOKING, "start": f"{MONDAY}T11:00"}, idempotency_key="idem-1")

    assert first.ok
    assert other.code == "IDEMPOTENCY_CONFLICT"
    assert other.status in (None, 409)


async def test_an_http_replay_is_marked_with_the_idempotent_replayed_header(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    headers = {"Authorization": f"Bearer {agent.api_key}", "Idempotency-Key": "abc"}
    first = await http.post("/v1/tools/book_appointment", json=BOOKING, headers=headers)
    second = await http.post("/v1/tools/book_appointment", json=BOOKING, headers=headers)

    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()


async def test_every_call_is_audited_with_phone_and_email_redacted(
    make_agent: AgentFactory, make_caller: CallerFactory, services: Services
) -> None:
    created = await make_agent()
    for transport in ("direct", "http", "mcp"):
        caller = await make_caller(transport, created)
        await caller.call(
            "create_contact",
            {"contact_name": "Jane", "contact_phone": "(212) 555-0142", "contact_email": "jane@example.com"},
            call_id=f"call-{transport}",
        )
    await (await make_caller("http", created)).call("book_appointment", {"start": "yesterday"})
    await services.audit.flush()

    query = select(ToolCallRow).where(ToolCallRow.agent_id == created.agent.id).order_by(ToolCallRow.id)
    rows = await services.db.run(lambda session: list(session.execute(query).scalars()))

    assert [(row.transport, row.call_id, row.tool, row.outcome) for row in rows] == [
        ("direct", "call-direct", "create_contact", "OK"),
        ("http", "call-http", "create_contact", "OK"),
        ("mcp", "call-mcp", "create_contact", "OK"),
        ("http", None, "book_appointment", "VALIDATION_ERROR"),
    ]
    assert all(row.latency_ms > 0 for row in rows)
    for row in rows[:3]:
        assert row.arguments == {"contact_name": "Jane", "contact_phone": "***42", "contact_email": "***@example.com"}
    assert rows[1].replayed is False


async def test_phone_numbers_and_emails_inside_free_text_are_redacted_in_the_audit(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    await caller.call("add_note", {"contact_id": "con_x", "note": "Call 212-555-0199 or mail bob@corp.example"})
    await services.audit.flush()

    query = select(ToolCallRow.arguments).where(ToolCallRow.tool == "add_note")
    note = await services.db.run(lambda session: session.execute(query).scalar_one())

    assert note["note"] == "Call ***99 or mail ***@corp.example"


async def test_a_key_taken_over_from_a_dead_process_says_when_that_attempt_began(
    services: Services, agent: CreatedAgent
) -> None:
    store = IdempotencyStore(services.db, fixed_clock(NOW), ttl=timedelta(hours=1), ttl_without_call=timedelta(hours=1))
    first = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=timedelta(0))
    # The first claim is never completed or released: its process was killed.

    second = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=timedelta(seconds=30))

    assert isinstance(first, Claim)
    assert first.earlier_attempt_at is None
    assert isinstance(second, Claim)
    assert second.earlier_attempt_at == NOW


async def test_an_attempt_that_may_have_landed_tells_the_retry_when_it_began_and_a_refused_one_does_not(
    services: Services, agent: CreatedAgent
) -> None:
    clock = MovableClock(NOW)
    store = IdempotencyStore(services.db, clock, ttl=timedelta(hours=1), ttl_without_call=timedelta(hours=1))
    hold = timedelta(seconds=30)
    timed_out = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=hold)
    assert isinstance(timed_out, Claim)
    await store.release(timed_out, ambiguous=True)
    clock.now = NOW + timedelta(seconds=40)

    retry = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=hold)
    assert isinstance(retry, Claim)
    await store.release(retry, ambiguous=True)
    clock.now = NOW + timedelta(seconds=80)
    third = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=hold)
    assert isinstance(third, Claim)
    await store.release(third)
    after_refusal = await store.begin(agent.agent.id, "k-1", "send_sms", "hash", scoped=True, hold=hold)

    # Each retry is pointed at the first unanswered attempt, until one ends in a plain refusal.
    assert retry.earlier_attempt_at == NOW
    assert third.earlier_attempt_at == NOW
    assert isinstance(after_refusal, Claim)
    assert after_refusal.earlier_attempt_at is None


async def test_the_audit_masks_phones_and_emails_but_keeps_dates_times_and_amounts(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    note = (
        "Booked 2026-03-09T10:00-04:00, confirm by 2026-03-05 12:20 America/New_York; deposit 4900; call (212) 555-0199"
    )
    await caller.call(
        "book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Jane", "caller_phone": "+12125550142"}
    )
    await caller.call("add_note", {"contact_id": "con_x", "note": note})
    await services.audit.flush()

    query = select(ToolCallRow.tool, ToolCallRow.arguments, ToolCallRow.result).order_by(ToolCallRow.id)
    rows = await services.db.run(lambda session: session.execute(query).all())
    booking, noted = rows[0], rows[1]

    assert booking.arguments["start"] == f"{MONDAY}T10:00"
    assert booking.arguments["caller_phone"] == "***42"
    assert booking.result["appointment"]["start"] == f"{MONDAY}T10:00:00-04:00"
    assert booking.result["appointment"]["caller_phone"] == "***42"
    assert noted.arguments["note"] == (
        "Booked 2026-03-09T10:00-04:00, confirm by 2026-03-05 12:20 America/New_York; deposit 4900; call ***99"
    )


async def test_an_unexpected_exception_while_validating_is_an_internal_error_not_a_crash(
    caller: ToolCaller, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tool_server.tools.fields as fields

    def explode(value: str) -> str:
        raise IsADirectoryError(value)  # what ZoneInfo("America") used to raise from a validator

    monkeypatch.setattr(fields, "canonical_zone_name", explode)
    outcome = await caller.call("check_availability", {"date": "tomorrow", "timezone": "Europe/Paris"})

    assert outcome.code == "INTERNAL_ERROR"
    assert outcome.error is not None
    assert "Traceback" not in outcome.error["message"]
