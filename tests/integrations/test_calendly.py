"""The Calendly connector against its emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from integrations.calendly import SPEC, CalendlyConnector, SchedulingLinkError
from integrations.calendly.client import CalendlyClient, Credentials
from integrations.calendly.sandbox_state import (
    EVENT_TYPE_URI,
    SANDBOX_PERSONAL_ACCESS_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    USER_URI,
    CalendlyState,
)
from integrations.calendly.settings import CalendlySettings
from integrations.capabilities.calendar import CalendarProvider
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import BookingRequest
from integrations.common.deadline import deadline_scope
from integrations.common.oauth import TokenManager
from integrations.common.resilience import Resilience, RetryPolicy
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, NY, monday
from tests.support.provider_kit import booking as kit_booking
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import SPECS, OpenApi

MAIN_SPEC = "calendly-api.v2.2023-04.json"
INVITEES_SPEC = "post-invitees.derived.json"


def booking(hour: int, minute: int = 0, **changes: Any) -> BookingRequest:
    return kit_booking(hour, minute, **{**{"phone": "+15551230001", "notes": "Cleaning"}, **changes})


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"calendly": sandbox}) as running:
        yield running


@pytest.fixture
def state(sandbox: Sandbox) -> CalendlyState:
    return cast(CalendlyState, sandbox.state)


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox, state: CalendlyState) -> None:
    sandbox.reset()
    # The emulator shares the connector's pinned clock, so Calendly's "not in the past" applies.
    state.clock = lambda: NOW


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("calendly")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


def connect(
    base_url: str, vault: MemoryVault, *, policy: RetryPolicy | None = None, **overrides: Any
) -> CalendlyConnector:
    """The connector as `SPEC.build` makes it, or with its own retry policy."""
    settings = CalendlySettings.model_validate({**SPEC.sandbox_connection(base_url).settings, **overrides})
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    if policy is None:
        connector = SPEC.build(settings, vault, env)
        assert isinstance(connector, CalendlyConnector)
        return connector
    tokens = TokenManager("calendly", "calendar", vault, settings.token_url, clock=env.clock)
    client = CalendlyClient(
        settings.base_url,
        Credentials(vault, tokens),
        Resilience("calendly", policy),
        timeout_ceiling=settings.request_timeout_seconds,
    )
    return CalendlyConnector(settings, client, env.clock, env.timezone)


@pytest.fixture
def calendar(base_url: str, vault: MemoryVault) -> CalendlyConnector:
    return connect(base_url, vault)


def requests_to(sandbox: Sandbox, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in sandbox.provider_requests() if r.method == method and r.path == path]


def events(state: CalendlyState, status: str | None = None) -> list[dict[str, Any]]:
    return [e for e in state.dump()["events"] if status is None or e["status"] == status]


async def free_starts(calendar: CalendlyConnector, day: int = 9) -> list[datetime]:
    start = datetime(2026, 3, day, tzinfo=NY)
    return [s.start for s in await calendar.free_slots(start, start + timedelta(days=1), timedelta(minutes=30))]


# -- the specs ----------------------------------------------------------------------------------------


class _InviteesSpec(OpenApi):
    """The derived POST /invitees document, whose refs point into the 2023 document beside it."""

    def __init__(self) -> None:
        super().__init__(f"calendly/{INVITEES_SPEC}")
        self.sibling = OpenApi(f"calendly/{MAIN_SPEC}")

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and str(node.get("$ref", "")).startswith(f"{MAIN_SPEC}#"):
            node = self.sibling.resolve({"$ref": str(node["$ref"]).removeprefix(MAIN_SPEC)})
        return super().resolve(node)


def check_request(request: RecordedRequest) -> list[str]:
    if request.path == "/oauth/token":
        return []  # Calendly's OAuth host is not part of the API spec; its form is checked below.
    spec: OpenApi = _InviteesSpec() if request.path == "/invitees" else OpenApi(f"calendly/{MAIN_SPEC}")
    problems = spec.check_request(request)
    operation = spec.operation(request.method, request.path)
    if operation is not None:
        known = {spec.resolve(p)["name"] for p in operation[1].get("parameters", [])}
        known |= {p["name"] for p in spec.document["paths"][operation[0]].get("parameters", [])}
        problems += [
            f"{request.path}: query parameter {name!r} not in the spec" for name in request.query if name not in known
        ]
    return problems


_BASE = "https://specs.test/calendly/"


@cache
def _registry() -> Registry[Any]:
    resources = [
        (f"{_BASE}{name}", Resource.from_contents(json.loads((SPECS / "calendly" / name).read_text()), DRAFT4))
        for name in (MAIN_SPEC, INVITEES_SPEC)
    ]
    return Registry().with_resources(resources)


def answer_problems(document: str, pointer: str, body: Any) -> list[str]:
    """Problems with `body` against the schema at `pointer` (JSON pointer) in one spec file."""
    validator = OAS30Validator({"$ref": f"{_BASE}{document}#{pointer}"}, registry=_registry())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def response_pointer(path: str, method: str, status: int) -> str:
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"


# -- free slots -------------------------------------------------------------------------------------


async def test_free_slots_are_calendlys_available_times_in_the_business_zone(calendar: CalendlyConnector) -> None:
    starts = await free_starts(calendar)

    assert len(starts) == 16
    assert starts[0] == monday(9)
    assert starts[0].utcoffset() == timedelta(hours=-4)
    assert starts[-1] == monday(16, 30)
    assert await free_starts(calendar, day=7) == []  # Saturday


async def test_free_slots_over_more_than_31_days_are_asked_in_windows_calendly_accepts(
    calendar: CalendlyConnector, sandbox: Sandbox
) -> None:
    start = datetime(2026, 3, 1, tzinfo=NY)

    found = await calendar.free_slots(start, start + timedelta(days=45), timedelta(minutes=30))

    asked = requests_to(sandbox, "GET", "/event_type_available_times")
    windows = [
        (datetime.fromisoformat(r.query["start_time"][0]), datetime.fromisoformat(r.query["end_time"][0]))
        for r in asked
    ]
    assert len(windows) == 2
    assert all(end - begin <= timedelta(days=31) for begin, end in windows)
    assert windows[0][0] > NOW  # never the past, which Calendly refuses
    assert windows[0][1] == windows[1][0]
    assert found[0].start == datetime(2026, 3, 4, 14, 0, tzinfo=NY)  # four hours after 10:00, the notice
    assert found[-1].start == datetime(2026, 4, 14, 16, 30, tzinfo=NY)
    assert len({slot.start for slot in found}) == len(found)


async def test_a_slot_of_another_length_than_the_event_type_is_refused_with_a_reason(
    calendar: CalendlyConnector,
) -> None:
    with pytest.raises(SlotUnavailableError, match="30-minute"):
        await calendar.free_slots(monday(9), monday(17), timedelta(minutes=60))
    with pytest.raises(SlotUnavailableError, match="30-minute"):
        await calendar.book(booking(10, minutes=60))


async def test_staff_busy_time_on_a_connected_calendar_is_not_offered_or_booked(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    state.add_busy(monday(11), monday(12))

    starts = await free_starts(calendar)

    assert monday(11) not in starts
    assert monday(11, 30) not in starts
    assert monday(10, 30) in starts
    assert monday(12) in starts
    with pytest.raises(SlotUnavailableError):
        await calendar.book(booking(11))


# -- booking ----------------------------------------------------------------------------------------


async def test_a_booking_writes_the_caller_into_the_invitee_and_takes_the_slot(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    appointment = await calendar.book(booking(10, key="call-1:book", email="Ada@Example.com"))

    assert appointment.start == monday(10)
    assert appointment.end == monday(10, 30)
    assert (appointment.status, appointment.attendee_name) == ("booked", "Ada Lovelace")
    assert (appointment.attendee_phone, appointment.attendee_email, appointment.notes) == (
        "+15551230001",
        "ada@example.com",
        "Cleaning",
    )
    [event] = events(state)
    [invitee] = event["invitees"]
    assert event["start_time"] == "2026-03-09T14:00:00.000000Z"
    assert invitee["text_reminder_number"] == "+15551230001"
    assert {a["question"]: a["answer"] for a in invitee["questions_and_answers"]} == {
        "Phone number": "+15551230001",
        "Please share anything that will help prepare for our meeting.": "Cleaning",
    }
    assert invitee["tracking"]["utm_term"] == "call-1:book"
    assert invitee["timezone"] == "America/New_York"
    assert monday(10) not in await free_starts(calendar)
    assert (await calendar.get(appointment.id)).model_dump(exclude={"raw"}) == appointment.model_dump(exclude={"raw"})


async def test_a_caller_without_an_email_is_booked_under_a_stand_in_that_is_never_reported(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    appointment = await calendar.book(booking(10, phone="+1 (212) 555-0142"))

    assert events(state)[0]["invitees"][0]["email"] == "caller-12125550142@phone-booking.invalid"
    assert appointment.attendee_email is None


async def test_booking_the_same_start_again_for_the_same_caller_returns_the_first_booking(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox
) -> None:
    first = await calendar.book(booking(10, key="k-1"))
    by_phone = await calendar.book(booking(10, key="k-2", phone="+1 555 123 0001"))
    by_email = await calendar.book(booking(14, key="k-3", phone=None, email="ada@example.com"))
    again_by_email = await calendar.book(booking(14, key="k-4", phone="+15559999999", email="ADA@example.com"))

    assert by_phone.id == first.id
    assert again_by_email.id == by_email.id
    assert len(events(state)) == 2
    assert len(requests_to(sandbox, "POST", "/invitees")) == 2


async def test_another_caller_cannot_take_a_booked_slot(calendar: CalendlyConnector, state: CalendlyState) -> None:
    await calendar.book(booking(10, key="k-1"))

    with pytest.raises(SlotUnavailableError):
        await calendar.book(booking(10, name="Grace Hopper", phone="+15551230002", key="k-2"))
    assert len(events(state)) == 1


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 9, 20, 0, tzinfo=NY),
        datetime(2026, 3, 9, 10, 15, tzinfo=NY),
        datetime(2026, 3, 4, 9, 0, tzinfo=NY),
    ],
    ids=["after-hours", "off-the-grid", "in-the-past"],
)
async def test_a_time_calendly_does_not_offer_is_refused_without_booking(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox, start: datetime
) -> None:
    request = BookingRequest(
        start=start, end=start + timedelta(minutes=30), attendee_name="Ada", attendee_phone="+15551230001"
    )

    with pytest.raises(SlotUnavailableError):
        await calendar.book(request)
    assert events(state) == []
    assert requests_to(sandbox, "POST", "/invitees") == []


async def test_a_slot_taken_between_the_check_and_the_write_is_reported_as_unavailable(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox
) -> None:
    # Another booking lands while our availability request is in flight.
    sandbox.inject(Fault(kind="slow", seconds=0.3, path="/event_type_available_times"))

    async def someone_else() -> None:
        await asyncio.sleep(0.1)
        state.add_busy(monday(10), monday(10, 30))

    with pytest.raises(SlotUnavailableError):
        await asyncio.gather(calendar.book(booking(10, key="k-1")), someone_else())
    assert events(state) == []


# -- retried writes -----------------------------------------------------------------------------------


async def test_a_retried_booking_with_the_same_key_creates_one_event(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    first, concurrent = await asyncio.gather(
        calendar.book(booking(10, key="k-1")), calendar.book(booking(10, key="k-1"))
    )
    again = await calendar.book(booking(10, key="k-1"))

    assert first.id == concurrent.id == again.id
    assert len(events(state)) == 1


async def test_a_create_whose_answer_was_lost_is_looked_up_before_it_is_sent_again(
    base_url: str, vault: MemoryVault, state: CalendlyState, sandbox: Sandbox
) -> None:
    # The first POST /invitees books but answers after the client gave up (0.6 s); the retry waits
    # 1 to 2 s, by which time the booking exists, and must find it instead of posting again.
    calendar = connect(base_url, vault, policy=RetryPolicy(base_delay=2.0, max_delay=2.0), request_timeout_seconds=0.6)
    sandbox.inject(Fault(kind="slow", seconds=1.0, path="/invitees", method="POST"))

    appointment = await calendar.book(booking(10, key="k-lost"))

    assert appointment.start == monday(10)
    assert len(events(state)) == 1
    assert appointment.id == events(state)[0]["uri"].rsplit("/", 1)[-1]
    assert len(requests_to(sandbox, "POST", "/invitees")) == 1


async def test_a_tool_call_retried_after_its_booking_answer_was_lost_returns_that_booking(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=1.2, path="/invitees", method="POST"))
    with pytest.raises(UpstreamError), deadline_scope(0.9):
        await calendar.book(booking(10, key="k-lost"))
    for _ in range(40):  # the emulator finishes the booking nobody heard about
        if events(state):
            break
        await asyncio.sleep(0.05)
    assert len(events(state)) == 1

    retried = await calendar.book(booking(10, key="k-lost", phone="+15557654321"))

    assert retried.start == monday(10)
    assert len(events(state)) == 1
    assert len(requests_to(sandbox, "POST", "/invitees")) == 1


# -- get, reschedule, cancel, find -------------------------------------------------------------------


@pytest.mark.parametrize("appointment_id", ["does-not-exist-123", "../users/me", "", "a" * 200])
async def test_an_unknown_or_malformed_appointment_id_is_not_found(
    calendar: CalendlyConnector, appointment_id: str
) -> None:
    with pytest.raises(NotFoundError):
        await calendar.get(appointment_id)
    with pytest.raises(NotFoundError):
        await calendar.cancel(appointment_id)


async def test_rescheduling_keeps_the_appointment_id_and_moves_the_booking_in_calendly(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    appointment = await calendar.book(booking(10, key="k-1"))

    moved = await calendar.reschedule(appointment.id, monday(14), monday(14, 30))
    moved_again = await calendar.reschedule(appointment.id, monday(15), monday(15, 30))

    assert moved.id == moved_again.id == appointment.id
    assert (await calendar.get(appointment.id)).start == monday(15)
    assert [a.id for a in await calendar.find(phone="+15551230001", email=None, since=NOW)] == [appointment.id]
    starts = await free_starts(calendar)
    assert monday(10) in starts
    assert monday(14) in starts
    assert monday(15) not in starts
    assert [e["status"] for e in events(state)] == ["canceled", "canceled", "active"]
    assert events(state)[0]["cancellation"]["reason"].endswith(events(state)[1]["uri"])
    assert events(state)[2]["invitees"][0]["questions_and_answers"][0]["answer"] == "Cleaning"


async def test_rescheduling_onto_a_taken_time_leaves_the_booking_where_it_was(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    appointment = await calendar.book(booking(10, key="k-1"))
    await calendar.book(booking(14, phone="+15551230002", name="Grace Hopper", key="k-2"))

    with pytest.raises(SlotUnavailableError):
        await calendar.reschedule(appointment.id, monday(14), monday(14, 30))
    assert (await calendar.get(appointment.id)).start == monday(10)
    assert [e["status"] for e in events(state)] == ["active", "active"]


async def test_cancelling_frees_the_slot_and_cancelling_again_is_harmless(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox
) -> None:
    appointment = await calendar.book(booking(10, key="k-1"))

    cancelled = await calendar.cancel(appointment.id)
    again = await calendar.cancel(appointment.id)

    assert (cancelled.status, again.status) == ("cancelled", "cancelled")
    assert (await calendar.get(appointment.id)).status == "cancelled"
    assert monday(10) in await free_starts(calendar)
    assert len(requests_to(sandbox, "POST", f"/scheduled_events/{appointment.id}/cancellation")) == 1
    assert events(state)[0]["cancellation"]["canceler_type"] == "host"
    with pytest.raises(NotFoundError):
        await calendar.reschedule(appointment.id, monday(11), monday(11, 30))


async def test_find_matches_a_phone_in_any_format_or_an_email_and_skips_others_and_cancelled(
    calendar: CalendlyConnector,
) -> None:
    mine = await calendar.book(booking(10, email="ada@example.com", key="k-1"))
    gone = await calendar.book(booking(11, email="ada@example.com", key="k-2"))
    await calendar.cancel(gone.id)
    await calendar.book(booking(12, phone="+15551230002", name="Grace Hopper", key="k-3"))

    assert [a.id for a in await calendar.find(phone="+1 555-123-0001", email=None, since=NOW)] == [mine.id]
    assert [a.id for a in await calendar.find(phone=None, email="ADA@example.com", since=NOW)] == [mine.id]
    assert await calendar.find(phone=None, email=None, since=NOW) == []
    assert await calendar.find(phone="+15551230001", email=None, since=monday(11)) == []


async def test_find_reads_every_page_of_scheduled_events(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("integrations.calendly.client.PAGE_SIZE", 2)
    for hour in (9, 10, 11, 12, 13):
        await calendar.book(booking(hour, phone=f"+155512300{hour:02d}", key=f"k-{hour}"))

    found = await calendar.find(phone="+15551230013", email=None, since=NOW)

    assert [a.start for a in found] == [monday(13)]
    pages = [r for r in requests_to(sandbox, "GET", "/scheduled_events") if "max_start_time" not in r.query]
    assert len(pages) == 3
    assert pages[1].query["page_token"]


async def test_check_connection_names_the_event_type(calendar: CalendlyConnector) -> None:
    assert isinstance(calendar, Checkable)
    assert isinstance(calendar, CalendarProvider)

    assert await calendar.check_connection() == "event type 30 Minute Appointment (30 min) of America/New_York"
    assert calendar.default_duration == timedelta(minutes=30)


async def test_without_an_event_type_setting_the_accounts_first_active_one_is_booked(
    base_url: str, vault: MemoryVault, state: CalendlyState
) -> None:
    calendar = connect(base_url, vault, event_type=None)

    appointment = await calendar.book(booking(10))

    assert events(state)[0]["event_type"] == EVENT_TYPE_URI
    assert appointment.start == monday(10)


# -- the scheduling-link fallback ---------------------------------------------------------------------


async def test_a_plan_without_the_scheduling_api_gets_a_single_use_booking_link_to_send(
    calendar: CalendlyConnector, state: CalendlyState
) -> None:
    state.booking_enabled = False

    with pytest.raises(SchedulingLinkError) as raised:
        await calendar.book(booking(10, key="k-1"))

    [link] = state.dump()["scheduling_links"]
    assert raised.value.booking_url == link["booking_url"]
    assert link["booking_url"] in str(raised.value)
    assert link["owner"] == EVENT_TYPE_URI
    assert raised.value.retryable is False
    assert raised.value.status == 403
    assert events(state) == []


# -- faults -------------------------------------------------------------------------------------------


async def test_a_rate_limit_answered_once_with_retry_after_is_waited_out(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox, base_url: str
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, path="/invitees"))
    started = time.monotonic()

    appointment = await calendar.book(booking(10, key="k-1"))

    assert time.monotonic() - started >= 1.0
    assert appointment.start == monday(10)
    assert len(events(state)) == 1
    sandbox.inject(Fault(kind="rate_limit", retry_after=2))
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{base_url}/users/me", headers={"Authorization": f"Bearer {SANDBOX_PERSONAL_ACCESS_TOKEN}"}
        )
    assert answer.status_code == 429
    assert (answer.headers["Retry-After"], answer.headers["X-RateLimit-Remaining"]) == ("2", "0")
    assert answer.headers["X-RateLimit-Limit"]
    assert answer.headers["X-RateLimit-Reset"] == "2"
    assert answer_problems(MAIN_SPEC, "/components/schemas/ErrorResponse", answer.json()) == []


async def test_a_calendly_that_keeps_failing_answers_a_retryable_upstream_error_within_the_deadline(
    calendar: CalendlyConnector, state: CalendlyState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503, times=0))
    started = time.monotonic()

    with pytest.raises(UpstreamError) as raised, deadline_scope(3.0):
        await calendar.book(booking(10, key="k-1"))

    assert time.monotonic() - started < 3.0
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(sandbox.provider_requests()) >= 2  # retried, not given up at once
    assert events(state) == []


# -- credentials --------------------------------------------------------------------------------------


async def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_kept(
    calendar: CalendlyConnector, vault: MemoryVault, state: CalendlyState, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    first_refresh = vault.secrets["refresh_token"]
    assert first_refresh != SANDBOX_REFRESH_TOKEN
    sandbox.inject(Fault(kind="expire_access_tokens"))

    await calendar.book(booking(10, key="k-1"))

    assert vault.secrets["refresh_token"] not in (first_refresh, SANDBOX_REFRESH_TOKEN)
    assert first_refresh not in state.refresh_tokens  # single-use, as Calendly's are
    assert len(requests_to(sandbox, "POST", "/oauth/token")) == 2
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_answers_not_connected_and_marks_the_vault_expired(
    calendar: CalendlyConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await calendar.check_connection()
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await calendar.book(booking(10, key="k-1"))
    assert vault.expired_reason is not None
    assert vault.secrets["refresh_token"] not in vault.expired_reason


async def test_a_personal_access_token_works_and_a_revoked_one_answers_not_connected(
    base_url: str, state: CalendlyState, sandbox: Sandbox
) -> None:
    vault = MemoryVault({"personal_access_token": SANDBOX_PERSONAL_ACCESS_TOKEN})
    calendar = connect(base_url, vault)
    await calendar.book(booking(10, key="k-1"))
    assert requests_to(sandbox, "POST", "/oauth/token") == []
    state.revoke_personal_access_tokens()

    with pytest.raises(ProviderNotConnectedError) as raised:
        await calendar.get(events(state)[0]["uri"].rsplit("/", 1)[-1])

    assert vault.expired_reason is not None
    assert SANDBOX_PERSONAL_ACCESS_TOKEN not in str(raised.value) + vault.expired_reason


async def test_a_connection_without_any_credentials_is_not_connected(base_url: str) -> None:
    with pytest.raises(ProviderNotConnectedError):
        await connect(base_url, MemoryVault({})).check_connection()


# -- the emulator on the wire -------------------------------------------------------------------------


async def test_the_emulator_answers_unauthenticated_calls_in_calendlys_format(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{base_url}/users/me")
        wrong = await client.get(f"{base_url}/users/me", headers={"Authorization": "Bearer nope"})

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json() == {"title": "Unauthenticated", "message": "The access token is invalid"}


async def test_the_emulator_refuses_past_starts_long_ranges_and_bad_pages_like_calendly(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_PERSONAL_ACCESS_TOKEN}"}
    times = f"{base_url}/event_type_available_times"
    async with httpx.AsyncClient(headers=headers) as client:
        past = await client.get(
            times,
            params={
                "event_type": EVENT_TYPE_URI,
                "start_time": "2026-03-03T00:00:00Z",
                "end_time": "2026-03-05T00:00:00Z",
            },
        )
        too_long = await client.get(
            times,
            params={
                "event_type": EVENT_TYPE_URI,
                "start_time": "2026-03-05T00:00:00Z",
                "end_time": "2026-04-06T00:00:00Z",
            },
        )
        no_user = await client.get(f"{base_url}/scheduled_events")
        bad_count = await client.get(f"{base_url}/scheduled_events", params={"user": USER_URI, "count": "101"})

    assert [r.status_code for r in (past, too_long, no_user, bad_count)] == [400, 400, 400, 400]
    assert past.json()["details"] == [{"parameter": "start_time", "message": "must be in the future"}]
    for answer in (past, too_long, no_user, bad_count):
        assert answer.json()["title"] == "Invalid Argument"
        assert answer_problems(MAIN_SPEC, "/components/schemas/ErrorResponse", answer.json()) == []


async def test_every_request_the_connector_sent_is_in_the_spec_and_every_answer_fits_its_schema(
    calendar: CalendlyConnector, sandbox: Sandbox, state: CalendlyState, base_url: str, vault: MemoryVault
) -> None:
    appointment = await calendar.book(booking(10, email="ada@example.com", key="k-1"))
    await calendar.reschedule(appointment.id, monday(11), monday(11, 30))
    await calendar.find(phone="+15551230001", email="ada@example.com", since=NOW)
    await calendar.cancel(appointment.id)
    await connect(base_url, vault, event_type=None).check_connection()
    state.booking_enabled = False
    with pytest.raises(SchedulingLinkError):
        await calendar.book(booking(12, key="k-2"))

    sent = sandbox.provider_requests()
    assert {(r.method, r.path.split("/")[1]) for r in sent} >= {
        ("GET", "users"),
        ("GET", "event_types"),
        ("GET", "event_type_available_times"),
        ("POST", "invitees"),
        ("GET", "scheduled_events"),
        ("POST", "scheduled_events"),
        ("POST", "scheduling_links"),
        ("POST", "oauth"),
    }
    assert [problem for request in sent for problem in check_request(request)] == []
    for token_request in requests_to(sandbox, "POST", "/oauth/token"):
        assert set(token_request.body) == {"grant_type", "refresh_token", "client_id", "client_secret"}

    # Every kind of answer the connector read, fetched again and checked against its schema.
    event_uuid = state.dump()["events"][0]["uri"].rsplit("/", 1)[-1]
    headers = {"Authorization": f"Bearer {vault.secrets['access_token']}"}
    reads = [
        ("/users/me", "/users/me", {}),
        ("/event_types", "/event_types", {"user": USER_URI, "count": "1"}),
        (f"/event_types/{EVENT_TYPE_URI.rsplit('/', 1)[-1]}", "/event_types/{uuid}", {}),
        (
            "/event_type_available_times",
            "/event_type_available_times",
            {"event_type": EVENT_TYPE_URI, "start_time": "2026-03-09T13:00:00Z", "end_time": "2026-03-10T00:00:00Z"},
        ),
        ("/scheduled_events", "/scheduled_events", {"user": USER_URI, "count": "1"}),
        (f"/scheduled_events/{event_uuid}", "/scheduled_events/{uuid}", {}),
        (f"/scheduled_events/{event_uuid}/invitees", "/scheduled_events/{uuid}/invitees", {}),
    ]
    async with httpx.AsyncClient(headers=headers) as client:
        for path, template, params in reads:
            answer = await client.get(f"{base_url}{path}", params=params)
            assert answer.status_code == 200, path
            assert answer_problems(MAIN_SPEC, response_pointer(template, "get", 200), answer.json()) == [], path
        state.booking_enabled = True
        created = await client.post(
            f"{base_url}/invitees",
            json={
                "event_type": EVENT_TYPE_URI,
                "start_time": "2026-03-09T17:00:00Z",
                "invitee": {"name": "Grace Hopper", "email": "grace@example.com", "timezone": "America/New_York"},
            },
        )
        cancelled = await client.post(
            f"{base_url}/scheduled_events/{created.json()['resource']['event'].rsplit('/', 1)[-1]}/cancellation",
            json={},
        )
        link = await client.post(
            f"{base_url}/scheduling_links",
            json={"max_event_count": 1, "owner": EVENT_TYPE_URI, "owner_type": "EventType"},
        )
    assert (created.status_code, cancelled.status_code, link.status_code) == (201, 201, 201)
    assert answer_problems(INVITEES_SPEC, response_pointer("/invitees", "post", 201), created.json()) == []
    pointer = response_pointer("/scheduled_events/{uuid}/cancellation", "post", 201)
    assert answer_problems(MAIN_SPEC, pointer, cancelled.json()) == []
    assert answer_problems(MAIN_SPEC, response_pointer("/scheduling_links", "post", 201), link.json()) == []


async def test_the_spec_check_catches_a_body_calendly_would_refuse() -> None:
    # The checks above can fail: a POST /invitees without its required fields is reported.
    broken = RecordedRequest(
        "POST", "/invitees", {}, {}, {"event_type": EVENT_TYPE_URI, "invitee": {"email": "a@b.co"}}
    )

    problems = check_request(broken)

    assert any("start_time" in p for p in problems)
    assert any("timezone" in p for p in problems)
    assert answer_problems(MAIN_SPEC, "/components/schemas/Invitee", {"uri": 3}) != []


# -- state across a restart -------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("calendly", SPEC.sandbox, tmp_path / "calendly.json") as running:
        yield running


async def test_after_a_restart_the_connector_sees_the_same_bookings_with_the_token_it_already_had(
    restart: Restart,
) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    appointment = await before.book(booking(10, key="k-1"))
    moved = await before.reschedule(appointment.id, monday(11), monday(11, 30))
    cast(CalendlyState, restart.before.state).add_busy(monday(15), monday(16))
    token = vault.secrets["access_token"]

    restart.restart()
    after = connect(restart.url_after, vault)

    assert (await after.get(appointment.id)).model_dump(exclude={"raw"}) == moved.model_dump(exclude={"raw"})
    assert vault.secrets["access_token"] == token  # the restarted emulator still honours it
    starts = await free_starts(after)
    assert monday(11) not in starts
    assert monday(15) not in starts
    assert monday(10) in starts
    dumped_before, dumped_after = await restart.dumps()
    assert dumped_before == dumped_after
    again = await after.book(booking(11, key="k-1"))
    assert again.id == appointment.id


def test_a_snapshot_the_emulator_did_not_write_is_refused() -> None:
    state = CalendlyState()
    good = state.snapshot()

    refused: list[Any] = [
        {**good, "version": 99},
        {**good, "events": {"x": {"uri": "elsewhere"}}},
        {**good, "extra": 1},
        [],
    ]
    for bad in refused:
        with pytest.raises((ValueError, KeyError, TypeError)):
            state.restore(bad)
    state.restore(json.loads(json.dumps(good)))
    assert state.snapshot() == good
