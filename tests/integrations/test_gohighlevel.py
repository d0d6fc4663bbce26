"""The GoHighLevel connector (CRM and calendar) against its emulator on a real 127.0.0.1 socket."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from integrations.capabilities.calendar import CalendarProvider
from integrations.capabilities.crm import CrmProvider
from integrations.capabilities.errors import (
    ConfigurationError,
    NotFoundError,
    ProviderNotConnectedError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import BookingRequest, ContactDraft
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import ContactSeeding, Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable
from integrations.common.vault import MemoryVault
from integrations.gohighlevel import SPEC, GoHighLevelConnector, GoHighLevelSettings
from integrations.gohighlevel.sandbox_state import (
    CALENDAR_ID,
    LOCATION_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_PRIVATE_TOKEN,
    SANDBOX_REFRESH_TOKEN,
    GoHighLevelState,
)
from integrations.gohighlevel.tokens import GrantDialect
from tests.integrations.sandbox_restarts import restartable
from tests.support.provider_kit import NOW, NY, TYPED_PHONES, emulator_fixtures, monday, requests_to
from tests.support.provider_kit import booking as kit_booking
from tests.support.provider_kit import connect as kit_connect
from tests.support.specs import OpenApi

CONTACTS = OpenApi("gohighlevel/apps/contacts.json")
CALENDARS = OpenApi("gohighlevel/apps/calendars.json")
OAUTH = OpenApi("gohighlevel/apps/oauth.json")
COMMON = OpenApi("gohighlevel/common/common-schemas.json")


def booking(hour: int, minute: int = 0, **changes: Any) -> BookingRequest:
    """Monday's booking, at an address (GoHighLevel keeps it on the contact)."""
    return kit_booking(hour, minute, **{"address": "12 Analytical Way, Springfield", **changes})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- fixtures ---------------------------------------------------------------------------------------


sandbox, served, base_url, vault = emulator_fixtures(SPEC)


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox) -> None:
    sandbox.reset()
    cast(GoHighLevelState, sandbox.state).clock = Clock(NOW)


@pytest.fixture
def state(sandbox: Sandbox) -> GoHighLevelState:
    return cast(GoHighLevelState, sandbox.state)


def connect(base_url: str, vault: MemoryVault, **overrides: Any) -> GoHighLevelConnector:
    connector = kit_connect(SPEC, base_url, vault, **overrides)
    assert isinstance(connector, GoHighLevelConnector)
    return connector


@pytest.fixture
def ghl(base_url: str, vault: MemoryVault) -> GoHighLevelConnector:
    return connect(base_url, vault)


async def day_starts(ghl: GoHighLevelConnector, minutes: int = 30) -> list[datetime]:
    slots = await ghl.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(minutes=minutes))
    return [s.start for s in slots]


# -- the spec and settings ----------------------------------------------------------------------------


