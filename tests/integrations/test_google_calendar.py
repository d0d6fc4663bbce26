"""The Google Calendar connector against its emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httplib2
import httpx
import pytest
from googleapiclient.errors import HttpError
from pydantic import ValidationError

from integrations.capabilities.calendar import CalendarProvider
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
from integrations.google_calendar import SPEC, GoogleCalendarConnector, GoogleCalendarSettings, mappers
from integrations.google_calendar.errors import translate
from integrations.google_calendar.sandbox_state import OWNER_EMAIL, SECOND_CALENDAR_ID, GoogleCalendarState
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, NY, monday
from tests.support.provider_kit import booking as kit_booking
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import Discovery

SPEC_FILE = "google/calendar.v3.discovery.json"


def booking(hour: int, minute: int = 0, **changes: Any) -> BookingRequest:
    return kit_booking(hour, minute, **{**{"phone": "+15551230001", "email": "ada@example.com"}, **changes})


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"google_calendar": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> GoogleCalendarState:
    return cast(GoogleCalendarState, sandbox.state)


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("google_calendar")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


def connect(base_url: str, vault: MemoryVault, **overrides: Any) -> GoogleCalendarConnector:
    settings = SPEC.settings_model.model_validate({**SPEC.sandbox_connection(base_url).settings, **overrides})
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, GoogleCalendarConnector)
    return connector


@pytest.fixture
def calendar(base_url: str, vault: MemoryVault) -> GoogleCalendarConnector:
    return connect(base_url, vault)


def calendar_requests(sandbox: Sandbox, method: str | None = None) -> list[RecordedRequest]:
    return [
        r
        for r in sandbox.provider_requests()
        if r.path.startswith("/calendar/v3/") and (method is None or r.method == method)
    ]


def token_requests(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.path == "/token"]


def events_in_state(state: GoogleCalendarState, calendar_id: str = OWNER_EMAIL) -> list[dict[str, Any]]:
    return list(state.dump()["calendars"][calendar_id]["events"])


# -- the spec ---------------------------------------------------------------------------------------


def test_the_spec_describes_an_oauth_calendar_provider() -> None:
    assert SPEC.name == "google_calendar"
    assert SPEC.capabilities == frozenset({"calendar"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert SPEC.optional_secrets == ("access_token", "expires_at")


def test_the_connector_satisfies_the_calendar_protocol_and_can_check_itself(
    calendar: GoogleCalendarConnector,
) -> None:
    assert isinstance(calendar, CalendarProvider)
    assert isinstance(calendar, Checkable)
    assert calendar.default_duration == timedelta(minutes=30)


def test_settings_reject_unknown_fields_and_default_the_rules_zone_to_the_agents() -> None:
    with pytest.raises(ValueError, match=r"Extra inputs are not permitted"):
        GoogleCalendarSettings.model_validate({"calendar": "primary"})
    with pytest.raises(ValueError, match="at least 1"):
        GoogleCalendarSettings.model_validate({"calendar_ids": []})
    settings = GoogleCalendarSettings.model_validate({"send_updates": "none"})
    assert settings.calendar_ids == ["primary"]
    assert settings.base_url == "https://www.googleapis.com"
    assert settings.rules("Europe/Paris").timezone == "Europe/Paris"


# -- free slots -------------------------------------------------------------------------------------


async def test_free_slots_skip_busy_events_and_lie_inside_business_hours(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    state.add_event("primary", monday(10), monday(11))

    slots = await calendar.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(minutes=30))

    starts = [slot.start for slot in slots]
    assert starts[0] == monday(9)
    assert starts[-1] == monday(16, 30)
    assert monday(10) not in starts
    assert monday(10, 30) not in starts
    assert monday(11) in starts
    assert len(starts) == 16 - 2
    assert all(slot.start.utcoffset() == timedelta(hours=-4) for slot in slots)


async def test_free_slots_on_a_weekend_are_empty(calendar: GoogleCalendarConnector) -> None:
    saturday = datetime(2026, 3, 7, tzinfo=NY)

    assert await calendar.free_slots(saturday, saturday + timedelta(days=2), timedelta(minutes=30)) == []


async def test_free_slots_count_busy_time_on_every_configured_calendar(
    base_url: str, vault: MemoryVault, state: GoogleCalendarState
) -> None:
    state.add_event(SECOND_CALENDAR_ID, monday(14), monday(15))
    both = connect(base_url, vault, calendar_ids=["primary", SECOND_CALENDAR_ID])
    primary_only = connect(base_url, vault)

    with_second = [s.start for s in await both.free_slots(monday(13), monday(16), timedelta(minutes=30))]
    without_second = [s.start for s in await primary_only.free_slots(monday(13), monday(16), timedelta(minutes=30))]

    assert with_second == [monday(13), monday(13, 30), monday(15), monday(15, 30)]
    assert monday(14) in without_second


async def test_free_slots_ignore_events_marked_free_and_keep_the_buffer_around_busy_ones(
    base_url: str, vault: MemoryVault, state: GoogleCalendarState
) -> None:
    state.add_event("primary", monday(9), monday(12), "Working from home", transparency="transparent")
    state.add_event("primary", monday(14), monday(15))
    buffered = connect(base_url, vault, buffer_minutes=30)

    starts = [s.start for s in await buffered.free_slots(monday(9), monday(17), timedelta(minutes=30))]

    assert monday(9) in starts
    assert monday(13) in starts
    assert monday(13, 30) not in starts
    assert monday(15) not in starts
    assert monday(15, 30) in starts


async def test_free_slots_over_a_long_window_ask_google_in_chunks_it_accepts(
    base_url: str, vault: MemoryVault, state: GoogleCalendarState, sandbox: Sandbox
) -> None:
    far = datetime(2026, 6, 15, 10, tzinfo=NY)  # a Monday 103 days out
    state.add_event("primary", far, far + timedelta(hours=1))
    long_horizon = connect(base_url, vault, horizon_days=200)

    slots = await long_horizon.free_slots(NOW, NOW + timedelta(days=150), timedelta(minutes=30))

    starts = {slot.start for slot in slots}
    assert far - timedelta(minutes=30) in starts
    assert far not in starts
    assert far + timedelta(hours=1) in starts
    queries = [r.body for r in calendar_requests(sandbox, "POST")]
    assert len(queries) == 3
    spans = [datetime.fromisoformat(q["timeMax"]) - datetime.fromisoformat(q["timeMin"]) for q in queries]
    assert all(span <= timedelta(days=60) for span in spans)


async def test_free_slots_beyond_the_booking_horizon_ask_google_nothing(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    later = NOW + timedelta(days=90)

    assert await calendar.free_slots(later, later + timedelta(days=7), timedelta(minutes=30)) == []
    assert sandbox.provider_requests() == []


async def test_a_calendar_google_cannot_read_fails_instead_of_looking_free(base_url: str, vault: MemoryVault) -> None:
    unreadable = connect(base_url, vault, calendar_ids=["primary", "nobody@example.com"])

    with pytest.raises(UpstreamError) as raised:
        await unreadable.free_slots(monday(9), monday(17), timedelta(minutes=30))

    assert raised.value.retryable is False
    assert "notFound" in str(raised.value)


# -- booking ----------------------------------------------------------------------------------------


async def test_booking_creates_one_event_with_the_caller_as_attendee_and_details_in_the_description(
    calendar: GoogleCalendarConnector, sandbox: Sandbox, base_url: str
) -> None:
    request = booking(10, phone="+15551230001", email="Ada@Example.com", notes="Sensitive tooth, lower left")

    booked = await calendar.book(request)

    assert booked.status == "booked"
    assert booked.provider == "google_calendar"
    assert (booked.start, booked.end) == (monday(10), monday(10, 30))
    assert booked.attendee_name == "Ada Lovelace"
    assert booked.attendee_phone == "+15551230001"
    assert booked.attendee_email == "ada@example.com"
    assert booked.notes == "Sensitive tooth, lower left"
    assert booked.raw["kind"] == "calendar#event"
    async with httpx.AsyncClient() as client:
        dumped = (await client.get(f"{base_url}/_state")).json()
    events = dumped["calendars"][OWNER_EMAIL]["events"]
    assert [e["id"] for e in events] == [booked.id]
    event = events[0]
    assert event["attendees"] == [
        {"responseStatus": "needsAction", "email": "ada@example.com", "displayName": "Ada Lovelace"}
    ]
    for detail in ("Ada Lovelace", "+15551230001", "ada@example.com", "Sensitive tooth, lower left"):
        assert detail in event["description"]
    assert event["extendedProperties"]["private"]["caller_phone"] == "+15551230001"
    assert event["start"] == {"dateTime": "2026-03-09T10:00:00-04:00", "timeZone": "America/New_York"}
    assert dumped["notifications"] == [
        {"event_id": booked.id, "action": "invitation", "to": ["ada@example.com"], "sendUpdates": "all"}
    ]
    (insert,) = calendar_requests(sandbox, "POST")[-1:]
    assert insert.path == "/calendar/v3/calendars/primary/events"
    assert insert.query["sendUpdates"] == ["all"]


async def test_booking_without_an_email_has_no_attendee_and_sends_no_invitation(
    base_url: str, vault: MemoryVault, state: GoogleCalendarState
) -> None:
    quiet = connect(base_url, vault, send_updates="none")

    booked = await quiet.book(booking(11, email=None))

    (event,) = events_in_state(state)
    assert "attendees" not in event
    assert booked.attendee_phone == "+15551230001"
    assert booked.attendee_email is None
    assert state.notifications == []


async def test_booking_retried_with_the_same_idempotency_key_creates_one_event(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    first = await calendar.book(booking(10, key="call-1:book"))
    again = await calendar.book(booking(10, key="call-1:book"))

    assert again.id == first.id
    assert [e["id"] for e in events_in_state(state)] == [first.id]


async def test_booking_retried_without_any_contact_details_returns_the_first_event(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    first = await calendar.book(booking(10, phone=None, email=None, key="call-2:book"))
    again = await calendar.book(booking(10, phone=None, email=None, key="call-2:book"))

    assert again.id == first.id
    assert len(events_in_state(state)) == 1


async def test_concurrent_attempts_of_one_booking_create_one_event(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    results = await asyncio.gather(*(calendar.book(booking(10, phone=None, email=None, key="k")) for _ in range(3)))

    assert len({r.id for r in results}) == 1
    assert len(events_in_state(state)) == 1


async def test_booking_the_same_slot_twice_returns_the_first_event(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    first = await calendar.book(booking(10, key="call-a"))
    second = await calendar.book(booking(10, key="call-b", email=None))

    assert second.id == first.id
    assert len(events_in_state(state)) == 1


async def test_booking_a_taken_slot_is_refused_without_writing(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState, sandbox: Sandbox
) -> None:
    state.add_event("primary", monday(10), monday(11))
    await calendar.book(booking(11, phone="+15551230002", email=None))
    sandbox.requests.clear()

    with pytest.raises(SlotUnavailableError) as staff_meeting:
        await calendar.book(booking(10, minutes=30))
    with pytest.raises(SlotUnavailableError) as other_caller:
        await calendar.book(booking(11, minutes=30))

    assert staff_meeting.value.reason == "that time is already booked"
    assert other_caller.value.reason == "that time is already booked"
    assert calendar_requests(sandbox, "POST") != []  # freeBusy was asked…
    assert all(r.path == "/calendar/v3/freeBusy" for r in calendar_requests(sandbox, "POST"))  # …nothing inserted
    assert len(events_in_state(state)) == 2


async def test_booking_outside_the_rules_is_refused_before_asking_google(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    with pytest.raises(SlotUnavailableError) as evening:
        await calendar.book(booking(18))
    soon = NOW + timedelta(minutes=30)
    with pytest.raises(SlotUnavailableError) as too_soon:
        await calendar.book(BookingRequest(start=soon, end=soon + timedelta(minutes=30), attendee_name="Late"))

    assert "outside opening hours" in evening.value.reason
    assert "notice" in too_soon.value.reason
    assert sandbox.provider_requests() == []


async def test_rebooking_a_cancelled_booking_restores_its_event(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    first = await calendar.book(booking(10))
    await calendar.cancel(first.id)

    again = await calendar.book(booking(10))

    assert again.id == first.id  # the derived id answered 409 duplicate; the cancelled event came back
    assert again.status == "booked"
    (event,) = events_in_state(state)
    assert event["status"] == "confirmed"


# -- reschedule, cancel, get, find ------------------------------------------------------------------


async def test_rescheduling_moves_the_event(calendar: GoogleCalendarConnector, state: GoogleCalendarState) -> None:
    booked = await calendar.book(booking(10))

    moved = await calendar.reschedule(booked.id, monday(14), monday(14, 30))

    assert moved.id == booked.id
    assert (moved.start, moved.end) == (monday(14), monday(14, 30))
    (event,) = events_in_state(state)
    assert event["start"]["dateTime"] == "2026-03-09T14:00:00-04:00"
    assert event["sequence"] == 1
    assert [n["action"] for n in state.notifications] == ["invitation", "update"]


async def test_rescheduling_may_overlap_the_events_own_time_but_not_its_neighbour(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    booked = await calendar.book(booking(10, minutes=60))
    state.add_event("primary", monday(11), monday(12))  # freeBusy merges this with ours: 10:00-12:00

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(10, 30), monday(11, 30))
    moved = await calendar.reschedule(booked.id, monday(9, 30), monday(10, 30))

    assert moved.start == monday(9, 30)


async def test_rescheduling_to_a_taken_time_or_a_missing_event_is_refused(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    booked = await calendar.book(booking(10))
    state.add_event("primary", monday(15), monday(16))

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(15), monday(15, 30))
    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(20), monday(20, 30))
    with pytest.raises(NotFoundError) as missing:
        await calendar.reschedule("nosuchevent1", monday(11), monday(11, 30))
    await calendar.cancel(booked.id)
    with pytest.raises(NotFoundError) as cancelled:
        await calendar.reschedule(booked.id, monday(11), monday(11, 30))

    assert missing.value.identifier == "nosuchevent1"
    assert cancelled.value.kind == "booked appointment"


async def test_cancelling_deletes_the_event_and_cancelling_again_returns_it_cancelled(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState, sandbox: Sandbox
) -> None:
    booked = await calendar.book(booking(10))

    cancelled = await calendar.cancel(booked.id)
    again = await calendar.cancel(booked.id)

    assert (cancelled.id, cancelled.status) == (booked.id, "cancelled")
    assert (again.id, again.status) == (booked.id, "cancelled")
    assert (await calendar.get(booked.id)).status == "cancelled"
    (event,) = events_in_state(state)
    assert event["status"] == "cancelled"
    assert len(calendar_requests(sandbox, "DELETE")) == 1
    assert state.notifications[-1]["action"] == "cancellation"
    assert monday(10) in [s.start for s in await calendar.free_slots(monday(10), monday(11), timedelta(minutes=30))]


async def test_cancelling_an_unknown_event_raises_not_found(calendar: GoogleCalendarConnector) -> None:
    with pytest.raises(NotFoundError) as raised:
        await calendar.cancel("nosuchevent1")

    assert (raised.value.kind, raised.value.identifier) == ("appointment", "nosuchevent1")


async def test_get_returns_the_booking_and_raises_not_found_for_an_unknown_id(
    calendar: GoogleCalendarConnector,
) -> None:
    booked = await calendar.book(booking(10, notes="First visit"))

    fetched = await calendar.get(booked.id)

    assert fetched.model_dump(exclude={"raw"}) == booked.model_dump(exclude={"raw"})
    with pytest.raises(NotFoundError):
        await calendar.get("nosuchevent1")


async def test_events_staff_made_in_google_cannot_be_read_moved_or_cancelled(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    meeting = state.add_event("primary", monday(12), monday(13), "Staff meeting")

    with pytest.raises(NotFoundError):
        await calendar.get(meeting["id"])
    with pytest.raises(NotFoundError):
        await calendar.reschedule(meeting["id"], monday(14), monday(15))
    with pytest.raises(NotFoundError):
        await calendar.cancel(meeting["id"])

    (event,) = events_in_state(state)
    assert (event["status"], event["start"]["dateTime"]) == ("confirmed", "2026-03-09T12:00:00-04:00")


async def test_find_returns_a_callers_bookings_by_phone_or_email(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState
) -> None:
    morning = await calendar.book(booking(9, phone="+15551230001", email=None))
    afternoon = await calendar.book(booking(15, phone="+15551230001", email="ada@example.com"))
    other = await calendar.book(booking(11, name="Grace", phone="+15551230002", email="grace@example.com"))
    state.add_event("primary", monday(12), monday(13))
    cancelled = await calendar.book(booking(16, phone="+15551230001", email=None))
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


async def test_find_follows_next_page_token_across_pages(calendar: GoogleCalendarConnector, sandbox: Sandbox) -> None:
    booked = [await calendar.book(booking(hour, phone="+15551230009", email=None)) for hour in range(9, 14)]
    calendar.page_size = 2
    sandbox.requests.clear()

    found = await calendar.find(phone="+15551230009", email=None, since=NOW)

    assert [a.id for a in found] == [b.id for b in booked]
    lists = calendar_requests(sandbox, "GET")
    assert len(lists) == 3
    assert all(r.query["maxResults"] == ["2"] for r in lists)
    assert ["pageToken" in r.query for r in lists] == [False, True, True]


# -- OAuth ------------------------------------------------------------------------------------------


async def test_a_token_is_fetched_when_the_vault_holds_none(
    calendar: GoogleCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    assert "access_token" not in vault.secrets

    reached = await calendar.check_connection()

    assert reached == "calendar primary (America/New_York)"
    (token_call,) = token_requests(sandbox)
    assert token_call.body["grant_type"] == "refresh_token"
    assert vault.secrets["access_token"].startswith("ya29.")
    assert datetime.fromisoformat(vault.secrets["expires_at"]) == NOW + timedelta(seconds=3599)
    (calendar_call,) = calendar_requests(sandbox)
    assert calendar_call.headers["authorization"] == f"Bearer {vault.secrets['access_token']}"


async def test_an_expired_token_is_refreshed_before_the_call(
    base_url: str, vault: MemoryVault, sandbox: Sandbox
) -> None:
    vault.secrets.update({"access_token": "ya29.stale", "expires_at": (NOW - timedelta(minutes=5)).isoformat()})
    calendar = connect(base_url, vault)

    await calendar.check_connection()

    assert [r.path for r in sandbox.provider_requests()] == ["/token", "/calendar/v3/calendars/primary"]
    assert vault.secrets["access_token"] != "ya29.stale"
    assert calendar_requests(sandbox)[0].headers["authorization"] == f"Bearer {vault.secrets['access_token']}"


async def test_a_token_google_rejects_is_refreshed_once_and_the_call_retried(
    calendar: GoogleCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    first_token = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))
    sandbox.requests.clear()

    reached = await calendar.check_connection()

    assert reached.startswith("calendar primary")
    assert [r.path for r in sandbox.provider_requests()] == [
        "/calendar/v3/calendars/primary",
        "/token",
        "/calendar/v3/calendars/primary",
    ]
    assert vault.secrets["access_token"] != first_token
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    calendar: GoogleCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    vault.secrets.update({"access_token": "ya29.stale", "expires_at": (NOW - timedelta(minutes=5)).isoformat()})
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError) as raised:
        await calendar.free_slots(monday(9), monday(17), timedelta(minutes=30))

    assert raised.value.capability == "calendar"
    assert vault.expired_reason is not None
    assert "invalid_grant" in vault.expired_reason
    assert calendar_requests(sandbox) == []


async def test_a_revoked_grant_found_on_a_401_marks_the_connection_expired(
    calendar: GoogleCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    sandbox.inject(Fault(kind="expire_access_tokens"))
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await calendar.get("nosuchevent1")

    assert vault.expired_reason is not None


# -- faults -----------------------------------------------------------------------------------------


async def test_a_rate_limit_is_waited_out_and_the_call_succeeds(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    slots = await calendar.free_slots(monday(9), monday(10), timedelta(minutes=30))

    assert [s.start for s in slots] == [monday(9), monday(9, 30)]
    assert time.monotonic() - started >= 0.9  # Retry-After was honoured
    assert len(calendar_requests(sandbox, "POST")) == 2


async def test_a_persistent_server_error_raises_upstream_error_within_the_deadline(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await calendar.get("nosuchevent1")

    assert time.monotonic() - started < 3.5
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(calendar_requests(sandbox)) >= 2  # retried before giving up


async def test_a_slow_answer_times_out_as_a_retryable_upstream_error_within_the_deadline(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=2, times=1))
    started = time.monotonic()

    with deadline_scope(1), pytest.raises(UpstreamError) as raised:
        await calendar.get("nosuchevent1")

    assert time.monotonic() - started < 1.5
    assert raised.value.retryable is True
    assert "timed out" in str(raised.value)


def _http_error(status: int, body: str, headers: dict[str, str] | None = None) -> HttpError:
    response = httplib2.Response({"status": str(status), **(headers or {})})
    return HttpError(response, body.encode())


def _google_body(status: int, reason: str, domain: str = "global") -> str:
    return (
        f'{{"error": {{"code": {status}, "message": "m", '
        f'"errors": [{{"message": "m", "domain": "{domain}", "reason": "{reason}"}}]}}}}'
    )


def test_a_403_rate_limit_is_translated_with_its_retry_after() -> None:
    error = translate(_http_error(403, _google_body(403, "userRateLimitExceeded", "usageLimits"), {"retry-after": "2"}))

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [(403, "forbidden", False), (400, "invalid", False), (409, "duplicate", False), (500, "backendError", True)],
)
def test_other_google_errors_are_upstream_errors_retryable_only_when_5xx(
    status: int, reason: str, retryable: bool
) -> None:
    error = translate(_http_error(status, _google_body(status, reason)))

    assert isinstance(error, UpstreamError)
    assert not isinstance(error, RateLimitedError)
    assert (error.status, error.retryable) == (status, retryable)
    assert reason in str(error)


@pytest.mark.parametrize("status", [404, 410])
def test_a_missing_or_deleted_record_is_not_found(status: int) -> None:
    error = translate(_http_error(status, _google_body(status, "notFound")), ("appointment", "abc123"))

    assert isinstance(error, NotFoundError)
    assert error.identifier == "abc123"


def test_timeouts_and_connection_failures_are_retryable() -> None:
    timeout = translate(TimeoutError("timed out"))
    refused = translate(ConnectionRefusedError(111, "refused"))

    assert isinstance(timeout, UpstreamError)
    assert timeout.retryable
    assert isinstance(refused, UpstreamError)
    assert refused.retryable


async def test_an_unknown_booking_calendar_fails_the_connection_check(base_url: str, vault: MemoryVault) -> None:
    calendar = connect(base_url, vault, calendar_ids=["nobody@example.com"])

    with pytest.raises(NotFoundError) as raised:
        await calendar.check_connection()

    assert (raised.value.kind, raised.value.identifier) == ("calendar", "nobody@example.com")


# -- the emulator against Google's spec -------------------------------------------------------------


async def test_every_request_of_a_full_flow_is_in_the_discovery_document(
    calendar: GoogleCalendarConnector, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    await calendar.free_slots(monday(9), monday(17), timedelta(minutes=30))
    booked = await calendar.book(booking(10, notes="checkup", key="flow-1"))
    await calendar.find(phone="+15551230001", email="ada@example.com", since=NOW)
    await calendar.reschedule(booked.id, monday(11), monday(11, 30))
    await calendar.get(booked.id)
    await calendar.cancel(booked.id)
    await calendar.cancel(booked.id)
    await calendar.book(booking(10, notes="checkup"))
    await calendar.cancel((await calendar.book(booking(10, notes="checkup"))).id)
    await calendar.book(booking(10, notes="checkup"))  # 409 then restore

    discovery = Discovery(SPEC_FILE)
    problems = [problem for request in calendar_requests(sandbox) for problem in discovery.check_request(request)]

    assert problems == []
    methods = [discovery.method(r.method, r.path) for r in calendar_requests(sandbox)]
    operations = {method["id"] for method in methods if method is not None}
    assert operations == {
        "calendar.calendars.get",
        "calendar.freebusy.query",
        "calendar.events.list",
        "calendar.events.insert",
        "calendar.events.get",
        "calendar.events.patch",
        "calendar.events.delete",
    }


def _schema_problems(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Fields of `value` that the discovery schema does not define, recursively."""
    if "$ref" in schema:
        schema = document["schemas"][schema["$ref"]]
    problems: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, child in value.items():
            if properties is not None and name in properties:
                problems += _schema_problems(document, properties[name], child, f"{where}.{name}")
            elif extra is not None:
                problems += _schema_problems(document, extra, child, f"{where}.{name}")
            else:
                problems.append(f"{where}.{name} is not in the schema")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += _schema_problems(document, schema["items"], item, f"{where}[{index}]")
    return problems


