"""The Outlook (Microsoft Graph) calendar connector against its emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest

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
from integrations.outlook_calendar import SPEC, OutlookCalendarConnector, OutlookCalendarSettings, mappers
from integrations.outlook_calendar.errors import translate
from integrations.outlook_calendar.sandbox_state import FRONT_DESK, OWNER, SANDBOX_TENANT, OutlookState
from integrations.outlook_calendar.windows_zones import WINDOWS_TO_IANA, iana_zone
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, NY, monday
from tests.support.provider_kit import booking as kit_booking
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import Csdl

SPEC_FILE = "outlook_calendar/graph-v1.0-calendar.csdl.xml"
TOKEN_PATH = f"/{SANDBOX_TENANT}/oauth2/v2.0/token"


def booking(hour: int, minute: int = 0, **changes: Any) -> BookingRequest:
    return kit_booking(hour, minute, **{**{"phone": "+15551230001", "email": "ada@example.com"}, **changes})


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"outlook_calendar": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> OutlookState:
    return cast(OutlookState, sandbox.state)


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("outlook_calendar")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


def connect(base_url: str, vault: MemoryVault, **overrides: Any) -> OutlookCalendarConnector:
    settings = SPEC.settings_model.model_validate({**SPEC.sandbox_connection(base_url).settings, **overrides})
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, OutlookCalendarConnector)
    return connector


@pytest.fixture
def calendar(base_url: str, vault: MemoryVault) -> OutlookCalendarConnector:
    return connect(base_url, vault)


def graph_requests(sandbox: Sandbox, method: str | None = None) -> list[RecordedRequest]:
    return [
        r for r in sandbox.provider_requests() if r.path.startswith("/v1.0/") and (method is None or r.method == method)
    ]


def token_requests(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.path == TOKEN_PATH]


def events_in_state(state: OutlookState, mailbox: str = OWNER) -> list[dict[str, Any]]:
    return list(state.dump()["mailboxes"][mailbox]["events"])


def creates(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in graph_requests(sandbox, "POST") if r.path == "/v1.0/me/events"]


# -- the spec ---------------------------------------------------------------------------------------


def test_the_spec_describes_an_oauth_calendar_provider() -> None:
    assert SPEC.name == "outlook_calendar"
    assert SPEC.capabilities == frozenset({"calendar"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert SPEC.optional_secrets == ("access_token", "expires_at")


def test_the_connector_satisfies_the_calendar_protocol_and_can_check_itself(
    calendar: OutlookCalendarConnector,
) -> None:
    assert isinstance(calendar, CalendarProvider)
    assert isinstance(calendar, Checkable)
    assert calendar.default_duration == timedelta(minutes=30)


def test_settings_default_to_microsofts_real_endpoints_and_reject_unknown_fields() -> None:
    with pytest.raises(ValueError, match=r"Extra inputs are not permitted"):
        OutlookCalendarSettings.model_validate({"calendar": "primary"})
    with pytest.raises(ValueError, match="tenant"):
        OutlookCalendarSettings.model_validate({"tenant": "../evil"})
    with pytest.raises(ValueError, match="SMTP"):
        OutlookCalendarSettings.model_validate({"schedules": ["front desk"]})
    settings = OutlookCalendarSettings.model_validate({"tenant": "contoso.onmicrosoft.com"})
    assert settings.base_url == "https://graph.microsoft.com"
    assert settings.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert settings.rules("Europe/Paris").timezone == "Europe/Paris"


# -- free slots -------------------------------------------------------------------------------------


async def test_free_slots_skip_busy_events_and_lie_inside_business_hours(
    calendar: OutlookCalendarConnector, state: OutlookState, sandbox: Sandbox
) -> None:
    state.add_event(OWNER, monday(10), monday(11))

    slots = await calendar.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(minutes=30))

    starts = [slot.start for slot in slots]
    assert starts[0] == monday(9)
    assert starts[-1] == monday(16, 30)
    assert monday(10) not in starts
    assert monday(10, 30) not in starts
    assert monday(11) in starts
    assert len(starts) == 16 - 2
    assert all(slot.start.utcoffset() == timedelta(hours=-4) for slot in slots)
    (schedule,) = [r for r in graph_requests(sandbox, "POST") if r.path.endswith("/getSchedule")]
    assert schedule.body["schedules"] == [OWNER]
    assert schedule.headers["prefer"] == 'outlook.timezone="Eastern Standard Time"'


async def test_free_slots_on_a_weekend_are_empty(calendar: OutlookCalendarConnector) -> None:
    saturday = datetime(2026, 3, 7, tzinfo=NY)

    assert await calendar.free_slots(saturday, saturday + timedelta(days=2), timedelta(minutes=30)) == []


async def test_free_slots_count_the_busy_time_of_every_configured_schedule(
    base_url: str, vault: MemoryVault, state: OutlookState
) -> None:
    state.add_event(FRONT_DESK, monday(14), monday(15))
    both = connect(base_url, vault, schedules=[FRONT_DESK])
    owner_only = connect(base_url, vault)

    with_desk = [s.start for s in await both.free_slots(monday(13), monday(16), timedelta(minutes=30))]
    without_desk = [s.start for s in await owner_only.free_slots(monday(13), monday(16), timedelta(minutes=30))]

    assert with_desk == [monday(13), monday(13, 30), monday(15), monday(15, 30)]
    assert monday(14) in without_desk


async def test_free_slots_ignore_events_shown_as_free_and_keep_the_buffer_around_busy_ones(
    base_url: str, vault: MemoryVault, state: OutlookState
) -> None:
    state.add_event(OWNER, monday(9), monday(12), "Working from home", show_as="free")
    state.add_event(OWNER, monday(14), monday(15), "Dentist away", show_as="oof")
    buffered = connect(base_url, vault, buffer_minutes=30)

    starts = [s.start for s in await buffered.free_slots(monday(9), monday(17), timedelta(minutes=30))]

    assert monday(9) in starts
    assert monday(13) in starts
    assert monday(13, 30) not in starts
    assert monday(15) not in starts
    assert monday(15, 30) in starts


async def test_free_slots_over_a_long_window_ask_get_schedule_in_chunks_it_accepts(
    base_url: str, vault: MemoryVault, state: OutlookState, sandbox: Sandbox
) -> None:
    far = datetime(2026, 6, 15, 10, tzinfo=NY)  # a Monday 103 days out
    state.add_event(OWNER, far, far + timedelta(hours=1))
    long_horizon = connect(base_url, vault, horizon_days=200)

    slots = await long_horizon.free_slots(NOW, NOW + timedelta(days=150), timedelta(minutes=30))

    starts = {slot.start for slot in slots}
    assert far - timedelta(minutes=30) in starts
    assert far not in starts
    assert far + timedelta(hours=1) in starts
    queries = [r.body for r in graph_requests(sandbox, "POST") if r.path.endswith("/getSchedule")]
    assert len(queries) == 3


async def test_a_schedule_graph_cannot_read_fails_instead_of_looking_free(base_url: str, vault: MemoryVault) -> None:
    unreadable = connect(base_url, vault, schedules=["nobody@example.com"])

    with pytest.raises(UpstreamError) as raised:
        await unreadable.free_slots(monday(9), monday(17), timedelta(minutes=30))

    assert raised.value.retryable is False
    assert "ErrorMailRecipientNotFound" in str(raised.value)


async def test_free_slots_in_another_zone_are_asked_and_read_in_that_zone(
    base_url: str, vault: MemoryVault, state: OutlookState, sandbox: Sandbox
) -> None:
    los_angeles = ZoneInfo("America/Los_Angeles")
    state.add_event(OWNER, datetime(2026, 3, 9, 10, tzinfo=los_angeles), datetime(2026, 3, 9, 11, tzinfo=los_angeles))
    pacific = connect(base_url, vault, timezone="America/Los_Angeles")
    day = datetime(2026, 3, 9, tzinfo=los_angeles)

    starts = [s.start for s in await pacific.free_slots(day, day + timedelta(days=1), timedelta(minutes=30))]

    assert datetime(2026, 3, 9, 9, 30, tzinfo=los_angeles) in starts
    assert datetime(2026, 3, 9, 10, tzinfo=los_angeles) not in starts
    assert datetime(2026, 3, 9, 11, tzinfo=los_angeles) in starts
    (schedule,) = [r for r in graph_requests(sandbox, "POST") if r.path.endswith("/getSchedule")]
    assert schedule.headers["prefer"] == 'outlook.timezone="Pacific Standard Time"'
    assert schedule.body["startTime"]["timeZone"] == "Pacific Standard Time"


# -- booking ----------------------------------------------------------------------------------------


async def test_booking_creates_one_event_with_the_caller_as_attendee_and_details_in_the_body(
    calendar: OutlookCalendarConnector, sandbox: Sandbox, base_url: str
) -> None:
    request = booking(10, phone="+15551230001", email="Ada@Example.com", notes="Sensitive tooth, lower left")

    booked = await calendar.book(request)

    assert booked.status == "booked"
    assert booked.provider == "outlook_calendar"
    assert (booked.start, booked.end) == (monday(10), monday(10, 30))
    assert booked.attendee_name == "Ada Lovelace"
    assert booked.attendee_phone == "+15551230001"
    assert booked.attendee_email == "ada@example.com"
    assert booked.notes == "Sensitive tooth, lower left"
    async with httpx.AsyncClient() as client:
        dumped = (await client.get(f"{base_url}/_state")).json()
    events = dumped["mailboxes"][OWNER]["events"]
    assert [e["id"] for e in events] == [booked.id]
    event = events[0]
    assert event["attendees"][0]["emailAddress"] == {"address": "ada@example.com", "name": "Ada Lovelace"}
    for detail in ("Ada Lovelace", "+15551230001", "ada@example.com", "Sensitive tooth, lower left"):
        assert detail in event["body"]["content"]
    assert event["start"] == {"dateTime": "2026-03-09T14:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "Eastern Standard Time"
    assert event["transactionId"].startswith("tsb-")
    assert dumped["notifications"] == [{"event_id": booked.id, "action": "invitation", "to": ["ada@example.com"]}]
    (create,) = creates(sandbox)
    assert create.body["start"] == {"dateTime": "2026-03-09T10:00:00", "timeZone": "Eastern Standard Time"}


async def test_booking_without_an_email_has_no_attendee_and_sends_no_invitation(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    booked = await calendar.book(booking(11, email=None))

    (event,) = events_in_state(state)
    assert event["attendees"] == []
    assert booked.attendee_phone == "+15551230001"
    assert booked.attendee_email is None
    assert state.notifications == []


async def test_booking_retried_with_the_same_idempotency_key_creates_one_event(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    first = await calendar.book(booking(10, key="call-1:book"))
    again = await calendar.book(booking(10, key="call-1:book"))

    assert again.id == first.id
    assert [e["id"] for e in events_in_state(state)] == [first.id]


async def test_a_retry_whose_first_answer_was_lost_returns_the_event_graph_made(
    calendar: OutlookCalendarConnector, state: OutlookState, sandbox: Sandbox
) -> None:
    # The create reaches Graph, but its answer comes after the client gave up.
    sandbox.inject(Fault(kind="slow", seconds=1.2, path="/v1.0/me/events", method="POST", times=1))
    with deadline_scope(0.8), pytest.raises(UpstreamError) as lost:
        await calendar.book(booking(10, phone=None, email=None, key="call-9:book"))
    assert lost.value.retryable is True
    assert [r.path for r in creates(sandbox)] == ["/v1.0/me/events"]
    for _ in range(30):  # the emulator finishes the create it was given
        if events_in_state(state):
            break
        await asyncio.sleep(0.1)
    assert len(events_in_state(state)) == 1

    again = await calendar.book(booking(10, phone=None, email=None, key="call-9:book"))

    assert [e["id"] for e in events_in_state(state)] == [again.id]
    assert len(creates(sandbox)) == 1  # found in the slot by its key: no second create was even sent


async def test_graph_answers_a_create_with_a_known_transaction_id_with_the_event_it_made(
    state: OutlookState, base_url: str
) -> None:
    body = {
        "subject": "x",
        "start": {"dateTime": "2026-03-09T09:00:00", "timeZone": "Eastern Standard Time"},
        "end": {"dateTime": "2026-03-09T09:30:00", "timeZone": "Eastern Standard Time"},
        "transactionId": "tsb-retried",
    }
    access, _ = state.issue_tokens()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {access}"}) as client:
        first = await client.post(f"{base_url}/v1.0/me/events", json=body)
        second = await client.post(f"{base_url}/v1.0/me/events", json=body)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert len(events_in_state(state)) == 1


async def test_concurrent_attempts_of_one_booking_create_one_event(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    results = await asyncio.gather(*(calendar.book(booking(10, phone=None, email=None, key="k")) for _ in range(3)))

    assert len({r.id for r in results}) == 1
    assert len(events_in_state(state)) == 1


async def test_the_same_caller_booking_the_same_slot_again_gets_the_first_event(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    first = await calendar.book(booking(10, key="call-a"))
    by_phone = await calendar.book(booking(10, key="call-b", email=None))
    by_email = await calendar.book(booking(10, key="call-c", phone=None, email="ADA@example.com"))

    assert by_phone.id == first.id
    assert by_email.id == first.id
    assert len(events_in_state(state)) == 1


async def test_booking_a_taken_slot_is_refused_without_writing(
    calendar: OutlookCalendarConnector, state: OutlookState, sandbox: Sandbox
) -> None:
    state.add_event(OWNER, monday(10), monday(11))
    await calendar.book(booking(11, phone="+15551230002", email=None))
    sandbox.requests.clear()

    with pytest.raises(SlotUnavailableError) as staff_meeting:
        await calendar.book(booking(10, minutes=30))
    with pytest.raises(SlotUnavailableError) as other_caller:
        await calendar.book(booking(11, minutes=30))

    assert staff_meeting.value.reason == "that time is already booked"
    assert other_caller.value.reason == "that time is already booked"
    assert creates(sandbox) == []
    assert len(events_in_state(state)) == 2


async def test_booking_outside_the_rules_is_refused_before_asking_graph(
    calendar: OutlookCalendarConnector, sandbox: Sandbox
) -> None:
    with pytest.raises(SlotUnavailableError) as evening:
        await calendar.book(booking(18))
    soon = NOW + timedelta(minutes=30)
    with pytest.raises(SlotUnavailableError) as too_soon:
        await calendar.book(BookingRequest(start=soon, end=soon + timedelta(minutes=30), attendee_name="Late"))

    assert "outside opening hours" in evening.value.reason
    assert "notice" in too_soon.value.reason
    assert sandbox.provider_requests() == []


async def test_rebooking_a_cancelled_booking_with_the_same_key_books_its_event_again(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    first = await calendar.book(booking(10, key="k-again"))
    await calendar.cancel(first.id)

    again = await calendar.book(booking(10, key="k-again"))

    assert again.id == first.id
    assert again.status == "booked"
    assert again.attendee_email == "ada@example.com"
    (event,) = events_in_state(state)
    assert event["showAs"] == "busy"
    assert monday(10) not in [s.start for s in await calendar.free_slots(monday(10), monday(11), timedelta(minutes=30))]


# -- reschedule, cancel, get, find ------------------------------------------------------------------


async def test_rescheduling_moves_the_event_and_tells_the_attendee(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    booked = await calendar.book(booking(10))

    moved = await calendar.reschedule(booked.id, monday(14), monday(14, 30))

    assert moved.id == booked.id
    assert (moved.start, moved.end) == (monday(14), monday(14, 30))
    (event,) = events_in_state(state)
    assert event["start"]["dateTime"] == "2026-03-09T18:00:00.0000000"
    assert [n["action"] for n in state.notifications] == ["invitation", "update"]


async def test_rescheduling_may_overlap_the_events_own_time_but_not_its_neighbour(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    booked = await calendar.book(booking(10, minutes=60))
    state.add_event(OWNER, monday(11), monday(12))

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(10, 30), monday(11, 30))
    moved = await calendar.reschedule(booked.id, monday(9, 30), monday(10, 30))

    assert moved.start == monday(9, 30)


async def test_rescheduling_to_a_taken_time_or_a_missing_or_cancelled_booking_is_refused(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    booked = await calendar.book(booking(10))
    state.add_event(OWNER, monday(15), monday(16))

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(15), monday(15, 30))
    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(booked.id, monday(20), monday(20, 30))
    with pytest.raises(NotFoundError) as missing:
        await calendar.reschedule("AAMkAGnosuchevent0000", monday(11), monday(11, 30))
    await calendar.cancel(booked.id)
    with pytest.raises(NotFoundError) as cancelled:
        await calendar.reschedule(booked.id, monday(11), monday(11, 30))

    assert missing.value.identifier == "AAMkAGnosuchevent0000"
    assert cancelled.value.kind == "booked appointment"


async def test_cancelling_frees_the_time_keeps_the_id_and_cancelling_again_is_harmless(
    calendar: OutlookCalendarConnector, state: OutlookState, sandbox: Sandbox
) -> None:
    booked = await calendar.book(booking(10))

    cancelled = await calendar.cancel(booked.id)
    again = await calendar.cancel(booked.id)

    assert (cancelled.id, cancelled.status) == (booked.id, "cancelled")
    assert (again.id, again.status) == (booked.id, "cancelled")
    assert (await calendar.get(booked.id)).status == "cancelled"
    (event,) = events_in_state(state)
    assert (event["showAs"], event["attendees"]) == ("free", [])
    assert event["subject"].startswith("Cancelled: ")
    assert len(graph_requests(sandbox, "PATCH")) == 1
    assert state.notifications[-1] == {"event_id": booked.id, "action": "cancellation", "to": ["ada@example.com"]}
    assert monday(10) in [s.start for s in await calendar.free_slots(monday(10), monday(11), timedelta(minutes=30))]
    assert await calendar.find(phone="+15551230001", email=None, since=NOW) == []


@pytest.mark.parametrize("unknown", ["AAMkAGnosuchevent0000", "does-not-exist-123"])
async def test_an_unknown_or_malformed_id_is_not_found(calendar: OutlookCalendarConnector, unknown: str) -> None:
    with pytest.raises(NotFoundError) as got:
        await calendar.get(unknown)
    with pytest.raises(NotFoundError) as cancelled:
        await calendar.cancel(unknown)

    assert (got.value.kind, got.value.identifier) == ("appointment", unknown)
    assert cancelled.value.identifier == unknown


async def test_get_returns_the_booking_as_it_was_booked(calendar: OutlookCalendarConnector) -> None:
    booked = await calendar.book(booking(10, notes="First visit"))

    fetched = await calendar.get(booked.id)

    assert fetched.model_dump(exclude={"raw"}) == booked.model_dump(exclude={"raw"})
    assert fetched.start.tzinfo == NY


async def test_events_staff_made_in_outlook_cannot_be_read_moved_or_cancelled(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    meeting = state.add_event(OWNER, monday(12), monday(13), "Staff meeting")

    with pytest.raises(NotFoundError):
        await calendar.get(meeting["id"])
    with pytest.raises(NotFoundError):
        await calendar.reschedule(meeting["id"], monday(14), monday(15))
    with pytest.raises(NotFoundError):
        await calendar.cancel(meeting["id"])

    (event,) = events_in_state(state)
    assert (event["showAs"], event["subject"]) == ("busy", "Staff meeting")


async def test_find_returns_a_callers_bookings_by_phone_or_email(
    calendar: OutlookCalendarConnector, state: OutlookState
) -> None:
    morning = await calendar.book(booking(9, phone="+15551230001", email=None))
    afternoon = await calendar.book(booking(15, phone="+15551230001", email="ada@example.com"))
    other = await calendar.book(booking(11, name="Grace", phone="+15551230002", email="grace@example.com"))
    state.add_event(OWNER, monday(12), monday(13))
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


async def test_find_follows_the_next_link_across_pages(calendar: OutlookCalendarConnector, sandbox: Sandbox) -> None:
    booked = [await calendar.book(booking(hour, phone="+15551230009", email=None)) for hour in range(9, 14)]
    calendar.page_size = 2
    sandbox.requests.clear()

    found = await calendar.find(phone="+15551230009", email=None, since=NOW)

    assert [a.id for a in found] == [b.id for b in booked]
    lists = graph_requests(sandbox, "GET")
    assert len(lists) == 3
    assert all(r.query["$top"] == ["2"] for r in lists)
    assert [r.query.get("$skip") for r in lists] == [None, ["2"], ["4"]]


# -- OAuth ------------------------------------------------------------------------------------------


async def test_a_token_is_fetched_from_the_tenants_v2_endpoint_with_the_scopes(
    calendar: OutlookCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    assert "access_token" not in vault.secrets

    reached = await calendar.check_connection()

    assert reached == f"calendar Calendar of {OWNER}"
    (token_call,) = token_requests(sandbox)
    assert token_call.body["grant_type"] == "refresh_token"
    assert "offline_access" in token_call.body["scope"].split()
    assert "https://graph.microsoft.com/Calendars.ReadWrite" in token_call.body["scope"].split()
    assert datetime.fromisoformat(vault.secrets["expires_at"]) == NOW + timedelta(seconds=3599)
    assert vault.secrets["refresh_token"] != SPEC.sandbox_connection("x").secrets["refresh_token"]  # rotated
    (graph_call,) = graph_requests(sandbox)
    assert graph_call.headers["authorization"] == f"Bearer {vault.secrets['access_token']}"


async def test_a_token_graph_rejects_is_refreshed_once_and_the_call_retried(
    calendar: OutlookCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    first_token = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))
    sandbox.requests.clear()

    reached = await calendar.check_connection()

    assert reached.startswith("calendar Calendar")
    assert [r.path for r in sandbox.provider_requests()] == ["/v1.0/me/calendar", TOKEN_PATH, "/v1.0/me/calendar"]
    assert vault.secrets["access_token"] != first_token
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    calendar: OutlookCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    vault.secrets.update({"access_token": "stale", "expires_at": (NOW - timedelta(minutes=5)).isoformat()})
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError) as raised:
        await calendar.free_slots(monday(9), monday(17), timedelta(minutes=30))

    assert raised.value.capability == "calendar"
    assert vault.expired_reason is not None
    assert "invalid_grant" in vault.expired_reason
    assert graph_requests(sandbox) == []


async def test_a_revoked_grant_found_on_a_401_marks_the_connection_expired(
    calendar: OutlookCalendarConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    sandbox.inject(Fault(kind="expire_access_tokens"))
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await calendar.get("AAMkAGnosuchevent0000")

    assert vault.expired_reason is not None


# -- faults -----------------------------------------------------------------------------------------


async def test_a_throttled_request_is_retried_after_retry_after_and_succeeds(
    calendar: OutlookCalendarConnector, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    slots = await calendar.free_slots(monday(9), monday(10), timedelta(minutes=30))

    assert [s.start for s in slots] == [monday(9), monday(9, 30)]
    assert time.monotonic() - started >= 0.9  # Retry-After was honoured
    assert len(graph_requests(sandbox, "POST")) == 2


async def test_a_persistent_server_error_raises_upstream_error_within_the_deadline(
    calendar: OutlookCalendarConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await calendar.get("AAMkAGnosuchevent0000")

    assert time.monotonic() - started < 3.5
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(graph_requests(sandbox)) >= 2  # retried before giving up


def _response(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": "m"}}, headers=headers)


def test_a_429_is_translated_with_its_retry_after() -> None:
    error = translate(_response(429, "ApplicationThrottled", {"Retry-After": "2"}))

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(403, "ErrorAccessDenied", False), (400, "ErrorInvalidRequest", False), (502, "UnknownError", True)],
)
def test_other_graph_errors_are_upstream_errors_retryable_only_when_5xx(
    status: int, code: str, retryable: bool
) -> None:
    error = translate(_response(status, code), ("appointment", "AAMkx"))

    assert isinstance(error, UpstreamError)
    assert not isinstance(error, RateLimitedError)
    assert (error.status, error.retryable) == (status, retryable)
    assert code in str(error)


# -- time zones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "offset"),
    [("Pacific Standard Time", -7), ("Eastern Standard Time", -4), ("UTC", 0), ("Romance Standard Time", 1)],
)
def test_graph_times_are_read_in_the_windows_zone_graph_names(name: str, offset: int) -> None:
    moment = mappers.parse_time({"dateTime": "2026-03-09T10:00:00.0000000", "timeZone": name})

    assert moment.utcoffset() == timedelta(hours=offset)
    assert moment.replace(tzinfo=None) == datetime(2026, 3, 9, 10, 0)


def test_a_zone_graph_names_that_cannot_be_mapped_is_an_upstream_error_not_a_guess() -> None:
    with pytest.raises(UpstreamError, match="cannot map"):
        mappers.parse_time({"dateTime": "2026-03-09T10:00:00.0000000", "timeZone": "Customized Time Zone"})


def test_every_windows_zone_in_the_table_maps_to_a_zone_the_server_accepts() -> None:
    assert {"Eastern Standard Time", "AUS Eastern Standard Time", "GMT Standard Time", "UTC"} <= set(WINDOWS_TO_IANA)
    assert all(iana_zone(name) for name in WINDOWS_TO_IANA)
    assert iana_zone("eastern standard time") == "America/New_York"
    assert mappers.graph_zone("America/New_York") == "Eastern Standard Time"
    assert mappers.graph_zone("Asia/Kathmandu") == "Nepal Standard Time"


# -- the emulator against Graph's metadata ----------------------------------------------------------


async def test_every_request_of_a_full_flow_is_in_graphs_metadata(
    calendar: OutlookCalendarConnector, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    await calendar.free_slots(monday(9), monday(17), timedelta(minutes=30))
    booked = await calendar.book(booking(10, notes="checkup", key="flow-1"))
    await calendar.find(phone="+15551230001", email="ada@example.com", since=NOW)
    await calendar.reschedule(booked.id, monday(11), monday(11, 30))
    await calendar.get(booked.id)
    await calendar.cancel(booked.id)
    await calendar.cancel(booked.id)
    await calendar.book(booking(11, notes="checkup", key="flow-1"))

    csdl = Csdl(SPEC_FILE)
    problems = [problem for request in graph_requests(sandbox) for problem in csdl.check_request(request)]

    assert problems == []
    operations = {(r.method, csdl.target(r.path)[0], csdl.target(r.path)[4]) for r in graph_requests(sandbox)}
    assert operations == {
        ("GET", "entity", "calendar"),
        ("POST", "action", "getSchedule"),
        ("GET", "collection", "calendarView"),
        ("GET", "collection", "events"),
        ("POST", "collection", "events"),
        ("GET", "entity", "events"),
        ("PATCH", "entity", "events"),
    }
    (token_call, *_) = token_requests(sandbox)
    assert set(token_call.body) == {"grant_type", "refresh_token", "client_id", "client_secret", "scope"}


def test_the_metadata_checker_refuses_what_graph_would_refuse() -> None:
    csdl = Csdl(SPEC_FILE)

    def request(method: str, path: str, body: Any = None, **query: list[str]) -> RecordedRequest:
        return RecordedRequest(method=method, path=path, query=dict(query), headers={}, body=body)

    assert csdl.check_request(request("POST", "/v1.0/me/events", {"subject": "x", "sendUpdates": "all"})) != []
    assert csdl.check_request(request("POST", "/v1.0/me/events", {"showAs": "maybe"})) != []
    assert csdl.check_request(request("GET", "/v1.0/me/calendarView", None, **{"$top": ["5"]})) != []
    assert csdl.check_request(request("POST", "/v1.0/me/calendar/freeBusy", {})) != []
    assert csdl.check_request(request("PATCH", "/v1.0/me/events", {})) != []
    assert csdl.check_request(request("POST", "/v1.0/me/calendar/getSchedule", {"Schedules": [], "When": 1})) != []
    assert csdl.check_request(request("POST", "/v1.0/me/calendar/getSchedule", {"Schedules": ["a@b.c"]})) == []
    assert csdl.check_request(request("POST", "/v1.0/users/a@b.c/events/AAMk1/cancel", {"Comment": "x"})) == []


async def test_emulator_answers_use_only_properties_of_graphs_types(
    calendar: OutlookCalendarConnector, state: OutlookState, base_url: str
) -> None:
    booked = await calendar.book(booking(10, notes="checkup"))
    state.add_event(OWNER, monday(12), monday(13))
    access, _ = state.issue_tokens()
    api = f"{base_url}/v1.0/me"
    window = {"startDateTime": "2026-03-09T00:00:00Z", "endDateTime": "2026-03-10T00:00:00Z", "$top": "1"}
    schedule = {
        "schedules": [OWNER, "x@y.z"],
        "startTime": {"dateTime": "2026-03-09T00:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2026-03-10T00:00:00", "timeZone": "UTC"},
    }
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {access}"}) as client:
        calendar_body = (await client.get(f"{api}/calendar")).json()
        event = (await client.get(f"{api}/events/{booked.id}")).json()
        view = (await client.get(f"{api}/calendarView", params=window)).json()
        schedules = (await client.post(f"{api}/calendar/getSchedule", json=schedule)).json()

    csdl = Csdl(SPEC_FILE)
    problems = [
        *csdl.validate("graph.calendar", calendar_body),
        *csdl.validate("graph.event", event),
        *[p for item in view["value"] for p in csdl.validate("graph.event", item)],
        *[p for item in schedules["value"] for p in csdl.validate("graph.scheduleInformation", item)],
    ]
    assert problems == []
    assert view["@odata.nextLink"].startswith(f"{base_url}/v1.0/me/calendarView?")
    assert [s["scheduleItems"][0]["status"] for s in schedules["value"][:1]] == ["busy"]
    # 30-minute steps from 00:00 UTC: 10:00-10:30 and 12:00-13:00 New York are 14:00 and 16:00-17:00 UTC.
    assert schedules["value"][0]["availabilityView"][28:34] == "200022"
    assert schedules["value"][1]["error"]["responseCode"] == "ErrorMailRecipientNotFound"


async def test_the_emulator_answers_401_in_graphs_format_without_a_valid_token(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        forged = await client.get(f"{base_url}/v1.0/me/events", headers={"Authorization": "Bearer forged"})
        missing = await client.get(f"{base_url}/v1.0/me/events")

    assert (forged.status_code, missing.status_code) == (401, 401)
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert missing.json()["error"]["message"] == "Access token is empty."
    assert set(forged.json()["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert forged.headers["WWW-Authenticate"].startswith("Bearer realm=")


async def test_the_emulator_token_endpoint_refuses_an_unknown_refresh_token_with_aadsts_codes(base_url: str) -> None:
    form = {
        **SPEC.sandbox_connection(base_url).secrets,
        "grant_type": "refresh_token",
        "refresh_token": "M.other",
        "scope": "offline_access",
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{base_url}{TOKEN_PATH}", data=form)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_codes"] == [700082]
    assert answer.json()["error_description"].startswith("AADSTS700082:")


async def test_the_emulator_answers_throttling_in_graphs_format(sandbox: Sandbox, base_url: str) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=3, times=1))
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}/v1.0/me/calendar")

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json()["error"]["code"] == "ApplicationThrottled"


async def test_the_emulator_removes_an_event_on_delete_or_cancel_and_then_answers_item_not_found(
    state: OutlookState, base_url: str
) -> None:
    first = state.add_event(OWNER, monday(9), monday(10))
    second = state.add_event(OWNER, monday(11), monday(12))
    access, _ = state.issue_tokens()
    api = f"{base_url}/v1.0/me/events"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {access}"}) as client:
        deleted = await client.delete(f"{api}/{first['id']}")
        cancelled = await client.post(f"{api}/{second['id']}/cancel", json={"Comment": "Sorry"})
        gone = await client.get(f"{api}/{first['id']}")
        unknown_zone = await client.post(
            api,
            json={
                "start": {"dateTime": "2026-03-09T09:00:00", "timeZone": "Mars/Olympus"},
                "end": {"dateTime": "2026-03-09T09:30:00", "timeZone": "UTC"},
            },
        )

    assert (deleted.status_code, cancelled.status_code) == (204, 202)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert unknown_zone.status_code == 400
    assert unknown_zone.json()["error"]["code"] == "TimeZoneNotSupportedException"
    assert events_in_state(state) == []


# -- state across a restart -------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("outlook_calendar", SPEC.sandbox, tmp_path / "outlook_calendar.json") as running:
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
    cast(OutlookState, restart.before.state).add_event(OWNER, monday(15), monday(16), "Staff meeting")

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert len(dump_after["mailboxes"][OWNER]["events"]) == 4
    assert (await after.get(kept.id)).model_dump(exclude={"raw"}) == kept.model_dump(exclude={"raw"})
    assert (await after.get(moved.id)).start == monday(14)
    assert (await after.get(dropped.id)).status == "cancelled"
    assert (await after.book(booking(10, key="call-1:book"))).id == kept.id
    assert [a.id for a in await after.find(phone="+15551230001", email=None, since=NOW)] == [kept.id]
    starts = [slot.start for slot in await after.free_slots(monday(9), monday(17), timedelta(minutes=30))]
    assert monday(12) in starts
    assert not {monday(10), monday(14), monday(15), monday(15, 30)} & set(starts)
    assert token_requests(restart.after) == []


def test_a_snapshot_restores_the_same_state_through_json_and_shares_nothing_with_it(state: OutlookState) -> None:
    state.add_event(OWNER, monday(10), monday(11))
    state.add_event(FRONT_DESK, monday(12), monday(13), show_as="free")
    access, refresh = state.issue_tokens()
    snapshot = state.snapshot()
    restored = OutlookState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["mailboxes"][0]["events"].clear()
    snapshot["access_tokens"].clear()

    assert restored.dump() == state.dump()
    assert len(events_in_state(state)) == 1
    assert restored.access_tokens == state.access_tokens == {access}
    assert refresh in restored.refresh_tokens
    assert restored.tokens_issued == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"version": None}, ValueError),
        ({"tokens_issued": "1"}, ValueError),
        (
            {"mailboxes": [{"address": "x@y.z", "name": "X", "time_zone": "Mars Standard Time", "events": {}}]},
            ValueError,
        ),
        (
            {
                "mailboxes": [
                    {"address": "x@y.z", "name": "X", "time_zone": "UTC", "events": {"AAMk1": {"id": "AAMk1"}}}
                ]
            },
            KeyError,
        ),
    ],
    ids=["a later version", "no version", "a count as text", "an unknown zone", "an event without times"],
)
def test_a_snapshot_this_state_did_not_write_is_refused_and_leaves_the_state_as_it_was(
    state: OutlookState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.add_event(OWNER, monday(10), monday(11))
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
