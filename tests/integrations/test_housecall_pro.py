"""The Housecall Pro connector (CRM and calendar) against its emulator on a real 127.0.0.1 socket."""

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

from integrations.capabilities.calendar import CalendarProvider
from integrations.capabilities.crm import CrmProvider
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.models import BookingRequest, ContactDraft
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import ContactSeeding, Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable
from integrations.common.vault import MemoryVault
from integrations.housecall_pro import SPEC, HousecallProConnector, HousecallProSettings
from integrations.housecall_pro.connector import PLACEHOLDER_STREET
from integrations.housecall_pro.errors import HousecallError, translate
from integrations.housecall_pro.sandbox_state import SANDBOX_API_KEY, HousecallState
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, TYPED_PHONES, booking, emulator_fixtures, monday
from tests.support.provider_kit import connect as kit_connect
from tests.support.specs import OpenApi

SPEC_FILE = "housecall_pro/housecall.v1.json"
CALLER = "+14155550123"


# -- fixtures ---------------------------------------------------------------------------------------


sandbox, served, base_url, vault = emulator_fixtures(SPEC)


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox: Sandbox) -> None:
    sandbox.reset()
    cast(HousecallState, sandbox.state).clock = lambda: NOW


@pytest.fixture
def state(sandbox: Sandbox) -> HousecallState:
    return cast(HousecallState, sandbox.state)


def connect(base_url: str, vault: MemoryVault, **overrides: Any) -> HousecallProConnector:
    connector = kit_connect(SPEC, base_url, vault, **overrides)
    assert isinstance(connector, HousecallProConnector)
    return connector


@pytest.fixture
def hcp(base_url: str, vault: MemoryVault) -> HousecallProConnector:
    return connect(base_url, vault)


@pytest.fixture
def estimates(base_url: str, vault: MemoryVault) -> HousecallProConnector:
    return connect(base_url, vault, book_as="estimate")


def requests_to(sandbox: Sandbox, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
    return [
        r
        for r in sandbox.provider_requests()
        if (method is None or r.method == method) and (path is None or r.path == path)
    ]


async def day_starts(calendar: HousecallProConnector) -> list[datetime]:
    return [s.start for s in await calendar.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(minutes=30))]


# -- the spec and settings ----------------------------------------------------------------------------


def test_the_spec_describes_an_api_key_crm_and_calendar_provider() -> None:
    assert SPEC.name == "housecall_pro"
    assert SPEC.capabilities == frozenset({"crm", "calendar"})
    assert SPEC.auth == "api_key"
    assert SPEC.required_secrets == ("api_key",)


def test_the_connector_is_a_crm_and_a_calendar_that_can_check_itself(hcp: HousecallProConnector) -> None:
    assert isinstance(hcp, CrmProvider)
    assert isinstance(hcp, CalendarProvider)
    assert isinstance(hcp, Checkable)
    assert hcp.default_duration == timedelta(minutes=60)


def test_settings_reject_unknown_fields_and_default_to_the_real_vendor_and_jobs() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        HousecallProSettings.model_validate({"bookAs": "job"})
    with pytest.raises(ValueError, match="'job' or 'estimate'"):
        HousecallProSettings.model_validate({"book_as": "lead"})
    settings = HousecallProSettings()
    assert settings.base_url == "https://api.housecallpro.com"
    assert settings.book_as == "job"
    assert settings.zone("Europe/Paris") == "Europe/Paris"


def test_the_emulator_state_can_seed_a_typed_contact(state: HousecallState) -> None:
    assert isinstance(state, ContactSeeding)
    customer_id = state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    assert state.customers[customer_id]["mobile_number"] == "(415) 555-0123"


async def test_check_connection_reads_the_company_with_the_token_header(
    hcp: HousecallProConnector, sandbox: Sandbox
) -> None:
    assert await hcp.check_connection() == "housecall pro company Sandbox Plumbing & Heating (America/New_York)"
    (request,) = sandbox.provider_requests()
    assert request.path == "/company"
    assert request.headers["authorization"] == f"Token {SANDBOX_API_KEY}"