async def test_emulator_answers_use_only_fields_of_the_discovery_schemas(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState, base_url: str
) -> None:
    booked = await calendar.book(booking(10, notes="checkup"))
    state.add_event("primary", monday(12), monday(13))
    token = state.issue_access_token()
    api = f"{base_url}/calendar/v3"
    window = {"timeMin": "2026-03-09T00:00:00Z", "timeMax": "2026-03-10T00:00:00Z"}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        answers = {
            "Calendar": (await client.get(f"{api}/calendars/primary")).json(),
            "Event": (await client.get(f"{api}/calendars/primary/events/{booked.id}")).json(),
            "Events": (await client.get(f"{api}/calendars/primary/events", params={"maxResults": 1})).json(),
            "FreeBusyResponse": (
                await client.post(f"{api}/freeBusy", json={**window, "items": [{"id": "primary"}, {"id": "x@y.z"}]})
            ).json(),
        }

    document = Discovery(SPEC_FILE).document
    problems = [p for name, body in answers.items() for p in _schema_problems(document, {"$ref": name}, body, name)]
    assert problems == []
    assert answers["Events"]["nextPageToken"]
    assert answers["FreeBusyResponse"]["calendars"]["x@y.z"]["errors"] == [{"domain": "global", "reason": "notFound"}]