def test_the_spec_describes_an_oauth_crm_and_calendar_provider() -> None:
    assert SPEC.name == "gohighlevel"
    assert SPEC.capabilities == frozenset({"crm", "calendar"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")


def test_the_connector_is_a_crm_and_a_calendar_that_can_check_itself(ghl: GoHighLevelConnector) -> None:
    assert isinstance(ghl, CrmProvider)
    assert isinstance(ghl, CalendarProvider)
    assert isinstance(ghl, Checkable)
    assert ghl.default_duration == timedelta(minutes=30)


def test_settings_need_a_location_refuse_unknown_fields_and_default_to_the_real_api() -> None:
    with pytest.raises(ValueError, match="location_id"):
        GoHighLevelSettings.model_validate({})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        GoHighLevelSettings.model_validate({"location_id": "x", "locationId": "x"})
    settings = GoHighLevelSettings.model_validate({"location_id": "loc"})
    assert settings.base_url == "https://services.leadconnectorhq.com"
    assert settings.zone("Europe/Paris") == "Europe/Paris"


async def test_check_connection_searches_contacts_and_reads_the_calendar(
    ghl: GoHighLevelConnector, sandbox: Sandbox
) -> None:
    line = await ghl.check_connection()

    assert line == f"gohighlevel location {LOCATION_ID}, calendar Appointments (America/New_York)"
    search, calendar = [r for r in sandbox.provider_requests() if r.path != "/oauth/token"]
    assert (search.path, search.headers["version"]) == ("/contacts/search", "2021-07-28")
    assert (calendar.path, calendar.headers["version"]) == (f"/calendars/{CALENDAR_ID}", "2021-04-15")


# -- contacts ---------------------------------------------------------------------------------------


async def test_a_created_contact_is_upserted_in_the_location_and_found_by_phone_and_email(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    created = await ghl.create_contact(ContactDraft(name="Ada King Lovelace", phone="+12125550142", email="Ada@X.org"))

    assert (created.name, created.phone, created.email) == ("Ada King Lovelace", "+12125550142", "ada@x.org")
    assert created.provider == "gohighlevel"
    (upsert,) = requests_to(sandbox, "POST", "/contacts/upsert")
    assert upsert.body == {
        "locationId": LOCATION_ID,
        "firstName": "Ada",
        "lastName": "King Lovelace",
        "phone": "+12125550142",
        "email": "ada@x.org",
    }
    assert [c.id for c in await ghl.find_contacts(phone="+12125550142")] == [created.id]
    assert [c.id for c in await ghl.find_contacts(email="ADA@x.org")] == [created.id]
    assert (await ghl.get_contact(created.id)).name == "Ada King Lovelace"
    assert len(state.dump()["contacts"]) == 1


@pytest.mark.parametrize("typed", TYPED_PHONES)
async def test_a_phone_typed_in_any_common_format_is_found_by_its_e164_number(
    ghl: GoHighLevelConnector, state: GoHighLevelState, typed: str
) -> None:
    assert isinstance(state, ContactSeeding)
    contact_id = state.seed_contact(name="Jane Doe", phone=typed)
    state.seed_contact(name="Someone Else", phone="(415) 555-0124")

    found = await ghl.find_contacts(phone="+14155550123")

    assert [c.id for c in found] == [contact_id]
    assert found[0].phone == "+14155550123"
    assert state.contacts[contact_id]["phone"] == typed  # the emulator keeps what was typed


async def test_a_number_one_digit_away_or_abroad_is_not_found(
    ghl: GoHighLevelConnector, state: GoHighLevelState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    state.seed_contact(name="Jack Doe", phone="020 7455 5012")

    assert await ghl.find_contacts(phone="+14155550124") == []
    assert await ghl.find_contacts(phone="+442074555013") == []
    assert await ghl.find_contacts(phone="+12074555012") == []


async def test_the_emulators_search_compares_stored_phones_literally_as_a_filter_says(
    base_url: str, vault: MemoryVault, ghl: GoHighLevelConnector, state: GoHighLevelState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    await ghl.check_connection()  # leaves a fresh access token in the vault
    token = (await vault.load())["access_token"]
    body = {"locationId": LOCATION_ID, "pageLimit": 10, "filters": [{"field": "phone", "operator": "eq"}]}

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"}) as client:
        answers = [
            (
                await client.post(
                    f"{base_url}/contacts/search", json={**body, "filters": [{**body["filters"][0], "value": value}]}
                )
            ).json()["total"]
            for value in ("+14155550123", "(415) 555-0123")
        ]

    assert answers == [0, 1]


async def test_creating_a_contact_for_a_known_phone_fills_blanks_and_overwrites_nothing(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    contact_id = state.seed_contact(name="Jane", phone="(415) 555-0123")

    created = await ghl.create_contact(ContactDraft(name="Jane Doe", phone="+14155550123", email="jane@example.com"))

    assert created.id == contact_id
    assert (created.name, created.email) == ("Jane", "jane@example.com")
    assert requests_to(sandbox, "POST", "/contacts/upsert") == []
    (put,) = requests_to(sandbox, "PUT", f"/contacts/{contact_id}")
    assert put.body == {"email": "jane@example.com"}
    assert len(state.contacts) == 1


async def test_the_same_phone_or_email_never_makes_a_second_contact(
    ghl: GoHighLevelConnector, state: GoHighLevelState
) -> None:
    first = await ghl.create_contact(ContactDraft(name="Jane", phone="+12125550142"))
    again = await ghl.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142", email="jane@example.com"))
    by_email = await ghl.create_contact(ContactDraft(email="JANE@example.com"))

    assert again.id == first.id == by_email.id
    assert (await ghl.get_contact(first.id)).name == "Jane"
    assert len(state.contacts) == 1


async def test_an_upsert_retried_after_a_lost_answer_lands_on_the_same_contact(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    # The first upsert is answered 503: the retry's upsert is deduplicated by GoHighLevel itself.
    sandbox.inject(Fault(kind="server_error", status=503, path="/contacts/upsert", times=1))

    created = await ghl.create_contact(ContactDraft(name="Jane", phone="+12125550142"))

    assert len(requests_to(sandbox, "POST", "/contacts/upsert")) == 2
    assert [c["id"] for c in state.dump()["contacts"]] == [created.id]


async def test_update_changes_only_the_given_fields_and_an_unknown_contact_is_not_found(
    ghl: GoHighLevelConnector,
) -> None:
    contact = await ghl.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142"))

    updated = await ghl.update_contact(contact.id, ContactDraft(email="jane@example.com"))

    assert (updated.name, updated.phone, updated.email) == ("Jane Doe", "+12125550142", "jane@example.com")
    with pytest.raises(NotFoundError):
        await ghl.update_contact("sbxUnknownContact000", ContactDraft(email="x@example.com"))
    with pytest.raises(NotFoundError):
        await ghl.get_contact("sbxUnknownContact000")


async def test_a_contact_of_another_location_is_not_found(ghl: GoHighLevelConnector, state: GoHighLevelState) -> None:
    contact_id = state.seed_contact(name="Elsewhere", phone="+12125550142")
    state.contacts[contact_id]["locationId"] = "anotherLocation00000"

    with pytest.raises(NotFoundError):
        await ghl.get_contact(contact_id)
    assert await ghl.find_contacts(phone="+12125550142") == []


async def test_a_note_is_attached_and_a_retry_after_a_crash_returns_it_instead_of_writing_again(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    contact = await ghl.create_contact(ContactDraft(name="Jane", phone="+12125550142"))
    note = await ghl.add_note(contact.id, "Asked about whitening.", idempotency_key="call-1:add_note")

    again = await ghl.add_note(
        contact.id, "Asked about whitening.", idempotency_key="call-1:add_note", earlier_attempt_at=NOW
    )

    assert (note.contact_id, note.body) == (contact.id, "Asked about whitening.")
    assert again.id == note.id
    assert len(state.dump()["notes"]) == 1
    assert requests_to(sandbox, "POST", f"/contacts/{contact.id}/notes")[0].body == {"body": "Asked about whitening."}
    with pytest.raises(NotFoundError):
        await ghl.add_note("sbxUnknownContact000", "hello")


async def test_a_note_whose_first_attempt_failed_is_looked_for_before_the_retry_writes(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    contact = await ghl.create_contact(ContactDraft(name="Jane", phone="+12125550142"))
    sandbox.inject(Fault(kind="server_error", status=502, method="POST", path="/notes", times=1))

    await ghl.add_note(contact.id, "Call back after 5pm.")

    assert len(state.dump()["notes"]) == 1
    assert len(requests_to(sandbox, "GET", f"/contacts/{contact.id}/notes")) == 1


# -- calendar ---------------------------------------------------------------------------------------


async def test_free_slots_are_the_calendars_slots_in_the_business_zone(
    ghl: GoHighLevelConnector, sandbox: Sandbox
) -> None:
    starts = await day_starts(ghl)

    assert len(starts) == 16
    assert (starts[0], starts[-1]) == (monday(9), monday(16, 30))
    assert all(s.utcoffset() == timedelta(hours=-4) for s in starts)
    (asked,) = requests_to(sandbox, "GET", f"/calendars/{CALENDAR_ID}/free-slots")
    assert asked.query["timezone"] == ["America/New_York"]
    assert asked.headers["version"] == "2021-04-15"
    assert int(asked.query["startDate"][0]) == int(monday(0).timestamp() * 1000)


async def test_longer_slots_chain_the_calendars_free_slots(ghl: GoHighLevelConnector) -> None:
    await ghl.book(booking(11))

    slots = await ghl.free_slots(monday(9), monday(13), timedelta(minutes=60))

    assert [(s.start, s.end) for s in slots] == [
        (monday(9), monday(10)),
        (monday(9, 30), monday(10, 30)),
        (monday(10), monday(11)),
        (monday(11, 30), monday(12, 30)),
        (monday(12), monday(13)),
        (monday(12, 30), monday(13, 30)),  # starts before 13:00, the window's end
    ]


async def test_the_past_and_weekends_have_no_slots(ghl: GoHighLevelConnector, sandbox: Sandbox) -> None:
    saturday = datetime(2026, 3, 7, tzinfo=NY)

    assert await ghl.free_slots(saturday, saturday + timedelta(days=2), timedelta(minutes=30)) == []
    assert await ghl.free_slots(NOW - timedelta(days=2), NOW - timedelta(days=1), timedelta(minutes=30)) == []
    assert len(requests_to(sandbox, "GET", f"/calendars/{CALENDAR_ID}/free-slots")) == 1


async def test_a_booking_finds_or_creates_the_contact_and_books_it_on_the_calendar(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    booked = await ghl.book(booking(10, email="ada@example.com", key="call-1:book", notes="Loose filling"))

    assert (booked.start, booked.end, booked.status) == (monday(10), monday(10, 30), "booked")
    assert (booked.attendee_name, booked.attendee_phone, booked.attendee_email) == (
        "Ada Lovelace",
        "+12125550142",
        "ada@example.com",
    )
    assert booked.notes == "Loose filling"
    (contact,) = state.dump()["contacts"]
    (created,) = requests_to(sandbox, "POST", "/calendars/events/appointments")
    assert created.body == {
        "calendarId": CALENDAR_ID,
        "locationId": LOCATION_ID,
        "contactId": contact["id"],
        "startTime": "2026-03-09T10:00:00-04:00",
        "endTime": "2026-03-09T10:30:00-04:00",
        "title": "Ada Lovelace (booked by phone)",
        "appointmentStatus": "confirmed",
        "description": "Loose filling",
        "address": "12 Analytical Way, Springfield",
    }
    assert monday(10) not in await day_starts(ghl)
    assert (await ghl.get(booked.id)).attendee_phone == "+12125550142"


async def test_a_retried_booking_returns_the_first_appointment_and_writes_nothing(
    ghl: GoHighLevelConnector, state: GoHighLevelState
) -> None:
    first = await ghl.book(booking(10, key="k-1"))
    again = await ghl.book(booking(10, key="k-1"))
    same_caller = await ghl.book(booking(10, key="k-2"))

    assert again.id == first.id == same_caller.id
    assert len(state.dump()["appointments"]) == 1
    assert len(state.dump()["contacts"]) == 1


async def test_a_booking_whose_create_failed_looks_before_it_retries(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503, method="POST", path="/events/appointments", times=1))

    booked = await ghl.book(booking(10, key="k-1"))

    assert [a["id"] for a in state.dump()["appointments"]] == [booked.id]
    assert len(requests_to(sandbox, "GET", "/calendars/events")) == 2  # before writing, and before the retry


async def test_taken_closed_and_past_times_cannot_be_booked(ghl: GoHighLevelConnector, state: GoHighLevelState) -> None:
    await ghl.book(booking(10))

    with pytest.raises(SlotUnavailableError):
        await ghl.book(booking(10, phone="+12125550199"))
    with pytest.raises(SlotUnavailableError):
        await ghl.book(booking(20))
    with pytest.raises(SlotUnavailableError):
        await ghl.book(BookingRequest(start=NOW - timedelta(hours=1), end=NOW, attendee_name="Late"))
    assert len(state.dump()["appointments"]) == 1


async def test_rescheduling_moves_the_appointment_even_over_its_own_time(ghl: GoHighLevelConnector) -> None:
    appointment = await ghl.book(booking(10, minutes=60))

    moved = await ghl.reschedule(appointment.id, monday(10, 30), monday(11, 30))

    assert (moved.id, moved.start, moved.end) == (appointment.id, monday(10, 30), monday(11, 30))
    starts = await day_starts(ghl)
    assert monday(10) in starts
    assert monday(11) not in starts


async def test_rescheduling_onto_a_taken_time_or_an_unknown_appointment_is_refused(
    ghl: GoHighLevelConnector,
) -> None:
    appointment = await ghl.book(booking(10))
    await ghl.book(booking(14, phone="+12125550199"))

    with pytest.raises(SlotUnavailableError):
        await ghl.reschedule(appointment.id, monday(14), monday(14, 30))
    with pytest.raises(NotFoundError):
        await ghl.reschedule("sbxUnknownEvent00000", monday(15), monday(15, 30))


async def test_cancelling_frees_the_slot_and_cancelling_again_is_harmless(
    ghl: GoHighLevelConnector, sandbox: Sandbox
) -> None:
    appointment = await ghl.book(booking(10))

    cancelled = await ghl.cancel(appointment.id)
    again = await ghl.cancel(appointment.id)

    assert (cancelled.status, again.status) == ("cancelled", "cancelled")
    assert len(requests_to(sandbox, "PUT", f"/calendars/events/appointments/{appointment.id}")) == 1
    assert monday(10) in await day_starts(ghl)
    assert await ghl.find(phone="+12125550142", email=None, since=NOW) == []
    with pytest.raises(NotFoundError):
        await ghl.reschedule(appointment.id, monday(11), monday(11, 30))


async def test_find_matches_the_callers_contact_by_phone_or_email(ghl: GoHighLevelConnector) -> None:
    mine = await ghl.book(booking(10, email="ada@example.com"))
    await ghl.book(booking(11, phone="+12125550199"))

    assert [a.id for a in await ghl.find(phone=None, email="ada@example.com", since=NOW)] == [mine.id]
    assert [a.id for a in await ghl.find(phone="+12125550142", email=None, since=NOW)] == [mine.id]
    assert await ghl.find(phone="+12125550142", email=None, since=monday(11)) == []


async def test_an_unknown_appointment_is_not_found(ghl: GoHighLevelConnector) -> None:
    with pytest.raises(NotFoundError):
        await ghl.get("does-not-exist-123")
    with pytest.raises(NotFoundError):
        await ghl.cancel("does-not-exist-123")


async def test_a_crm_only_connection_without_a_calendar_names_the_setting(base_url: str, vault: MemoryVault) -> None:
    crm_only = connect(base_url, vault, calendar_id=None)

    with pytest.raises(ConfigurationError, match="calendar_id"):
        await crm_only.free_slots(monday(9), monday(10), timedelta(minutes=30))
    assert (await crm_only.check_connection()) == f"gohighlevel location {LOCATION_ID}"


# -- faults -----------------------------------------------------------------------------------------


async def test_a_rate_limit_with_retry_after_is_waited_out(
    ghl: GoHighLevelConnector, state: GoHighLevelState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=0, path="/contacts/search", times=1))

    created = await ghl.create_contact(ContactDraft(name="Jane", phone="+12125550142"))

    assert len(requests_to(sandbox, "POST", "/contacts/search")) == 2
    assert [c["id"] for c in state.dump()["contacts"]] == [created.id]


async def test_a_vendor_that_keeps_failing_raises_a_retryable_upstream_error_within_the_deadline(
    ghl: GoHighLevelConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", status=503, times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await ghl.find_contacts(phone="+12125550142")

    assert raised.value.retryable
    assert raised.value.status == 503
    assert time.monotonic() - started < 3


def test_an_injected_rate_limit_is_answered_in_ghls_shape_with_retry_after(sandbox: Sandbox, base_url: str) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))

    answer = httpx.post(f"{base_url}/contacts/search", json={})

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["x-ratelimit-max"] == "100"
    assert answer.json()["statusCode"] == 429


# -- auth -------------------------------------------------------------------------------------------


async def test_the_first_request_refreshes_the_location_token_and_saves_the_rotated_refresh_token(
    ghl: GoHighLevelConnector, vault: MemoryVault, sandbox: Sandbox, base_url: str
) -> None:
    await ghl.find_contacts(email="nobody@example.com")

    (refresh,) = requests_to(sandbox, "POST", "/oauth/token")
    assert refresh.body == {
        "grant_type": "refresh_token",
        "refresh_token": SANDBOX_REFRESH_TOKEN,
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "user_type": "Location",
    }
    rotated = vault.secrets["refresh_token"]
    assert rotated != SANDBOX_REFRESH_TOKEN
    form = {"grant_type": "refresh_token", "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
    async with httpx.AsyncClient() as client:
        used = await client.post(f"{base_url}/oauth/token", data={**form, "refresh_token": rotated})
        reused = await client.post(f"{base_url}/oauth/token", data={**form, "refresh_token": rotated})
    assert used.status_code == 200
    assert reused.status_code == 401  # single-use
    assert reused.json()["error"] == "invalid_grant"


async def test_an_expired_access_token_is_refreshed_without_the_caller_noticing(
    ghl: GoHighLevelConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await ghl.find_contacts(email="nobody@example.com")
    first = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    await ghl.find_contacts(email="nobody@example.com")

    assert vault.secrets["access_token"] != first
    assert len(requests_to(sandbox, "POST", "/oauth/token")) == 2
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    ghl: GoHighLevelConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await ghl.find_contacts(email="nobody@example.com")
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await ghl.find_contacts(email="nobody@example.com")

    assert vault.expired_reason is not None
    assert "refresh token" in vault.expired_reason


async def test_a_refusal_of_the_token_endpoint_in_nestjs_shape_reads_as_invalid_grant() -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        if b"refresh_token=good" in request.content:
            return httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "userId": "u"})
        return httpx.Response(401, json={"statusCode": 401, "message": "Invalid token", "error": "Unauthorized"})

    dialect = GrantDialect(lambda: httpx.MockTransport(vendor))
    async with httpx.AsyncClient(transport=dialect) as client:
        refused = await client.post("https://services.leadconnectorhq.com/oauth/token", data={"refresh_token": "x"})
        granted = await client.post("https://services.leadconnectorhq.com/oauth/token", data={"refresh_token": "good"})

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_grant")
    assert granted.json() == {"access_token": "a", "refresh_token": "r", "userId": "u"}


async def test_a_private_integration_token_is_used_as_it_is_and_a_refused_one_expires_the_connection(
    base_url: str, sandbox: Sandbox
) -> None:
    private = MemoryVault({"access_token": SANDBOX_PRIVATE_TOKEN})
    assert await connect(base_url, private).find_contacts(email="nobody@example.com") == []
    assert requests_to(sandbox, "POST", "/oauth/token") == []

    revoked = MemoryVault({"access_token": "pit-revoked"})
    with pytest.raises(ProviderNotConnectedError):
        await connect(base_url, revoked).find_contacts(email="nobody@example.com")
    assert revoked.expired_reason is not None


def test_the_emulator_answers_401_403_and_a_missing_version_as_ghl_does(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_PRIVATE_TOKEN}", "Version": "2021-07-28"}
    body = {"locationId": LOCATION_ID, "pageLimit": 1}

    unauthorized = httpx.post(f"{base_url}/contacts/search", json=body)
    other_location = httpx.post(f"{base_url}/contacts/search", json={**body, "locationId": "other"}, headers=headers)
    no_version = httpx.post(
        f"{base_url}/contacts/search", json=body, headers={"Authorization": headers["Authorization"]}
    )
    too_big = httpx.post(f"{base_url}/contacts/search", json={**body, "pageLimit": 501}, headers=headers)

    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "statusCode": 401,
        "message": "Invalid token: access token is invalid",
        "error": "Unauthorized",
    }
    assert other_location.status_code == 403
    assert no_version.status_code == 400
    assert too_big.status_code == 422
    for answer, schema in (
        (unauthorized, "UnauthorizedDTO"),
        (no_version, "BadRequestDTO"),
        (too_big, "UnprocessableDTO"),
    ):
        assert COMMON.validate(schema, answer.json()) == []


# -- the official spec ----------------------------------------------------------------------------------


def _spec_for(path: str) -> OpenApi:
    if path.startswith("/contacts"):
        return CONTACTS
    if path.startswith("/calendars"):
        return CALENDARS
    return OAUTH


def _version_enum(spec: OpenApi, request: RecordedRequest) -> list[str]:
    found = spec.operation(request.method, request.path)
    assert found is not None
    parameters = [spec.resolve(p) for p in found[1].get("parameters", [])]
    return next((p["schema"]["enum"] for p in parameters if p.get("name") == "Version"), [])


async def test_every_request_the_connector_sends_is_in_the_official_spec(
    ghl: GoHighLevelConnector, sandbox: Sandbox, state: GoHighLevelState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    await ghl.check_connection()
    contact = await ghl.create_contact(ContactDraft(name="Ada", phone="+12125550142"))
    await ghl.create_contact(ContactDraft(name="Jane Doe", phone="+14155550123", email="jane@example.com"))
    await ghl.update_contact(contact.id, ContactDraft(email="ada@example.com"))
    await ghl.add_note(contact.id, "note", earlier_attempt_at=NOW)
    appointment = await ghl.book(booking(10, key="k"))
    await ghl.reschedule(appointment.id, monday(11), monday(11, 30))
    await ghl.find(phone="+12125550142", email=None, since=NOW)
    await ghl.cancel(appointment.id)

    recorded = sandbox.provider_requests()
    assert {r.path.split("/")[1] for r in recorded} == {"oauth", "contacts", "calendars"}
    for request in recorded:
        spec = _spec_for(request.path)
        assert spec.check_request(request) == [], request.as_json()
        if request.path != "/oauth/token":
            assert request.headers["version"] in _version_enum(spec, request), request.path


# CalendarEventDTO types its times as `object` while its examples (and the API) give ISO strings:
# a bug of the published spec, not of the emulator.
_SPEC_BUG_FIELDS = ("startTime", "endTime", "dateAdded", "dateUpdated")


def _real_problems(problems: list[str]) -> list[str]:
    return [
        p
        for p in problems
        if not (p.endswith("is not of type 'object'") and p.split(":")[0].split("/")[-1] in _SPEC_BUG_FIELDS)
    ]


async def test_the_emulators_answers_match_the_official_schemas(
    ghl: GoHighLevelConnector, vault: MemoryVault, base_url: str
) -> None:
    appointment = await ghl.book(booking(10, email="ada@example.com", notes="n"))
    contact_id = str(appointment.raw["contactId"])
    await ghl.add_note(contact_id, "A note.")
    token = (await vault.load())["access_token"]
    contacts = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
    calendars = {"Authorization": f"Bearer {token}", "Version": "2021-04-15"}
    window = {"startTime": str(int(monday(0).timestamp() * 1000)), "endTime": str(int(monday(23).timestamp() * 1000))}
    upsert = {"locationId": LOCATION_ID, "email": "ada@example.com", "firstName": "Ada"}

    async with httpx.AsyncClient(base_url=base_url) as client:
        checks = [
            (
                CONTACTS,
                "ContactsByIdSuccessfulResponseDto",
                await client.get(f"/contacts/{contact_id}", headers=contacts),
            ),
            (
                CONTACTS,
                "UpsertContactsSuccessfulResponseDto",
                await client.post("/contacts/upsert", json=upsert, headers=contacts),
            ),
            (
                CONTACTS,
                "UpdateContactsSuccessfulResponseDto",
                await client.put(f"/contacts/{contact_id}", json={"city": "X"}, headers=contacts),
            ),
            (
                CONTACTS,
                "GetNotesListSuccessfulResponseDto",
                await client.get(f"/contacts/{contact_id}/notes", headers=contacts),
            ),
            (
                CONTACTS,
                "GetCreateUpdateNoteSuccessfulResponseDto",
                await client.post(f"/contacts/{contact_id}/notes", json={"body": "b"}, headers=contacts),
            ),
            (
                CONTACTS,
                "GetEventsSuccessfulResponseDto",
                await client.get(f"/contacts/{contact_id}/appointments", headers=contacts),
            ),
            (
                CONTACTS,
                "CreateContactsSuccessfulResponseDto",
                await client.post("/contacts/", json={"locationId": LOCATION_ID, "firstName": "Bo"}, headers=contacts),
            ),
            (
                CALENDARS,
                "GetCalendarEventSuccessfulResponseDTO",
                await client.get(f"/calendars/events/appointments/{appointment.id}", headers=calendars),
            ),
            (
                CALENDARS,
                "AppointmentSchemaResponse",
                await client.put(
                    f"/calendars/events/appointments/{appointment.id}", json={"title": "T"}, headers=calendars
                ),
            ),
            (
                CALENDARS,
                "GetCalendarEventsSuccessfulResponseDTO",
                await client.get(
                    "/calendars/events",
                    params={"locationId": LOCATION_ID, "calendarId": CALENDAR_ID, **window},
                    headers=calendars,
                ),
            ),
            (
                CALENDARS,
                "CalendarByIdSuccessfulResponseDTO",
                await client.get(f"/calendars/{CALENDAR_ID}", headers=calendars),
            ),
            (
                OAUTH,
                "GetAccessCodeSuccessfulResponseDto",
                await client.post(
                    "/oauth/token",
                    data={
                        "grant_type": "refresh_token",
                        "client_id": SANDBOX_CLIENT_ID,
                        "client_secret": SANDBOX_CLIENT_SECRET,
                        "refresh_token": SANDBOX_REFRESH_TOKEN,
                        "user_type": "Location",
                    },
                ),
            ),
            (COMMON, "BadRequestDTO", await client.get("/contacts/sbxUnknownContact000", headers=contacts)),
        ]
        slots = await client.get(
            f"/calendars/{CALENDAR_ID}/free-slots",
            params={"startDate": window["startTime"], "endDate": window["endTime"], "timezone": "America/New_York"},
            headers=calendars,
        )

    for spec, schema, answer in checks:
        assert _real_problems(spec.validate(schema, answer.json())) == [], (schema, answer.json())
    days = {k: v for k, v in slots.json().items() if k != "traceId"}
    assert list(days) == ["2026-03-09"]
    for day in days.values():
        assert CALENDARS.validate("SlotsSchema", day) == []


# -- the emulator's state -----------------------------------------------------------------------------


def test_a_snapshot_shares_nothing_and_a_foreign_one_is_refused(state: GoHighLevelState) -> None:
    contact_id = state.seed_contact(name="Jane", phone="415.555.0123", email="jane@example.com")
    snapshot = state.snapshot()
    snapshot["contacts"][contact_id]["phone"] = "changed"

    assert state.contacts[contact_id]["phone"] == "415.555.0123"
    with pytest.raises(ValueError, match="not a gohighlevel sandbox snapshot"):
        state.restore({"version": 99})
    with pytest.raises((KeyError, TypeError)):
        state.restore({"version": 1, "contacts": []})


async def test_a_restarted_emulator_keeps_contacts_notes_appointments_and_tokens(tmp_path: Path) -> None:
    with restartable("gohighlevel", SPEC.sandbox, tmp_path / "gohighlevel.json") as world:
        cast(GoHighLevelState, world.before.state).clock = Clock(NOW)
        vault = MemoryVault(SPEC.sandbox_connection(world.url_before).secrets)
        before = connect(world.url_before, vault)
        appointment = await before.book(booking(10, email="ada@example.com"))
        contact_id = str(appointment.raw["contactId"])
        await before.add_note(contact_id, "Prefers mornings.")

        world.restart()
        cast(GoHighLevelState, world.after.state).clock = Clock(NOW)
        after = connect(world.url_after, vault)

        assert (await after.get(appointment.id)).start == monday(10)
        assert [c.id for c in await after.find_contacts(phone="+12125550142")] == [contact_id]
        state_before, state_after = await world.dumps()
        assert state_before == state_after
        assert world.after.provider_requests()[0].path != "/oauth/token"  # the saved token still works
        again = await after.book(booking(11, phone="+12125550199"))
        assert again.id != appointment.id
