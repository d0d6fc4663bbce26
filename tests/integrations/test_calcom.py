"""The Cal.com connector against its emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

from integrations.calcom import SPEC, CalcomConnector, CalcomSettings
from integrations.calcom.errors import CalcomError, translate
from integrations.calcom.sandbox_state import EVENT_TYPE_ID, SANDBOX_API_KEY, CalcomState
from integrations.capabilities.calendar import CalendarProvider, SlotReservations
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import BookingRequest
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, NY, monday
from tests.support.provider_kit import booking as kit_booking
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

SPEC_FILE = "calcom/openapi.v2.slots-bookings.json"


def booking(hour: int, minute: int = 0, **changes: Any) -> BookingRequest:
    return kit_booking(hour, minute, **{**{"phone": "+15551230001", "email": "ada@example.com"}, **changes})


class Clock:
    """The emulator's clock, moved by hand (reservation expiry)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"calcom": sandbox}) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox, clock: Clock) -> None:
    sandbox.reset()
    cast(CalcomState, sandbox.state).clock = clock


@pytest.fixture
def state(sandbox: Sandbox) -> CalcomState:
    return cast(CalcomState, sandbox.state)


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("calcom")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


def connect(base_url: str, vault: MemoryVault, **overrides: Any) -> CalcomConnector:
    settings = SPEC.settings_model.model_validate({**SPEC.sandbox_connection(base_url).settings, **overrides})
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, CalcomConnector)
    return connector


@pytest.fixture
def calendar(base_url: str, vault: MemoryVault) -> CalcomConnector:
    return connect(base_url, vault)


def requests_to(sandbox: Sandbox, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
    return [
        r
        for r in sandbox.provider_requests()
        if (method is None or r.method == method) and (path is None or r.path == path)
    ]


def bookings_in_state(state: CalcomState) -> list[dict[str, Any]]:
    return list(state.dump()["bookings"])


async def day_starts(calendar: CalcomConnector) -> list[datetime]:
    return [s.start for s in await calendar.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(minutes=30))]