async def test_the_emulator_answers_401_in_googles_format_without_a_valid_token(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{base_url}/calendar/v3/calendars/primary/events", headers={"Authorization": "Bearer ya29.forged"}
        )

    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["status"] == "UNAUTHENTICATED"
    assert error["errors"][0]["reason"] == "authError"
    assert error["errors"][0]["location"] == "Authorization"


async def test_the_emulator_token_endpoint_refuses_an_unknown_refresh_token(base_url: str) -> None:
    form = {**SPEC.sandbox_connection(base_url).secrets, "grant_type": "refresh_token", "refresh_token": "1//other"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{base_url}/token", data=form)

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


async def test_the_emulator_answers_a_second_delete_with_410_gone(
    calendar: GoogleCalendarConnector, state: GoogleCalendarState, base_url: str
) -> None:
    booked = await calendar.book(booking(10))
    url = f"{base_url}/calendar/v3/calendars/primary/events/{booked.id}"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {state.issue_access_token()}"}) as client:
        first = await client.delete(url)
        second = await client.delete(url)
        duplicate = await client.post(
            f"{base_url}/calendar/v3/calendars/primary/events", json={"id": booked.id, **_times()}
        )

    assert first.status_code == 204
    assert first.content == b""
    assert second.status_code == 410
    assert second.json()["error"]["errors"][0]["reason"] == "deleted"
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["errors"][0]["reason"] == "duplicate"


def _times() -> dict[str, Any]:
    return {
        "start": {"dateTime": monday(9).isoformat()},
        "end": {"dateTime": monday(9, 30).isoformat()},
    }


# -- time zones -------------------------------------------------------------------------------------

REFUSED_ZONES = ["America", "EST", "localtime", "posix/America/New_York", "America/Atlantis", "../etc/passwd"]


@pytest.mark.parametrize("zone", REFUSED_ZONES)
async def test_the_emulator_refuses_an_event_in_a_zone_that_is_not_an_iana_zone_with_time_zone_invalid(
    state: GoogleCalendarState, base_url: str, zone: str
) -> None:
    body = {
        "start": {"dateTime": "2026-03-09T09:00:00", "timeZone": zone},
        "end": {"dateTime": "2026-03-09T09:30:00", "timeZone": "America/New_York"},
    }
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {state.issue_access_token()}"}) as client:
        answer = await client.post(f"{base_url}/calendar/v3/calendars/primary/events", json=body)

    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0]["reason"] == "timeZoneInvalid"
    assert events_in_state(state) == []