async def test_a_multi_location_company_id_is_sent_as_x_company_id(
    base_url: str, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await connect(base_url, vault, company_id="loc_42").check_connection()
    assert sandbox.provider_requests()[0].headers["x-company-id"] == "loc_42"


# -- CRM ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", TYPED_PHONES)
async def test_a_phone_typed_any_way_is_found_by_its_e164_number_and_shown_as_e164(
    hcp: HousecallProConnector, state: HousecallState, typed: str
) -> None:
    customer_id = state.seed_contact(name="Jane Doe", phone=typed)
    state.seed_contact(name="Near Miss", phone="(415) 555-0124")

    found = await hcp.find_contacts(phone=CALLER)

    assert [c.id for c in found] == [customer_id]
    assert found[0].phone == CALLER
    assert found[0].name == "Jane Doe"


async def test_the_emulator_search_matches_stored_text_only_so_a_bare_e164_query_misses_typed_phones(
    base_url: str, state: HousecallState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    async with httpx.AsyncClient() as client:
        answer = await client.get(
            f"{base_url}/customers", params={"q": CALLER}, headers={"Authorization": f"Token {SANDBOX_API_KEY}"}
        )
    assert answer.json()["customers"] == []


async def test_a_number_one_digit_away_or_a_foreign_number_sharing_digits_is_not_found(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")

    assert await hcp.find_contacts(phone="+14155550124") == []
    assert await hcp.find_contacts(phone="+442074555012") == []
    assert await hcp.find_contacts(phone="+445550123") == []


async def test_a_home_or_work_number_of_a_candidate_counts_as_the_callers_phone(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    customer_id = state.seed_contact(name="Jane Doe", phone="(415) 555-0199", email="jane@example.com")
    state.customers[customer_id]["work_number"] = "415 555 0123"

    found = await hcp.find_contacts(phone=CALLER, email="jane@example.com")

    assert [c.id for c in found] == [customer_id]
    assert found[0].phone == CALLER


async def test_find_by_email_ignores_case_and_other_emails_containing_it(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    mine = state.seed_contact(name="Jane Doe", email="Jane@Example.com")
    state.seed_contact(name="Not Jane", email="mary.jane@example.com.au")

    found = await hcp.find_contacts(email="jane@example.com")

    assert [c.id for c in found] == [mine]
    assert found[0].email == "jane@example.com"


async def test_a_search_follows_housecall_pros_pages(
    hcp: HousecallProConnector, state: HousecallState, sandbox: Sandbox
) -> None:
    ids = [state.seed_contact(name=f"Caller {n}", phone="415-555-0123") for n in range(105)]

    found = await hcp.find_contacts(phone=CALLER)

    assert sorted(c.id for c in found) == sorted(ids)
    pages = [r.query["page"] for r in requests_to(sandbox, "GET", "/customers") if r.query["q"] == ["555-0123"]]
    assert pages == [["1"], ["2"]]


async def test_create_makes_one_customer_with_the_phone_as_mobile_and_the_name_split(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    created = await hcp.create_contact(ContactDraft(name="Jane van Doe", phone="+12125550142", email="Jane@X.com"))

    (customer,) = state.customers.values()
    assert (customer["first_name"], customer["last_name"]) == ("Jane", "van Doe")
    assert customer["mobile_number"] == "+12125550142"
    assert customer["email"] == "jane@x.com"
    assert created.id == customer["id"]
    assert (created.name, created.phone, created.email) == ("Jane van Doe", "+12125550142", "jane@x.com")
    assert (await hcp.get_contact(created.id)).id == created.id


async def test_create_for_a_known_phone_or_email_fills_blanks_and_never_overwrites(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    typed = state.seed_contact(name="Jane", phone="(212) 555-0142")

    by_phone = await hcp.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142", email="jane@x.com"))
    by_email = await hcp.create_contact(ContactDraft(name="Someone", email="JANE@x.com"))

    assert by_phone.id == by_email.id == typed
    assert len(state.customers) == 1
    assert state.customers[typed]["email"] == "jane@x.com"
    assert state.customers[typed]["first_name"] == "Jane"
    assert state.customers[typed]["mobile_number"] == "(212) 555-0142"


async def test_concurrent_creates_for_one_phone_make_one_customer(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    results = await asyncio.gather(*[hcp.create_contact(ContactDraft(name="Jane", phone=CALLER)) for _ in range(4)])

    assert len({c.id for c in results}) == 1
    assert len(state.customers) == 1


async def test_a_create_answered_503_after_it_landed_is_found_on_the_retry_not_made_twice(
    hcp: HousecallProConnector, state: HousecallState, sandbox: Sandbox
) -> None:
    # The first POST reaches the emulator and is faulted before it runs; the retry looks first.
    sandbox.inject(Fault(kind="server_error", path="/customers", method="POST", times=1))

    created = await hcp.create_contact(ContactDraft(name="Jane", phone=CALLER))

    assert len(state.customers) == 1
    assert created.id in state.customers
    assert len(requests_to(sandbox, "POST", "/customers")) == 2


async def test_update_changes_only_the_given_fields(hcp: HousecallProConnector, state: HousecallState) -> None:
    contact = await hcp.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142"))

    updated = await hcp.update_contact(contact.id, ContactDraft(email="jane@example.com"))
    renamed = await hcp.update_contact(contact.id, ContactDraft(name="Janet Doe", phone="+12125550142"))

    assert (updated.email, updated.name, updated.phone) == ("jane@example.com", "Jane Doe", "+12125550142")
    assert renamed.name == "Janet Doe"
    assert state.customers[contact.id]["mobile_number"] == "+12125550142"


async def test_an_unknown_customer_is_not_found(hcp: HousecallProConnector) -> None:
    with pytest.raises(NotFoundError):
        await hcp.get_contact("cus_missing")
    with pytest.raises(NotFoundError):
        await hcp.update_contact("cus_missing", ContactDraft(name="X"))
    with pytest.raises(NotFoundError):
        await hcp.add_note("cus_missing", "hello")


async def test_notes_are_appended_to_the_customers_notes_keeping_what_staff_wrote(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    contact = await hcp.create_contact(ContactDraft(name="Jane", phone=CALLER))
    state.customers[contact.id]["notes"] = "Gate code 1234"

    first = await hcp.add_note(contact.id, "Asked about a water heater.")
    second = await hcp.add_note(contact.id, "Called back.\nWants Tuesday.")

    text = state.customers[contact.id]["notes"]
    assert text.startswith("Gate code 1234\n\n[note ")
    assert "] Asked about a water heater." in text
    assert "] Called back.\nWants Tuesday." in text
    assert first.contact_id == contact.id
    assert first.body == "Asked about a water heater."
    assert first.id != second.id
    assert second.body == "Called back.\nWants Tuesday."
    assert first.created_at == NOW


async def test_a_note_retried_under_its_key_is_written_once(hcp: HousecallProConnector, state: HousecallState) -> None:
    contact = await hcp.create_contact(ContactDraft(name="Jane", phone=CALLER))

    first = await hcp.add_note(contact.id, "Asked about whitening.", idempotency_key="call-1:add_note")
    again = await hcp.add_note(
        contact.id, "Asked about whitening.", idempotency_key="call-1:add_note", earlier_attempt_at=NOW
    )

    assert again.id == first.id
    assert state.customers[contact.id]["notes"].count("Asked about whitening.") == 1


async def test_a_note_without_a_key_after_a_crashed_attempt_is_found_by_its_body(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    contact = await hcp.create_contact(ContactDraft(name="Jane", phone=CALLER))
    first = await hcp.add_note(contact.id, "Wants a quote.")

    again = await hcp.add_note(contact.id, "Wants a quote.", earlier_attempt_at=NOW - timedelta(minutes=1))
    other = await hcp.add_note(contact.id, "Wants a quote.")

    assert again.id == first.id
    assert other.id != first.id
    assert state.customers[contact.id]["notes"].count("Wants a quote.") == 2


# -- calendar -----------------------------------------------------------------------------------------


async def test_free_slots_are_the_booking_windows_in_the_company_zone(
    hcp: HousecallProConnector, sandbox: Sandbox
) -> None:
    starts = await day_starts(hcp)

    assert len(starts) == 16
    assert starts[0] == monday(9)
    assert starts[-1] == monday(16, 30)
    assert starts[0].utcoffset() == timedelta(hours=-4)
    (request,) = requests_to(sandbox, "GET", "/company/schedule_availability/booking_windows")
    assert request.query == {"start_date": ["2026-03-09T00:00:00"], "show_for_days": ["1"], "service_duration": ["30"]}


async def test_free_slots_of_an_hour_weekends_and_the_past_come_from_windows_of_that_length(
    hcp: HousecallProConnector,
) -> None:
    hours = await hcp.free_slots(monday(0), monday(0) + timedelta(days=1), timedelta(hours=1))
    weekend = await hcp.free_slots(monday(0) - timedelta(days=2), monday(0), timedelta(minutes=30))
    past = await hcp.free_slots(NOW - timedelta(days=2), NOW - timedelta(days=1), timedelta(minutes=30))

    assert [s.start.hour for s in hours] == list(range(9, 17))
    assert all(s.duration == timedelta(hours=1) for s in hours)
    assert weekend == []
    assert past == []


async def test_a_booking_is_a_job_for_the_callers_customer_at_their_address(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    appointment = await hcp.book(
        booking(10, notes="Leaking tap", address="12 Main St, Springfield, IL 62704", email="ada@example.com")
    )

    (job,) = state.dump()["jobs"]
    (customer,) = state.customers.values()
    assert job["schedule"]["scheduled_start"] == "2026-03-09T14:00:00Z"
    assert job["schedule"]["scheduled_end"] == "2026-03-09T14:30:00Z"
    assert job["customer"]["id"] == customer["id"]
    assert job["address"]["street"] == "12 Main St"
    assert job["address"]["zip"] == "62704"
    assert job["address"]["state"] == "IL"
    assert job["address"]["city"] == "Springfield"
    assert appointment.id == job["id"]
    assert appointment.status == "booked"
    assert appointment.start == monday(10)
    assert appointment.end == monday(10, 30)
    assert (appointment.attendee_name, appointment.attendee_phone) == ("Ada Lovelace", "+12125550142")
    assert appointment.attendee_email == "ada@example.com"
    assert appointment.notes == "Leaking tap"
    assert monday(10) not in await day_starts(hcp)


async def test_the_callers_known_address_is_reused_and_a_new_one_added(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    await hcp.book(booking(10, address="12 Main St., Springfield, IL 62704", key="a"))
    await hcp.book(booking(11, address="12 main st, Springfield, IL 62704", key="b"))
    await hcp.book(booking(12, address="9 Elm Road, Shelbyville, IL 62565", key="c"))

    (customer,) = state.customers.values()
    assert [a["street"] for a in customer["addresses"]] == ["12 Main St.", "9 Elm Road"]
    jobs = list(state.jobs.values())  # in booking order
    assert jobs[0]["address_id"] == jobs[1]["address_id"] != jobs[2]["address_id"]


async def test_a_caller_without_an_address_gets_a_placeholder_in_the_companys_town_once(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    await hcp.book(booking(10, key="a"))
    await hcp.book(booking(11, key="b"))

    (customer,) = state.customers.values()
    (address,) = customer["addresses"]
    assert address["street"] == PLACEHOLDER_STREET
    assert (address["city"], address["state"], address["zip"]) == ("New York", "NY", "10001")


async def test_a_booking_retried_or_repeated_by_the_same_caller_makes_one_job(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    first = await hcp.book(booking(10, key="k-1"))
    again = await hcp.book(booking(10, key="k-1"))
    same_caller = await hcp.book(booking(10, key="k-2"))
    together = await asyncio.gather(*[hcp.book(booking(11, key="k-3")) for _ in range(3)])

    assert again.id == same_caller.id == first.id
    assert len({a.id for a in together}) == 1
    assert len(state.dump()["jobs"]) == 2


async def test_a_job_create_answered_503_after_landing_is_found_on_the_retry(
    hcp: HousecallProConnector, state: HousecallState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", path="/jobs", method="POST", times=1))

    appointment = await hcp.book(booking(10, key="k-1"))

    assert [j["id"] for j in state.dump()["jobs"]] == [appointment.id]


async def test_another_caller_a_closed_hour_or_a_past_time_cannot_be_booked(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    await hcp.book(booking(10, key="k-1"))

    with pytest.raises(SlotUnavailableError):
        await hcp.book(booking(10, phone="+12125550199", name="Other", key="k-2"))
    with pytest.raises(SlotUnavailableError):
        await hcp.book(booking(20, key="k-3"))
    with pytest.raises(SlotUnavailableError):
        await hcp.book(
            BookingRequest(start=NOW - timedelta(hours=1), end=NOW, attendee_name="Late", attendee_phone=CALLER)
        )
    assert len(state.dump()["jobs"]) == 1
    assert len(state.customers) == 1  # a refused caller is not added as a customer


async def test_rescheduling_moves_the_job_and_may_overlap_its_own_time(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    appointment = await hcp.book(booking(10, minutes=60, key="k-1"))

    moved = await hcp.reschedule(appointment.id, monday(10, 30), monday(11))
    later = await hcp.reschedule(appointment.id, monday(14), monday(15))

    assert moved.id == later.id == appointment.id
    assert (moved.start, moved.end) == (monday(10, 30), monday(11))
    assert later.start == monday(14)
    assert later.status == "booked"
    (job,) = state.dump()["jobs"]
    assert job["schedule"]["scheduled_start"] == "2026-03-09T18:00:00Z"
    starts = await day_starts(hcp)
    assert monday(10) in starts
    assert monday(14) not in starts


async def test_rescheduling_onto_another_job_a_missing_or_a_cancelled_job_is_refused(
    hcp: HousecallProConnector,
) -> None:
    mine = await hcp.book(booking(10, key="k-1"))
    await hcp.book(booking(11, phone="+12125550199", name="Other", key="k-2"))

    with pytest.raises(SlotUnavailableError):
        await hcp.reschedule(mine.id, monday(11), monday(11, 30))
    with pytest.raises(NotFoundError):
        await hcp.reschedule("job_missing", monday(12), monday(12, 30))
    await hcp.cancel(mine.id)
    with pytest.raises(NotFoundError):
        await hcp.reschedule(mine.id, monday(12), monday(12, 30))


async def test_cancelling_erases_the_schedule_keeps_the_times_in_a_note_and_frees_the_slot(
    hcp: HousecallProConnector, state: HousecallState
) -> None:
    appointment = await hcp.book(booking(10, key="k-1"))

    cancelled = await hcp.cancel(appointment.id)
    again = await hcp.cancel(appointment.id)

    (job,) = state.dump()["jobs"]
    assert job["work_status"] == "needs scheduling"
    assert "scheduled_start" not in job["schedule"]
    assert (cancelled.status, again.status) == ("cancelled", "cancelled")
    assert cancelled.start == again.start == monday(10)
    assert (await hcp.get(appointment.id)).status == "cancelled"
    assert monday(10) in await day_starts(hcp)
    assert await hcp.find(phone="+12125550142", email=None, since=NOW) == []


async def test_get_or_cancel_of_an_unknown_job_is_not_found(hcp: HousecallProConnector) -> None:
    with pytest.raises(NotFoundError):
        await hcp.get("job_missing")
    with pytest.raises(NotFoundError):
        await hcp.cancel("job_missing")


async def test_find_returns_a_callers_live_jobs_by_phone_or_email(hcp: HousecallProConnector) -> None:
    mine = await hcp.book(booking(10, email="ada@example.com", key="k-1"))
    later = await hcp.book(booking(14, email="ada@example.com", key="k-2"))
    await hcp.book(booking(11, phone="+12125550199", name="Other", key="k-3"))

    assert [a.id for a in await hcp.find(phone="+12125550142", email=None, since=NOW)] == [mine.id, later.id]
    assert [a.id for a in await hcp.find(phone=None, email="ada@example.com", since=NOW)] == [mine.id, later.id]
    assert [a.id for a in await hcp.find(phone="+12125550142", email=None, since=monday(12))] == [later.id]
    assert await hcp.find(phone=None, email=None, since=NOW) == []


async def test_as_estimates_a_booking_is_an_estimate_that_moves_and_is_cancelled_by_declining(
    estimates: HousecallProConnector, state: HousecallState
) -> None:
    booked = await estimates.book(booking(10, notes="Quote a new boiler", key="k-1"))
    again = await estimates.book(booking(10, key="k-1"))
    moved = await estimates.reschedule(booked.id, monday(13), monday(13, 30))
    found = await estimates.find(phone="+12125550142", email=None, since=NOW)
    cancelled = await estimates.cancel(booked.id)

    assert state.jobs == {}
    (estimate,) = state.dump()["estimates"]
    assert again.id == booked.id == estimate["id"]
    assert booked.notes == "Quote a new boiler"
    assert moved.start == monday(13)
    assert [a.id for a in found] == [booked.id]
    assert cancelled.status == "cancelled"
    assert estimate["options"][0]["approval_status"] == "pro declined"
    assert monday(13) in await day_starts(estimates)


# -- auth and faults ---------------------------------------------------------------------------------


async def test_a_revoked_api_key_answers_not_connected_and_marks_the_connection_expired(
    hcp: HousecallProConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))

    with pytest.raises(ProviderNotConnectedError) as raised:
        await hcp.get("job_1")
    with pytest.raises(ProviderNotConnectedError) as as_crm:
        await hcp.find_contacts(phone=CALLER)

    assert raised.value.capability == "calendar"
    assert as_crm.value.capability == "crm"
    assert vault.expired_reason is not None
    assert "Unauthorized" in vault.expired_reason
    assert SANDBOX_API_KEY not in str(raised.value)
    assert len(requests_to(sandbox, "GET", "/jobs/job_1")) == 1  # not retried


async def test_a_connection_without_a_key_is_not_connected(base_url: str) -> None:
    with pytest.raises(ProviderNotConnectedError):
        await connect(base_url, MemoryVault({})).get_contact("cus_1")


async def test_a_rate_limit_is_waited_out_and_the_call_succeeds(hcp: HousecallProConnector, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1))
    started = time.monotonic()

    slots = await hcp.free_slots(monday(9), monday(10), timedelta(minutes=30))

    assert [s.start for s in slots] == [monday(9), monday(9, 30)]
    assert time.monotonic() - started >= 0.9
    assert len(requests_to(sandbox, "GET", "/company/schedule_availability/booking_windows")) == 2


async def test_a_persistent_server_error_raises_upstream_error_within_the_deadline(
    hcp: HousecallProConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as raised:
        await hcp.get_contact("cus_1")

    assert time.monotonic() - started < 3.5
    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert len(sandbox.provider_requests()) >= 2


async def test_a_slow_answer_times_out_as_a_retryable_upstream_error_within_the_deadline(
    hcp: HousecallProConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="slow", seconds=2, times=1))
    started = time.monotonic()

    with deadline_scope(1), pytest.raises(UpstreamError) as raised:
        await hcp.get("job_1")

    assert time.monotonic() - started < 1.5
    assert raised.value.retryable is True
    assert "timed out" in str(raised.value)


async def test_faults_and_auth_failures_are_answered_in_housecall_pros_error_shape(
    sandbox: Sandbox, base_url: str
) -> None:
    headers = {"Authorization": f"Token {SANDBOX_API_KEY}"}
    async with httpx.AsyncClient() as client:
        sandbox.inject(Fault(kind="rate_limit", retry_after=2, times=1))
        limited = await client.get(f"{base_url}/company", headers=headers)
        sandbox.inject(Fault(kind="server_error", status=502, times=1))
        broken = await client.get(f"{base_url}/company", headers=headers)
        bearer = await client.get(f"{base_url}/company", headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"})
        missing = await client.get(f"{base_url}/jobs/job_nope", headers=headers)

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert broken.status_code == 502
    assert bearer.status_code == 401
    assert missing.status_code == 404
    api = OpenApi(SPEC_FILE)
    for answer in (limited, broken, bearer, missing):
        assert api.validate("ErrorResponse", answer.json()) == []
        assert set(answer.json()) == {"error"}


def test_housecall_pro_errors_are_translated_in_one_place() -> None:
    body = b'{"error": {"message": "address_id is required"}}'
    limited = translate(429, b"{}", {"retry-after": "3"}, capability="crm")
    refused = translate(401, body, {}, capability="calendar")
    missing = translate(404, body, {}, capability="crm", subject=("contact", "cus_1"))
    broken = translate(500, b"oops", {}, capability="crm")
    invalid = translate(400, body, {}, capability="crm")

    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 3.0
    assert isinstance(refused, ProviderNotConnectedError)
    assert refused.capability == "calendar"
    assert isinstance(missing, NotFoundError)
    assert missing.identifier == "cus_1"
    assert isinstance(broken, HousecallError)
    assert broken.retryable
    assert isinstance(invalid, HousecallError)
    assert not invalid.retryable
    assert "address_id is required" in str(invalid)


# -- the official spec ---------------------------------------------------------------------------------


def _query_problems(api: OpenApi, request: RecordedRequest) -> list[str]:
    found = api.operation(request.method, request.path)
    if found is None:
        return []
    names = {api.resolve(p)["name"] for p in found[1].get("parameters") or [] if api.resolve(p).get("in") == "query"}
    return [
        f"{request.method} {request.path}: query {q!r} not in the spec"
        for q in request.query
        if q.removesuffix("[]") not in names
    ]


async def _full_flow(hcp: HousecallProConnector, estimates: HousecallProConnector) -> None:
    await hcp.check_connection()
    contact = await hcp.create_contact(ContactDraft(name="Jane Doe", phone=CALLER, email="jane@example.com"))
    await hcp.create_contact(ContactDraft(name="Jane Doe", phone=CALLER, email="jane@example.com"))
    await hcp.update_contact(contact.id, ContactDraft(name="Janet Doe"))
    await hcp.add_note(contact.id, "Asked about a boiler.", idempotency_key="n-1")
    await hcp.get_contact(contact.id)
    await day_starts(hcp)
    job = await hcp.book(booking(10, phone=CALLER, address="12 Main St, Springfield, IL 62704", notes="Tap"))
    await hcp.book(booking(11, phone="+12125550199", name="Other"))
    await hcp.reschedule(job.id, monday(13), monday(13, 30))
    await hcp.find(phone=CALLER, email=None, since=NOW)
    await hcp.cancel(job.id)
    estimate = await estimates.book(booking(15, phone=CALLER, notes="Quote"))
    await estimates.reschedule(estimate.id, monday(16), monday(16, 30))
    await estimates.cancel(estimate.id)


async def test_every_request_of_a_full_flow_is_in_housecall_pros_spec(
    hcp: HousecallProConnector, estimates: HousecallProConnector, sandbox: Sandbox
) -> None:
    await _full_flow(hcp, estimates)

    api = OpenApi(SPEC_FILE)
    recorded = sandbox.provider_requests()
    problems = [p for r in recorded for p in [*api.check_request(r), *_query_problems(api, r)]]
    assert problems == []
    assert {f"{r.method} {api.operation(r.method, r.path)[0]}" for r in recorded} >= {  # type: ignore[index]
        "GET /company",
        "GET /customers",
        "POST /customers",
        "PUT /customers/{customer_id}",
        "GET /customers/{customer_id}",
        "POST /customers/{customer_id}/addresses",
        "GET /company/schedule_availability/booking_windows",
        "GET /jobs",
        "POST /jobs",
        "GET /jobs/{id}",
        "PUT /jobs/{job_id}/schedule",
        "POST /jobs/{job_id}/notes",
        "DELETE /jobs/{job_id}/schedule",
        "POST /estimates",
        "GET /estimates",
        "GET /estimates/{estimate_id}",
        "PUT /estimates/{estimate_id}/options/{option_id}/schedule",
        "POST /estimates/options/decline",
    }


async def test_emulator_answers_validate_against_housecall_pros_schemas(
    hcp: HousecallProConnector, estimates: HousecallProConnector, base_url: str
) -> None:
    await _full_flow(hcp, estimates)
    headers = {"Authorization": f"Token {SANDBOX_API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        customers = (await client.get("/customers", params={"page_size": 1})).json()
        jobs = (await client.get("/jobs")).json()
        listed_estimates = (await client.get("/estimates")).json()
        company = (await client.get("/company")).json()
        windows = (await client.get("/company/schedule_availability/booking_windows")).json()
        customer_id = customers["customers"][0]["id"]
        address = (
            await client.post(
                f"/customers/{customer_id}/addresses",
                json={"street": "1 A St", "city": "B", "state": "NY", "zip": "10001", "country": "US"},
            )
        ).json()
        note = (await client.post(f"/jobs/{jobs['jobs'][0]['id']}/notes", json={"content": "hi"})).json()

    api = OpenApi(SPEC_FILE)
    assert customers["total_items"] == 2
    assert customers["total_pages"] == 2
    assert len(customers["customers"]) == 1
    problems = [
        *api.validate("PaginatedList", customers),
        *[p for c in customers["customers"] for p in api.validate("Customer", c)],
        *api.validate("PaginatedList", jobs),
        *[p for j in jobs["jobs"] for p in api.validate("Job", j)],
        *[p for e in listed_estimates["estimates"] for p in api.validate("Estimate", e)],
        *api.validate("Company", company),
        *api.validate("BookingWindows", windows),
        *api.validate("Address", address),
        *api.validate("Note", note),
    ]
    assert problems == []


# -- state across a restart ----------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("housecall_pro", SPEC.sandbox, tmp_path / "housecall_pro.json") as running:
        cast(HousecallState, running.before.state).clock = lambda: NOW
        cast(HousecallState, running.after.state).clock = lambda: NOW
        yield running


async def test_after_a_restart_the_connector_sees_the_same_customers_and_jobs(restart: Restart) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    contact = await before.create_contact(ContactDraft(name="Jane", phone=CALLER))
    note = await before.add_note(contact.id, "Gate code 1234", idempotency_key="n-1")
    kept = await before.book(booking(10, phone=CALLER, key="b-1"))
    dropped = await before.book(booking(12, phone="+12125550199", name="Other", key="b-2"))
    await before.cancel(dropped.id)

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert await after.get_contact(contact.id) == await before.get_contact(contact.id)
    assert (await after.add_note(contact.id, "Gate code 1234", idempotency_key="n-1")).id == note.id
    assert await after.get(kept.id) == kept
    assert (await after.get(dropped.id)).status == "cancelled"
    assert (await after.book(booking(10, phone=CALLER, key="b-1"))).id == kept.id
    assert monday(12) in await day_starts(after)


def test_a_snapshot_restores_the_same_state_through_json_and_shares_nothing_with_it(state: HousecallState) -> None:
    customer_id = state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    address = state.add_address(
        customer_id, {"street": "1 A St", "city": "B", "state": "NY", "zip": "1", "country": "US"}
    )
    state.create_job({"customer_id": customer_id, "address_id": address["id"]})
    state.revoke_refresh_tokens()
    snapshot = state.snapshot()
    restored = HousecallState(clock=lambda: NOW)

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["customers"].clear()
    snapshot["api_keys"].append("x")

    assert restored.dump() == state.dump()
    assert len(state.customers) == 1
    assert restored.api_keys == state.api_keys == set()
    assert restored.next_number == state.next_number == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"version": None}, ValueError),
        ({"next_number": "1"}, ValueError),
        ({"customers": {"cus_a": {"id": "cus_b", "created_at": "2026-03-04T15:00:00Z"}}}, KeyError),
        ({"jobs": {"job_a": {"id": "job_a", "created_at": "2026-03-04T15:00:00Z"}}}, KeyError),
    ],
    ids=["a later version", "no version", "a count as text", "a customer naming another id", "a job without times"],
)
def test_a_snapshot_this_state_did_not_write_is_refused_and_leaves_the_state_as_it_was(
    state: HousecallState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.seed_contact(name="Jane", phone="4155550123")
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