def authed() -> dict[str, str]:
    return {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


# -- the spec ---------------------------------------------------------------------------------------


def test_the_spec_describes_an_api_key_calendar_provider() -> None:
    assert SPEC.name == "calcom"
    assert SPEC.capabilities == frozenset({"calendar"})
    assert SPEC.auth == "api_key"
    assert SPEC.required_secrets == ("api_key",)


def test_the_connector_is_a_calendar_with_slot_reservations_that_can_check_itself(
    calendar: CalcomConnector,
) -> None:
    assert isinstance(calendar, CalendarProvider)
    assert isinstance(calendar, SlotReservations)
    assert isinstance(calendar, Checkable)
    assert calendar.default_duration == timedelta(minutes=30)


def test_settings_reject_unknown_fields_and_default_to_the_real_vendor_and_the_agents_zone() -> None:
    with pytest.raises(ValueError, match=r"Extra inputs are not permitted"):
        CalcomSettings.model_validate({"event_type_id": 1, "eventTypeId": 1})
    with pytest.raises(ValueError, match="greater than 0"):
        CalcomSettings.model_validate({"event_type_id": 0})
    with pytest.raises(ValueError, match="unknown IANA timezone"):
        CalcomSettings.model_validate({"event_type_id": 1, "timezone": "America"})
    settings = CalcomSettings.model_validate({"event_type_id": 7})
    assert settings.base_url == "https://api.cal.com"
    assert settings.zone("Europe/Paris") == "Europe/Paris"


async def test_check_connection_reads_the_keys_user_and_the_event_types_slots(
    calendar: CalcomConnector, sandbox: Sandbox
) -> None:
    reached = await calendar.check_connection()

    assert reached == f"cal.com user sandbox-dental, event type {EVENT_TYPE_ID} (America/New_York)"
    assert [r.path for r in sandbox.provider_requests()] == ["/v2/me", "/v2/slots"]
    assert sandbox.provider_requests()[0].headers["authorization"] == f"Bearer {SANDBOX_API_KEY}"


# -- free slots -------------------------------------------------------------------------------------


async def test_free_slots_are_cal_coms_slots_in_the_business_zone_minus_bookings(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    state.add_booking(monday(10), minutes=60)

    starts = await day_starts(calendar)

    assert starts[0] == monday(9)
    assert starts[-1] == monday(16, 30)
    assert monday(10) not in starts
    assert monday(10, 30) not in starts
    assert monday(11) in starts
    assert len(starts) == 16 - 2
    assert all(start.utcoffset() == timedelta(hours=-4) for start in starts)
    (asked,) = requests_to(sandbox, "GET", "/v2/slots")
    assert asked.query["eventTypeId"] == [str(EVENT_TYPE_ID)]
    assert asked.query["timeZone"] == ["America/New_York"]
    assert asked.query["format"] == ["range"]
    assert asked.headers["cal-api-version"] == "2024-09-04"


async def test_free_slots_on_a_weekend_or_in_the_past_are_empty(calendar: CalcomConnector, sandbox: Sandbox) -> None:
    saturday = datetime(2026, 3, 7, tzinfo=NY)

    assert await calendar.free_slots(saturday, saturday + timedelta(days=2), timedelta(minutes=30)) == []
    assert await calendar.free_slots(NOW - timedelta(days=2), NOW - timedelta(days=1), timedelta(minutes=30)) == []
    assert len(requests_to(sandbox, "GET", "/v2/slots")) == 1  # the past is not even asked about


async def test_free_slots_of_another_allowed_length_ask_cal_com_for_that_duration(
    calendar: CalcomConnector, sandbox: Sandbox
) -> None:
    slots = await calendar.free_slots(monday(15), monday(17), timedelta(minutes=60))

    assert [(s.start, s.end) for s in slots] == [
        (monday(15), monday(16)),
        (monday(15, 30), monday(16, 30)),
        (monday(16), monday(17)),
    ]
    assert requests_to(sandbox, "GET", "/v2/slots")[0].query["duration"] == ["60"]


# -- booking ----------------------------------------------------------------------------------------


async def test_booking_creates_one_cal_com_booking_with_the_caller_as_attendee_and_the_key_in_metadata(
    calendar: CalcomConnector, sandbox: Sandbox, base_url: str
) -> None:
    request = booking(10, email="Ada@Example.com", notes="Sensitive tooth, lower left", key="call-1:book")

    booked = await calendar.book(request)

    assert booked.status == "booked"
    assert booked.provider == "calcom"
    assert (booked.start, booked.end) == (monday(10), monday(10, 30))
    assert booked.start.utcoffset() == timedelta(hours=-4)
    assert (booked.attendee_name, booked.attendee_phone, booked.attendee_email) == (
        "Ada Lovelace",
        "+15551230001",
        "ada@example.com",
    )
    assert booked.notes == "Sensitive tooth, lower left"
    async with httpx.AsyncClient() as client:
        dumped = (await client.get(f"{base_url}/_state")).json()
    (stored,) = dumped["bookings"]
    assert stored["uid"] == booked.id
    assert stored["start"] == "2026-03-09T14:00:00.000Z"
    assert stored["metadata"] == {"tool_server_key": "call-1:book", "caller_phone": "+15551230001"}
    assert stored["attendees"][0]["phoneNumber"] == "+15551230001"
    (created,) = requests_to(sandbox, "POST", "/v2/bookings")
    assert created.headers["cal-api-version"] == "2024-08-13"
    assert created.body["attendee"] == {
        "name": "Ada Lovelace",
        "timeZone": "America/New_York",
        "email": "ada@example.com",
        "phoneNumber": "+15551230001",
    }
    assert "lengthInMinutes" not in created.body


async def test_a_caller_without_an_email_is_booked_under_cal_coms_placeholder_but_shown_without_one(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    booked = await calendar.book(booking(11, email=None))

    (stored,) = bookings_in_state(state)
    assert stored["attendees"][0]["email"] == "15551230001@sms.cal.com"
    assert booked.attendee_email is None
    assert booked.attendee_phone == "+15551230001"


async def test_booking_retried_with_the_same_idempotency_key_creates_one_booking(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    first = await calendar.book(booking(10, key="call-1:book"))
    again = await calendar.book(booking(10, key="call-1:book", phone=None, email="other@example.com"))

    assert again.id == first.id
    assert [b["uid"] for b in bookings_in_state(state)] == [first.id]
    assert len(requests_to(sandbox, "POST", "/v2/bookings")) == 1


async def test_a_create_whose_answer_was_lost_is_found_by_its_key_instead_of_made_twice(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    # Cal.com creates the booking, but the answer is slower than the attempt's timeout.
    original = state.create_booking

    def slow_create(body: dict[str, Any]) -> dict[str, Any]:
        created = original(body)
        time.sleep(1.2)
        return created

    state.create_booking = slow_create  # type: ignore[method-assign]
    try:
        with deadline_scope(4):
            calendar._client.resilience.attempt_timeout = lambda ceiling=10.0: 0.5  # type: ignore[method-assign]
            booked = await calendar.book(booking(10, key="call-lost:book"))
    finally:
        state.create_booking = original  # type: ignore[method-assign]

    (stored,) = bookings_in_state(state)
    assert booked.id == stored["uid"]
    assert len(requests_to(sandbox, "POST", "/v2/bookings")) == 1
    # The look before booking, and at least one after the lost answer (the blocked emulator may
    # make that look time out once too).
    assert len(requests_to(sandbox, "GET", "/v2/bookings")) >= 2


async def test_a_create_that_landed_but_answered_500_is_found_by_its_key_instead_of_made_twice(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    original = state.create_booking

    def create_then_fail(body: dict[str, Any]) -> dict[str, Any]:
        original(body)
        state.create_booking = original  # type: ignore[method-assign]
        raise RuntimeError("the database answered after the load balancer gave up")

    state.create_booking = create_then_fail  # type: ignore[method-assign]
    booked = await calendar.book(booking(10, key="call-500:book"))

    (stored,) = bookings_in_state(state)
    assert booked.id == stored["uid"]
    assert [r.method for r in requests_to(sandbox, path="/v2/bookings")] == ["GET", "POST", "GET"]


async def test_a_create_answered_503_is_retried_after_a_look_and_makes_one_booking(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503, path="/v2/bookings", method="POST", times=1))

    booked = await calendar.book(booking(10, key="call-503:book"))

    assert [b["uid"] for b in bookings_in_state(state)] == [booked.id]
    assert [r.method for r in requests_to(sandbox, path="/v2/bookings")] == ["GET", "POST", "GET", "POST"]


async def test_concurrent_attempts_of_one_booking_create_one_booking(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    results = await asyncio.gather(*(calendar.book(booking(10, key="same-key")) for _ in range(3)))

    assert len({r.id for r in results}) == 1
    assert len(bookings_in_state(state)) == 1


async def test_the_same_caller_booking_the_same_start_again_gets_the_first_booking(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    first = await calendar.book(booking(10, key="call-a"))
    by_phone = await calendar.book(booking(10, key="call-b", email=None))
    by_email = await calendar.book(booking(10, key="call-c", phone=None, email="ADA@example.com"))

    assert by_phone.id == first.id
    assert by_email.id == first.id
    assert len(bookings_in_state(state)) == 1
    with pytest.raises(SlotUnavailableError):
        await calendar.book(booking(10, key="call-d", phone="+15559990000", email=None))


async def test_booking_a_taken_or_closed_time_is_refused_without_writing(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    state.add_booking(monday(10))

    with pytest.raises(SlotUnavailableError) as taken:
        await calendar.book(booking(10))
    with pytest.raises(SlotUnavailableError) as evening:
        await calendar.book(booking(18))
    with pytest.raises(SlotUnavailableError) as past:
        await calendar.book(BookingRequest(start=NOW - timedelta(hours=1), end=NOW, attendee_name="Late"))

    assert "already booked" in taken.value.reason
    assert "outside the business's hours" in evening.value.reason
    assert past.value.reason == "that time has already passed"
    assert requests_to(sandbox, "POST", "/v2/bookings") == []
    assert len(bookings_in_state(state)) == 1


async def test_cal_coms_own_refusal_when_the_slot_went_between_check_and_create_is_slot_unavailable(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    # The slots answer is from before another caller took 10:00; the create meets Cal.com's 400.
    original = state.free_starts
    stale = original(monday(10), monday(10), timedelta(minutes=30))
    state.add_booking(monday(10))
    state.free_starts = lambda start, end, length, rescheduling=None: stale  # type: ignore[method-assign,misc]
    try:
        with pytest.raises(SlotUnavailableError):
            await calendar.book(booking(10))
    finally:
        state.free_starts = original  # type: ignore[method-assign]

    assert len(requests_to(sandbox, "POST", "/v2/bookings")) == 1
    assert len(bookings_in_state(state)) == 1


# -- reschedule, cancel, get, find ------------------------------------------------------------------


async def test_rescheduling_makes_cal_coms_successor_booking_and_keeps_the_appointment_id(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    booked = await calendar.book(booking(10, key="call-1"))

    moved = await calendar.reschedule(booked.id, monday(14), monday(14, 30))

    assert moved.id == booked.id
    assert (moved.start, moved.end) == (monday(14), monday(14, 30))
    old, new = sorted(bookings_in_state(state), key=lambda b: b["id"])
    assert (old["status"], old["rescheduledToUid"]) == ("cancelled", new["uid"])
    assert (new["status"], new["rescheduledFromUid"]) == ("accepted", booked.id)
    assert new["metadata"]["tool_server_key"] == "call-1"
    assert await calendar.get(booked.id) == moved
    starts = await day_starts(calendar)
    assert monday(10) in starts
    assert monday(14) not in starts
    assert [a.id for a in await calendar.find(phone="+15551230001", email=None, since=NOW)] == [booked.id]


async def test_rescheduling_to_a_taken_time_a_missing_or_a_cancelled_booking_is_refused(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    booked = await calendar.book(booking(10))
    state.add_booking(monday(15))

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(15), monday(15, 30))
    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(20), monday(20, 30))
    with pytest.raises(NotFoundError) as missing:
        await calendar.reschedule("noSuchBooking123", monday(11), monday(11, 30))
    await calendar.cancel(booked.id)
    with pytest.raises(NotFoundError) as cancelled:
        await calendar.reschedule(booked.id, monday(11), monday(11, 30))

    assert missing.value.identifier == "noSuchBooking123"
    assert cancelled.value.kind == "booked appointment"


async def test_rescheduling_may_overlap_the_bookings_own_time(calendar: CalcomConnector) -> None:
    booked = await calendar.book(booking(10, minutes=60))

    moved = await calendar.reschedule(booked.id, monday(10, 30), monday(11, 30))

    assert moved.start == monday(10, 30)


async def test_cancelling_frees_the_slot_and_cancelling_again_changes_nothing(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox
) -> None:
    booked = await calendar.book(booking(10))

    cancelled = await calendar.cancel(booked.id)
    again = await calendar.cancel(booked.id)

    assert (cancelled.id, cancelled.status) == (booked.id, "cancelled")
    assert (again.id, again.status) == (booked.id, "cancelled")
    (stored,) = bookings_in_state(state)
    assert stored["status"] == "cancelled"
    assert stored["cancellationReason"].startswith("Cancelled by the phone assistant")
    assert len([r for r in sandbox.provider_requests() if r.path.endswith("/cancel")]) == 1
    assert monday(10) in await day_starts(calendar)


async def test_cancelling_or_getting_an_unknown_booking_raises_not_found(calendar: CalcomConnector) -> None:
    with pytest.raises(NotFoundError) as cancelled:
        await calendar.cancel("noSuchBooking123")
    with pytest.raises(NotFoundError) as fetched:
        await calendar.get("noSuchBooking123")

    assert (cancelled.value.kind, cancelled.value.identifier) == ("appointment", "noSuchBooking123")
    assert fetched.value.identifier == "noSuchBooking123"


async def test_get_returns_the_booking_as_it_was_booked(calendar: CalcomConnector) -> None:
    booked = await calendar.book(booking(10, notes="First visit"))

    fetched = await calendar.get(booked.id)

    assert fetched.model_dump(exclude={"raw"}) == booked.model_dump(exclude={"raw"})


async def test_find_returns_a_callers_live_bookings_by_phone_or_email(
    calendar: CalcomConnector, state: CalcomState
) -> None:
    morning = await calendar.book(booking(9, email=None))
    afternoon = await calendar.book(booking(15, email="ada@example.com"))
    other = await calendar.book(booking(11, name="Grace", phone="+15551230002", email="grace@example.com"))
    state.add_booking(monday(12))
    cancelled = await calendar.book(booking(16, email=None))
    await calendar.cancel(cancelled.id)

    by_phone = await calendar.find(phone="+15551230001", email=None, since=NOW)
    by_email = await calendar.find(phone=None, email="GRACE@example.com", since=NOW)
    by_both = await calendar.find(phone="+15551230001", email="ada@example.com", since=NOW)
    later = await calendar.find(phone="+15551230001", email=None, since=monday(12))
    nobody = await calendar.find(phone=None, email=None, since=NOW)

    assert [a.id for a in by_phone] == [morning.id, afternoon.id]
    assert [a.id for a in by_email] == [other.id]
    assert [a.id for a in by_both] == [morning.id, afternoon.id]
    assert [a.id for a in later] == [afternoon.id]
    assert nobody == []


async def test_find_follows_cal_coms_pagination(calendar: CalcomConnector, sandbox: Sandbox) -> None:
    booked = [await calendar.book(booking(hour, email=None)) for hour in range(9, 14)]
    calendar.page_size = 2
    sandbox.requests.clear()

    found = await calendar.find(phone="+15551230001", email=None, since=NOW)

    assert [a.id for a in found] == [b.id for b in booked]
    lists = requests_to(sandbox, "GET", "/v2/bookings")
    assert [r.query["skip"] for r in lists] == [["0"], ["2"], ["4"]]
    assert all(r.query["take"] == ["2"] for r in lists)


# -- slot reservations ------------------------------------------------------------------------------


async def test_a_reserved_slot_is_hidden_and_refused_to_others_until_released(
    calendar: CalcomConnector, state: CalcomState, sandbox: Sandbox, base_url: str
) -> None:
    reservation = await calendar.reserve(monday(10), monday(10, 30), 10)

    assert monday(10) not in await day_starts(calendar)
    (held,) = state.dump()["reservations"]
    assert (held["reservationUid"], held["reservationDuration"]) == (reservation, 10)
    async with httpx.AsyncClient(headers={"cal-api-version": "2024-08-13", **authed()}) as client:
        refused = await client.post(
            f"{base_url}/v2/bookings",
            json={
                "start": "2026-03-09T14:00:00Z",
                "eventTypeId": EVENT_TYPE_ID,
                "attendee": {"name": "X", "timeZone": "UTC", "email": "x@example.com"},
            },
        )
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == "reserved_slot_not_first_in_line"
    with pytest.raises(SlotUnavailableError):
        await calendar.reserve(monday(10), monday(10, 30), 10)

    await calendar.release(reservation)
    await calendar.release(reservation)  # already gone: fine

    assert monday(10) in await day_starts(calendar)
    booked = await calendar.book(booking(10))
    assert booked.start == monday(10)
    reserve_call, refused_call = requests_to(sandbox, "POST", "/v2/slots/reservations")
    assert reserve_call.body == refused_call.body
    assert reserve_call.body == {
        "eventTypeId": EVENT_TYPE_ID,
        "slotStart": "2026-03-09T14:00:00.000Z",
        "reservationDuration": 10,
    }


async def test_a_reservation_expires_on_the_emulators_clock(calendar: CalcomConnector, clock: Clock) -> None:
    await calendar.reserve(monday(10), monday(10, 30), 5)
    assert monday(10) not in await day_starts(calendar)

    clock.now = NOW + timedelta(minutes=5, seconds=1)

    assert monday(10) in await day_starts(calendar)


async def test_reserving_a_booked_slot_is_slot_unavailable(calendar: CalcomConnector, state: CalcomState) -> None:
    state.add_booking(monday(10))

    with pytest.raises(SlotUnavailableError):
        await calendar.reserve(monday(10), monday(10, 30), 5)


# -- the API key ------------------------------------------------------------------------------------


async def test_a_revoked_api_key_answers_not_connected_and_marks_the_connection_expired(
    calendar: CalcomConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError) as raised:
        await calendar.book(booking(10))

    assert raised.value.capability == "calendar"
    assert vault.expired_reason is not None
    assert "Your api key is not valid" in vault.expired_reason
    assert SANDBOX_API_KEY not in str(raised.value)
    assert len(requests_to(sandbox, "GET", "/v2/bookings")) == 1  # not retried


async def test_a_connection_without_a_key_is_not_connected(base_url: str) -> None:
    calendar = connect(base_url, MemoryVault({}))

    with pytest.raises(ProviderNotConnectedError):
        await calendar.get("anything")


# -- faults -----------------------------------------------------------------------------------------


async def test_a_rate_limit_is_waited_out_and_the_call_succeeds(calendar: CalcomConnector, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    slots = await calendar.free_slots(monday(9), monday(10), timedelta(minutes=30))

    assert [s.start for s in slots] == [monday(9), monday(9, 30)]
    assert time.monotonic() - started >= 0.9  # Retry-After was honoured
    assert len(requests_to(sandbox, "GET", "/v2/slots")) == 2


async def test_a_persistent_server_error_raises_upstream_error_within_the_deadline(
    calendar: CalcomConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await calendar.get("noSuchBooking123")

    assert time.monotonic() - started < 3.5
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(sandbox.provider_requests()) >= 2  # retried before giving up


async def test_a_slow_answer_times_out_as_a_retryable_upstream_error_within_the_deadline(
    calendar: CalcomConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=2, times=1))
    started = time.monotonic()

    with deadline_scope(1), pytest.raises(UpstreamError) as raised:
        await calendar.get("noSuchBooking123")

    assert time.monotonic() - started < 1.5
    assert raised.value.retryable is True
    assert "timed out" in str(raised.value)


async def test_injected_faults_are_answered_in_cal_coms_own_shapes(sandbox: Sandbox, base_url: str) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=2, times=1))
    sandbox.inject(Fault(kind="server_error", status=500, times=1))
    async with httpx.AsyncClient(headers={"cal-api-version": "2024-08-13", **authed()}) as client:
        limited = await client.get(f"{base_url}/v2/bookings", params={"take": 5})
        broken = await client.get(f"{base_url}/v2/bookings")

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["x-ratelimit-limit-default"] == "120"
    assert limited.headers["x-ratelimit-remaining-default"] == "0"
    assert limited.json()["error"] == {
        "code": "ThrottlerException",
        "message": "Too many requests. Please try again later.",
    }
    assert limited.json()["path"] == "/v2/bookings?take=5"
    assert broken.status_code == 500
    assert broken.json()["status"] == "error"
    assert broken.json()["error"] == {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error."}


def _cal_body(code: str, message: str) -> bytes:
    return json.dumps(
        {"status": "error", "timestamp": "t", "path": "/v2/x", "error": {"code": code, "message": message}}
    ).encode()


def test_cal_com_errors_are_translated_in_one_place() -> None:
    limited = translate(429, _cal_body("ThrottlerException", "m"), {"x-ratelimit-reset-default": "7"})
    missing = translate(
        404, _cal_body("NotFoundException", "Booking with uid=abc not found"), {}, ("appointment", "abc")
    )
    refused = translate(401, _cal_body("UnauthorizedException", "Your api key is not valid"), {})
    bad = translate(400, _cal_body("BadRequestException", "nope"), {})
    down = translate(502, b"<html>bad gateway</html>", {})

    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 7.0
    assert isinstance(missing, NotFoundError)
    assert missing.identifier == "abc"
    assert isinstance(refused, ProviderNotConnectedError)
    assert isinstance(bad, CalcomError)
    assert (bad.status, bad.retryable, bad.code) == (400, False, "BadRequestException")
    assert isinstance(down, UpstreamError)
    assert (down.status, down.retryable) == (502, True)


# -- the emulator against Cal.com's spec ------------------------------------------------------------


def _header_problems(api: OpenApi, request: RecordedRequest) -> list[str]:
    """Required headers of the operation (cal-api-version at the value the spec names)."""
    found = api.operation(request.method, request.path)
    if found is None:
        return []
    problems = []
    for parameter in found[1].get("parameters", []):
        parameter = api.resolve(parameter)
        if parameter.get("in") != "header" or parameter["name"].lower() == "authorization":
            continue
        sent = request.headers.get(parameter["name"].lower())
        if parameter.get("required") and sent is None:
            problems.append(f"{request.method} {request.path}: missing header {parameter['name']}")
        expected = (parameter.get("schema") or {}).get("default")
        if sent is not None and expected and sent != expected:
            problems.append(f"{request.method} {request.path}: {parameter['name']} {sent} != {expected}")
    return problems


async def test_every_request_of_a_full_flow_is_in_cal_coms_spec(calendar: CalcomConnector, sandbox: Sandbox) -> None:
    await calendar.check_connection()
    await calendar.free_slots(monday(9), monday(17), timedelta(minutes=60))
    held = await calendar.reserve(monday(10), monday(11), 5)
    await calendar.release(held)
    booked = await calendar.book(booking(10, notes="checkup", key="flow-1", minutes=60))
    await calendar.find(phone="+15551230001", email=None, since=NOW)
    await calendar.find(phone=None, email="ada@example.com", since=NOW)
    await calendar.reschedule(booked.id, monday(13), monday(14))
    await calendar.get(booked.id)
    await calendar.cancel(booked.id)
    await calendar.cancel(booked.id)

    api = OpenApi(SPEC_FILE)
    recorded = sandbox.provider_requests()
    problems = [p for r in recorded for p in [*api.check_request(r), *_header_problems(api, r)]]

    assert problems == []
    operations = {cast(tuple[str, dict[str, Any]], api.operation(r.method, r.path))[1]["operationId"] for r in recorded}
    assert operations == {
        "MeController_getMe",
        "SlotsController_2024_09_04_getAvailableSlots",
        "SlotsController_2024_09_04_reserveSlot",
        "SlotsController_2024_09_04_deleteReservedSlot",
        "BookingsController_2024_08_13_getBookings",
        "BookingsController_2024_08_13_createBooking",
        "BookingsController_2024_08_13_getBooking",
        "BookingsController_2024_08_13_rescheduleBooking",
        "BookingsController_2024_08_13_cancelBooking",
    }


async def test_emulator_answers_validate_against_cal_coms_schemas(
    calendar: CalcomConnector, state: CalcomState, base_url: str
) -> None:
    booked = await calendar.book(booking(10, notes="checkup", email=None))
    moved = await calendar.reschedule(booked.id, monday(11), monday(11, 30))
    api = OpenApi(SPEC_FILE)
    v24 = {"cal-api-version": "2024-08-13", **authed()}
    slots_version = {"cal-api-version": "2024-09-04", **authed()}
    async with httpx.AsyncClient() as client:
        me = (await client.get(f"{base_url}/v2/me", headers=authed())).json()
        one = (await client.get(f"{base_url}/v2/bookings/{booked.id}", headers=v24)).json()
        listed = (await client.get(f"{base_url}/v2/bookings", params={"take": 1}, headers=v24)).json()
        cancelled = (
            await client.post(f"{base_url}/v2/bookings/{moved.raw['uid']}/cancel", json={}, headers=v24)
        ).json()
        reserved = (
            await client.post(
                f"{base_url}/v2/slots/reservations",
                json={"eventTypeId": EVENT_TYPE_ID, "slotStart": "2026-03-09T18:00:00Z"},
                headers=slots_version,
            )
        ).json()
        got_reservation = (
            await client.get(
                f"{base_url}/v2/slots/reservations/{reserved['data']['reservationUid']}", headers=slots_version
            )
        ).json()
        slots = (
            await client.get(
                f"{base_url}/v2/slots",
                params={
                    "eventTypeId": EVENT_TYPE_ID,
                    "start": "2026-03-09",
                    "end": "2026-03-10",
                    "format": "range",
                    "timeZone": "Europe/Rome",
                },
                headers=slots_version,
            )
        ).json()

    problems = [
        *api.validate("GetMeOutput", me),
        *api.validate("BookingOutput_2024_08_13", one["data"]),
        *api.validate("BookingOutput_2024_08_13", cancelled["data"]),
        *[p for item in listed["data"] for p in api.validate("BookingOutput_2024_08_13", item)],
        *api.validate("PaginationMetaDto", listed["pagination"]),
        *api.validate("ReserveSlotOutputResponse_2024_09_04", reserved),
        *api.validate("ReserveSlotOutput_2024_09_04", got_reservation["data"]),
    ]
    range_schema = api.document["paths"]["/v2/slots"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["oneOf"][1]
    problems += [e.message for e in OAS30Validator(range_schema).iter_errors(slots["data"])]

    assert problems == []
    assert listed["pagination"]["hasNextPage"] is True
    assert one["data"]["rescheduledToUid"] == moved.raw["uid"]
    assert slots["data"]["2026-03-09"][0] == {
        "start": "2026-03-09T14:00:00.000+01:00",
        "end": "2026-03-09T14:30:00.000+01:00",
    }


async def test_the_emulator_answers_401_in_cal_coms_format(base_url: str) -> None:
    async with httpx.AsyncClient(headers={"cal-api-version": "2024-08-13"}) as client:
        forged = await client.get(f"{base_url}/v2/bookings", headers={"Authorization": "Bearer cal_live_forged"})
        anonymous = await client.get(f"{base_url}/v2/bookings")

    assert forged.status_code == 401
    body = forged.json()
    assert set(body) == {"status", "timestamp", "path", "error"}
    assert body["error"] == {"code": "UnauthorizedException", "message": "Your api key is not valid"}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"].startswith("No authentication method provided")


async def test_the_emulator_refuses_a_request_without_the_endpoints_api_version(base_url: str) -> None:
    async with httpx.AsyncClient(headers=authed()) as client:
        answer = await client.get(f"{base_url}/v2/bookings/abc", headers={"cal-api-version": "2024-09-04"})

    assert answer.status_code == 400
    assert "2024-08-13" in answer.json()["error"]["message"]


async def test_the_emulator_refuses_metadata_cal_com_would_refuse(base_url: str, state: CalcomState) -> None:
    body = {
        "start": "2026-03-09T14:00:00Z",
        "eventTypeId": EVENT_TYPE_ID,
        "attendee": {"name": "X", "timeZone": "UTC", "email": "x@example.com"},
        "metadata": {f"k{i}": "v" for i in range(51)},
    }
    async with httpx.AsyncClient(headers={"cal-api-version": "2024-08-13", **authed()}) as client:
        answer = await client.post(f"{base_url}/v2/bookings", json=body)

    assert answer.status_code == 400
    assert bookings_in_state(state) == []


# -- state across a restart -------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("calcom", SPEC.sandbox, tmp_path / "calcom.json") as running:
        cast(CalcomState, running.before.state).clock = lambda: NOW
        cast(CalcomState, running.after.state).clock = lambda: NOW
        yield running


async def test_after_a_restart_the_connector_sees_the_same_bookings_and_reservations(restart: Restart) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    kept = await before.book(booking(10, key="call-1:book"))
    moved = await before.book(booking(11, key="call-2:book", name="Grace", phone="+15551230002", email=None))
    moved = await before.reschedule(moved.id, monday(14), monday(14, 30))
    dropped = await before.book(booking(12, key="call-3:book", name="Alan", phone="+15551230003", email=None))
    await before.cancel(dropped.id)
    await before.reserve(monday(15), monday(15, 30), 10)

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert len(dump_after["bookings"]) == 4
    assert await after.get(kept.id) == kept
    assert await after.get(moved.id) == moved
    assert (await after.get(dropped.id)).status == "cancelled"
    assert await after.book(booking(10, key="call-1:book")) == kept
    starts = await day_starts(after)
    assert monday(12) in starts
    assert not {monday(10), monday(14), monday(15)} & set(starts)
    fresh = await after.book(booking(16, key="call-4:book", name="Mary", phone="+15551230004", email=None))
    assert fresh.raw["id"] == 5  # the id counter survived too


def test_a_snapshot_restores_the_same_state_through_json_and_shares_nothing_with_it(state: CalcomState) -> None:
    state.add_booking(monday(10))
    state.reserve({"eventTypeId": EVENT_TYPE_ID, "slotStart": "2026-03-09T16:00:00Z"}, authenticated=True)
    state.revoke_refresh_tokens()
    snapshot = state.snapshot()
    restored = CalcomState(clock=lambda: NOW)

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["bookings"].clear()
    snapshot["api_keys"].append("cal_x")

    assert restored.dump() == state.dump()
    assert len(bookings_in_state(state)) == 1
    assert restored.api_keys == state.api_keys == set()
    assert restored.next_id == state.next_id == 2
    (reservation,) = restored.reservations.values()
    assert datetime.fromisoformat(reservation["releaseAt"]) == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"version": None}, ValueError),
        ({"next_id": "1"}, ValueError),
        ({"bookings": {"abc": {"uid": "abc"}}}, KeyError),
        ({"reservations": {"r1": {"reservationUid": "r2", "releaseAt": "2026-03-04T15:00:00+00:00"}}}, KeyError),
    ],
    ids=[
        "a later version",
        "no version",
        "a count as text",
        "a booking without times",
        "a reservation naming another uid",
    ],
)
def test_a_snapshot_this_state_did_not_write_is_refused_and_leaves_the_state_as_it_was(
    state: CalcomState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.add_booking(monday(10))
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