@pytest.mark.parametrize("zone", [*REFUSED_ZONES, ""])
def test_settings_with_a_zone_that_is_not_an_iana_zone_are_a_validation_error_on_timezone(zone: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GoogleCalendarSettings.model_validate({"timezone": zone})

    assert [error["loc"] for error in raised.value.errors()] == [("timezone",)]


def test_rules_that_fall_back_to_an_agent_zone_that_is_a_folder_are_a_validation_error_on_timezone() -> None:
    settings = GoogleCalendarSettings.model_validate({})

    with pytest.raises(ValidationError) as raised:
        settings.rules("America")

    assert [error["loc"] for error in raised.value.errors()] == [("timezone",)]
    assert settings.rules("Europe/Paris").zone == ZoneInfo("Europe/Paris")


def test_settings_spell_a_zone_given_in_the_wrong_case_as_the_zone_database_does() -> None:
    assert GoogleCalendarSettings.model_validate({"timezone": "america/new_york"}).timezone == "America/New_York"


def test_an_event_naming_a_zone_folder_is_read_in_the_connections_zone_instead_of_failing() -> None:
    event = {
        "id": "abcde12345",
        "status": "confirmed",
        "start": {"dateTime": "2026-03-09T10:00:00", "timeZone": "America"},
        "end": {"dateTime": "2026-03-09T10:30:00", "timeZone": "America"},
    }

    booked = mappers.appointment(event, "America/New_York")

    assert booked.start == monday(10)
    assert booked.start.utcoffset() == timedelta(hours=-4)
    assert booked.end == monday(10, 30)


# -- state across a restart -------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("google_calendar", SPEC.sandbox, tmp_path / "google_calendar.json") as running:
        yield running


async def test_after_a_restart_the_connector_sees_the_same_bookings_with_the_token_it_already_had(
    restart: Restart,
) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    kept = await before.book(booking(10, key="call-1:book"))
    moved = await before.book(booking(11, key="call-2:book", name="Grace Hopper", phone="+15551230002", email=None))
    moved = await before.reschedule(moved.id, monday(14), monday(14, 30))
    dropped = await before.book(booking(12, key="call-3:book", name="Alan Turing", phone="+15551230003", email=None))
    await before.cancel(dropped.id)
    cast(GoogleCalendarState, restart.before.state).add_event("primary", monday(15), monday(16), "Staff meeting")

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    # The same vault: it holds the access token the first emulator issued.
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert len(dump_after["calendars"][OWNER_EMAIL]["events"]) == 4
    assert await after.get(kept.id) == kept
    assert await after.get(moved.id) == moved
    assert (await after.get(dropped.id)).status == "cancelled"
    assert await after.book(booking(10, key="call-1:book")) == kept
    assert [a.id for a in await after.find(phone="+15551230001", email=None, since=NOW)] == [kept.id]
    starts = [slot.start for slot in await after.free_slots(monday(9), monday(17), timedelta(minutes=30))]
    assert monday(12) in starts
    assert not {monday(10), monday(14), monday(15), monday(15, 30)} & set(starts)
    assert token_requests(restart.after) == []
    _, dump_at_the_end = await restart.dumps()
    assert dump_at_the_end["calendars"] == dump_before["calendars"]


def test_a_snapshot_restores_the_same_state_through_json_and_shares_nothing_with_it(
    state: GoogleCalendarState,
) -> None:
    state.add_event("primary", monday(10), monday(11))
    state.add_event(SECOND_CALENDAR_ID, monday(12), monday(13), transparency="transparent")
    token = state.issue_access_token()
    state.revoke_refresh_tokens()
    snapshot = state.snapshot()
    restored = GoogleCalendarState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["calendars"][0]["events"].clear()
    snapshot["access_tokens"].clear()

    assert restored.dump() == state.dump()
    assert len(events_in_state(state)) == 1
    assert restored.access_tokens == state.access_tokens == {token}
    assert (restored.refresh_tokens, restored.tokens_issued) == (set(), 1)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"version": None}, ValueError),
        ({"tokens_issued": "1"}, ValueError),
        ({"calendars": [{"id": "x", "summary": "X", "time_zone": "America", "events": {}}]}, ValueError),
        (
            {"calendars": [{"id": "x", "summary": "X", "time_zone": "UTC", "events": {"abcde": {"id": "abcde"}}}]},
            KeyError,
        ),
    ],
    ids=["a later version", "no version", "a count as text", "a zone folder", "an event without times"],
)
def test_a_snapshot_this_state_did_not_write_is_refused_and_leaves_the_state_as_it_was(
    state: GoogleCalendarState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.add_event("primary", monday(10), monday(11))
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
