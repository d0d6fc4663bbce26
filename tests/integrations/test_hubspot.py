"""The HubSpot connector against its emulator on a real 127.0.0.1 socket, and the emulator against HubSpot's spec."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hubspot.crm.contacts.exceptions import ApiException

from integrations.capabilities.crm import CallActivityLog, CrmProvider
from integrations.capabilities.errors import (
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)
from integrations.capabilities.models import CallActivity, Contact, ContactDraft
from integrations.common.deadline import deadline_scope
from integrations.common.sandbox import Fault, RecordedRequest, Sandbox
from integrations.common.spec import Checkable, ConnectorEnv
from integrations.common.vault import MemoryVault
from integrations.hubspot import SPEC, HubSpotConnector, mappers
from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.connector import CLOCK_SKEW
from integrations.hubspot.errors import translate
from integrations.hubspot.sandbox import SANDBOX_PRIVATE_APP_TOKEN, SANDBOX_REFRESH_TOKEN
from integrations.hubspot.sandbox_state import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    HubSpotError,
    HubSpotState,
    Record,
)
from integrations.hubspot.tokens import HubSpotTokenDialect
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tests.support.specs import OpenApi

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
PHONE = "+12125550142"
CONTACTS_SPEC = "hubspot/crm-contacts-v3.json"
NOTES_SPEC = "hubspot/crm-notes-v3.json"
ASSOCIATIONS_SPEC = "hubspot/crm-associations-v4.json"
CALLS_SPEC = "hubspot/crm-calls-v3.json"
BATCH_READ = "/crm/v3/objects/notes/batch/read"
CALLS = "/crm/v3/objects/calls"
CALLS_BATCH_READ = "/crm/v3/objects/calls/batch/read"
# A call's start, with microseconds HubSpot's milliseconds drop: 14:52:07.123 UTC.
STARTED = datetime(2026, 3, 4, 9, 52, 7, 123456, tzinfo=ZoneInfo("America/New_York"))
# HubSpot's own properties on every engagement.
COMPUTED = {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
CALCULATED_PHONE = "hs_searchable_calculated_phone_number"


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return SPEC.sandbox()


@pytest.fixture(scope="module")
def served(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
    with serve_sandboxes({"hubspot": sandbox}) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_portal(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> HubSpotState:
    assert isinstance(sandbox.state, HubSpotState)
    return sandbox.state


@pytest.fixture
def base_url(served: ServedSandboxes) -> str:
    return served.url("hubspot")


@pytest.fixture
def vault(base_url: str) -> MemoryVault:
    return MemoryVault(SPEC.sandbox_connection(base_url).secrets)


@pytest.fixture
def crm(base_url: str, vault: MemoryVault) -> HubSpotConnector:
    return connect(base_url, vault)


def connect(base_url: str, vault: MemoryVault) -> HubSpotConnector:
    conn = SPEC.sandbox_connection(base_url)
    settings = SPEC.settings_model.model_validate({**conn.settings, "base_url": base_url})
    env = ConnectorEnv(
        clock=lambda: NOW, connection_id="con_test", public_url="http://127.0.0.1:9", timezone="America/New_York"
    )
    connector = SPEC.build(settings, vault, env)
    assert isinstance(connector, HubSpotConnector)
    return connector


def sent(sandbox: Sandbox, method: str, path: str) -> list[RecordedRequest]:
    """Requests the emulator received with this method and exactly this path."""
    return [r for r in sandbox.provider_requests() if r.method == method and r.path == path]


def contact_notes_path(contact_id: str) -> str:
    return f"/crm/v4/objects/contacts/{contact_id}/associations/notes"


def seed_note(state: HubSpotState, contact_id: str, body: str, written_at: datetime) -> Record:
    """A note on the contact as the connector writes it, as if an earlier process had written it."""
    return state.notes.create(mappers.note_request(contact_id, body, written_at))


def contact_calls_path(contact_id: str) -> str:
    return f"/crm/v4/objects/contacts/{contact_id}/associations/calls"


def a_call(**changes: Any) -> CallActivity:
    """A finished inbound call, as the post-call sync describes it; `changes` replace its fields."""
    fields: dict[str, Any] = {
        "title": "Inbound call: booked a cleaning",
        "body": "Booked a cleaning for Monday 9:00.",
        "started_at": STARTED,
        "duration_seconds": 184.5,
        "direction": "inbound",
        "caller_phone": PHONE,
        "recording_url": "https://recordings.example.com/rec-1.mp3",
    }
    return CallActivity(**{**fields, **changes})


def seed_call(state: HubSpotState, contact_id: str, call: CallActivity) -> Record:
    """A call on the contact as the connector logs it, as if an earlier process had logged it."""
    return state.calls.create(mappers.call_request(contact_id, call))


def private_app(base_url: str) -> httpx.Client:
    """A plain HTTP client on the emulator, authenticated with the sandbox private-app token."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {SANDBOX_PRIVATE_APP_TOKEN}"})


# -- the integration as the registry sees it ----------------------------------------------------------


def test_the_spec_describes_an_oauth_crm_provider_with_sandbox_credentials(base_url: str) -> None:
    conn = SPEC.sandbox_connection(base_url)

    assert SPEC.name == "hubspot"
    assert SPEC.capabilities == frozenset({"crm"})
    assert SPEC.auth == "oauth"
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert set(SPEC.optional_secrets) == {"access_token", "expires_at"}
    assert conn.settings == {"base_url": base_url}
    assert conn.secrets["refresh_token"] == SANDBOX_REFRESH_TOKEN


def test_the_connector_is_a_crm_provider_that_can_check_its_connection(crm: HubSpotConnector) -> None:
    assert isinstance(crm, CrmProvider)
    assert isinstance(crm, CallActivityLog)
    assert isinstance(crm, Checkable)
    assert crm.name == "hubspot"


def test_settings_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        SPEC.settings_model.model_validate({"base_url": "http://127.0.0.1:1", "portal": "123"})


async def test_check_connection_reports_the_portal_reachable(crm: HubSpotConnector, sandbox: Sandbox) -> None:
    assert await crm.check_connection() == "hubspot portal reachable"
    assert [r.query.get("limit") for r in sent(sandbox, "GET", "/crm/v3/objects/contacts")] == [["1"]]


# -- finding callers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["(212) 555-0142", "212.555.0142", "+1 212-555-0142", "1-212-555-0142", PHONE])
async def test_a_contact_stored_in_any_phone_format_is_found_by_its_e164_number(
    crm: HubSpotConnector, state: HubSpotState, stored: str
) -> None:
    seeded = state.add_contact({"firstname": "Ada", "lastname": "Lovelace", "phone": stored})

    found = await crm.find_contacts(phone=PHONE)

    assert [c.id for c in found] == [seeded.id]
    assert found[0].phone == PHONE
    assert found[0].name == "Ada Lovelace"
    assert found[0].provider == "hubspot"
    assert found[0].raw["id"] == seeded.id


async def test_a_mobile_phone_is_found_too(crm: HubSpotConnector, state: HubSpotState) -> None:
    seeded = state.add_contact({"firstname": "Ada", "mobilephone": "212 555 0142"})

    found = await crm.find_contacts(phone=PHONE)

    assert [(c.id, c.phone) for c in found] == [(seeded.id, PHONE)]


async def test_a_number_with_the_same_digits_in_another_country_is_not_the_caller(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    state.add_contact({"firstname": "Not", "lastname": "Ada", "phone": "+44 2125550142"})

    assert await crm.find_contacts(phone=PHONE) == []


async def test_phone_matches_come_before_email_matches(crm: HubSpotConnector, state: HubSpotState) -> None:
    by_email = state.add_contact({"firstname": "Email", "email": "ada@example.com"})
    by_phone = state.add_contact({"firstname": "Phone", "phone": "(212) 555-0142"})

    found = await crm.find_contacts(phone=PHONE, email="ada@example.com")

    assert [c.id for c in found] == [by_phone.id, by_email.id]


async def test_find_without_a_phone_or_email_asks_hubspot_nothing(crm: HubSpotConnector, sandbox: Sandbox) -> None:
    assert await crm.find_contacts() == []
    assert sandbox.provider_requests() == []


async def test_search_follows_pages_beyond_the_first(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    formats = ["(212) 555-0142", "212.555.0142", "+1 212 555 0142"]
    seeded = {state.add_contact({"phone": formats[i % 3], "firstname": f"Ada{i}"}).id for i in range(130)}

    found = await crm.find_contacts(phone=PHONE)

    assert {c.id for c in found} == seeded
    searches = sent(sandbox, "POST", "/crm/v3/objects/contacts/search")
    assert [r.body["after"] for r in searches] == ["0", "100"]


# -- creating without duplicates ----------------------------------------------------------------------


async def test_creating_twice_with_the_same_phone_keeps_one_contact(crm: HubSpotConnector, state: HubSpotState) -> None:
    first = await crm.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE))
    again = await crm.create_contact(ContactDraft(name="Someone Else", phone=PHONE))

    assert again.id == first.id
    assert again.name == "Ada Lovelace"
    assert [c["id"] for c in state.dump()["contacts"]] == [first.id]
    assert state.contacts[first.id].properties["firstname"] == "Ada"
    assert state.contacts[first.id].properties["lastname"] == "Lovelace"


async def test_creating_twice_with_the_same_email_in_another_case_keeps_one_contact(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    first = await crm.create_contact(ContactDraft(name="Ada", email="ada@example.com"))
    again = await crm.create_contact(ContactDraft(email="ADA@Example.com"))

    assert again.id == first.id
    assert again.email == "ada@example.com"
    assert len(state.dump()["contacts"]) == 1


async def test_creating_a_caller_someone_stored_in_another_format_fills_its_blanks_only(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    seeded = state.add_contact({"firstname": "Augusta", "phone": "(212) 555-0142"})

    contact = await crm.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE, email="ada@example.com"))

    assert contact.id == seeded.id
    assert contact.name == "Augusta"
    assert contact.email == "ada@example.com"
    assert state.contacts[seeded.id].properties["phone"] == "(212) 555-0142"
    assert [r.body for r in sent(sandbox, "PATCH", f"/crm/v3/objects/contacts/{seeded.id}")] == [
        {"properties": {"email": "ada@example.com"}}
    ]
    assert sent(sandbox, "POST", "/crm/v3/objects/contacts") == []


async def test_an_email_held_by_another_contact_is_not_copied_onto_the_phone_match(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    by_phone = state.add_contact({"firstname": "Phone", "phone": PHONE})
    by_email = state.add_contact({"firstname": "Email", "email": "ada@example.com"})

    contact = await crm.create_contact(ContactDraft(phone=PHONE, email="ada@example.com"))

    assert contact.id == by_phone.id
    assert "email" not in state.contacts[by_phone.id].properties
    assert state.contacts[by_email.id].properties["email"] == "ada@example.com"


async def test_a_conflict_on_an_email_search_has_not_indexed_yet_returns_the_existing_contact(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    # HubSpot's search index lags writes: a contact created a moment ago is not found by search yet.
    hidden = state.add_contact({"firstname": "Ada", "email": "ada@example.com"}, searchable=False)

    contact = await crm.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE, email="ada@example.com"))

    assert contact.id == hidden.id
    assert contact.phone == PHONE
    assert [c["id"] for c in state.dump()["contacts"]] == [hidden.id]
    assert len(sent(sandbox, "POST", "/crm/v3/objects/contacts")) == 1
    assert state.contacts[hidden.id].properties["phone"] == PHONE


async def test_concurrent_creates_for_one_caller_make_one_contact(crm: HubSpotConnector, state: HubSpotState) -> None:
    results = await asyncio.gather(*(crm.create_contact(ContactDraft(name="Ada", phone=PHONE)) for _ in range(3)))

    assert len({c.id for c in results}) == 1
    assert len(state.dump()["contacts"]) == 1


async def test_a_rate_limited_create_is_retried_and_makes_one_contact(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    # A name alone: no search first, so the fault meets the POST itself.
    sandbox.inject(Fault(kind="rate_limit", retry_after=0, times=1, path="/crm/v3/objects/contacts"))

    contact = await crm.create_contact(ContactDraft(name="Ada Lovelace"))

    assert [c["id"] for c in state.dump()["contacts"]] == [contact.id]
    assert len(sent(sandbox, "POST", "/crm/v3/objects/contacts")) == 2


async def test_a_create_hubspot_cannot_deduplicate_is_not_repeated_after_a_server_error(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    # A 502 may come after HubSpot stored the contact; without an email a second POST could duplicate it.
    sandbox.inject(Fault(kind="server_error", status=502, times=0, path="/crm/v3/objects/contacts"))

    with pytest.raises(UpstreamError) as caught:
        await crm.create_contact(ContactDraft(name="Ada Lovelace"))

    assert (caught.value.status, caught.value.retryable) == (502, False)
    assert len(sent(sandbox, "POST", "/crm/v3/objects/contacts")) == 1


async def test_a_note_is_not_repeated_after_a_server_error(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    sandbox.inject(Fault(kind="server_error", times=0, path="/crm/v3/objects/notes"))

    with pytest.raises(UpstreamError) as caught:
        await crm.add_note(contact.id, "hello")

    assert (caught.value.status, caught.value.retryable) == (503, False)
    assert len(sent(sandbox, "POST", "/crm/v3/objects/notes")) == 1
    assert state.dump()["notes"] == []


# -- reading and updating -----------------------------------------------------------------------------


async def test_get_contact_returns_the_mapped_contact(crm: HubSpotConnector, state: HubSpotState) -> None:
    seeded = state.add_contact({"firstname": "Ada", "lastname": "Lovelace", "phone": PHONE, "email": "ada@example.com"})

    contact = await crm.get_contact(seeded.id)

    assert (contact.id, contact.name, contact.phone, contact.email) == (
        seeded.id,
        "Ada Lovelace",
        PHONE,
        "ada@example.com",
    )
    assert contact.created_at is not None
    assert abs(contact.created_at - seeded.created_at) < timedelta(milliseconds=1)


async def test_get_contact_for_an_unknown_id_raises_not_found(crm: HubSpotConnector) -> None:
    with pytest.raises(NotFoundError) as caught:
        await crm.get_contact("999999")

    assert (caught.value.kind, caught.value.identifier) == ("contact", "999999")


async def test_update_fills_the_given_fields_and_keeps_the_rest(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    created = await crm.create_contact(ContactDraft(phone=PHONE))

    updated = await crm.update_contact(created.id, ContactDraft(name="Ada Lovelace", email="ada@example.com"))

    assert (updated.name, updated.phone, updated.email) == ("Ada Lovelace", PHONE, "ada@example.com")
    assert (await crm.get_contact(created.id)).email == "ada@example.com"
    assert sent(sandbox, "PATCH", f"/crm/v3/objects/contacts/{created.id}")[0].body == {
        "properties": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"}
    }


async def test_update_of_an_unknown_contact_raises_not_found(crm: HubSpotConnector) -> None:
    with pytest.raises(NotFoundError) as caught:
        await crm.update_contact("424242", ContactDraft(name="Ada"))

    assert caught.value.identifier == "424242"


# -- notes --------------------------------------------------------------------------------------------


async def test_add_note_associates_the_note_with_the_contact(crm: HubSpotConnector, state: HubSpotState) -> None:
    contact = await crm.create_contact(ContactDraft(name="Ada", phone=PHONE))

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday")

    assert (note.contact_id, note.body, note.created_at, note.provider) == (
        contact.id,
        "Wants a cleaning on Monday",
        NOW,
        "hubspot",
    )
    [stored] = state.dump()["notes"]
    assert stored["id"] == note.id
    assert stored["properties"]["hs_note_body"] == "Wants a cleaning on Monday"
    assert stored["associations"] == [
        {"to": {"id": contact.id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}
    ]


async def test_add_note_for_an_unknown_contact_raises_not_found_and_writes_nothing(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await crm.add_note("31337", "hello")

    assert (caught.value.kind, caught.value.identifier) == ("contact", "31337")
    assert state.dump()["notes"] == []
    assert sent(sandbox, "POST", "/crm/v3/objects/notes") == []


# -- notes after a crashed attempt --------------------------------------------------------------------


async def test_a_note_written_before_a_crash_is_returned_not_written_again_when_earlier_attempt_at_is_given(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    first = await crm.add_note(contact.id, "Wants a cleaning on Monday", idempotency_key="call-1:add_note")

    again = await crm.add_note(
        contact.id,
        "Wants a cleaning on Monday",
        idempotency_key="call-1:add_note",
        earlier_attempt_at=NOW - timedelta(seconds=30),
    )

    assert again.id == first.id
    assert (again.contact_id, again.body, again.created_at) == (contact.id, "Wants a cleaning on Monday", NOW)
    assert [n["id"] for n in state.dump()["notes"]] == [first.id]
    assert len(sent(sandbox, "POST", "/crm/v3/objects/notes")) == 1
    assert len(sent(sandbox, "GET", contact_notes_path(contact.id))) == 1
    [read] = sent(sandbox, "POST", BATCH_READ)
    assert read.body["inputs"] == [{"id": first.id}]


async def test_without_earlier_attempt_at_a_second_identical_note_is_written(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})

    first = await crm.add_note(contact.id, "Wants a cleaning on Monday", idempotency_key="call-1:add_note")
    second = await crm.add_note(contact.id, "Wants a cleaning on Monday", idempotency_key="call-1:add_note")

    assert second.id != first.id
    assert len(state.dump()["notes"]) == 2
    assert sent(sandbox, "GET", contact_notes_path(contact.id)) == []
    assert sent(sandbox, "POST", BATCH_READ) == []


async def test_a_note_older_than_earlier_attempt_at_less_the_clock_skew_is_not_taken_for_the_new_one(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    old = seed_note(state, contact.id, "Wants a cleaning on Monday", NOW - CLOCK_SKEW - timedelta(seconds=1))

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert note.id != old.id
    assert sorted(n["id"] for n in state.dump()["notes"]) == sorted([old.id, note.id])


async def test_a_note_written_within_the_clock_skew_before_the_earlier_attempt_is_taken_for_it(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    # The dead process's clock ran a little behind the one that recorded when its attempt began.
    contact = state.add_contact({"firstname": "Ada"})
    earlier = seed_note(state, contact.id, "Wants a cleaning on Monday", NOW - CLOCK_SKEW + timedelta(seconds=1))

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert note.id == earlier.id
    assert len(state.dump()["notes"]) == 1


async def test_a_recent_note_with_another_body_is_not_taken_for_the_new_one(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    other = seed_note(state, contact.id, "Wants a cleaning on Tuesday", NOW)

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert note.id != other.id
    assert note.body == "Wants a cleaning on Monday"
    assert len(state.dump()["notes"]) == 2


async def test_the_lookup_pages_through_more_than_one_page_of_associations(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    for i in range(500):  # HubSpot's largest associations page
        seed_note(state, contact.id, f"Older note {i}", NOW - timedelta(days=1))
    earlier = seed_note(state, contact.id, "Wants a cleaning on Monday", NOW)

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert note.id == earlier.id
    assert len(state.dump()["notes"]) == 501
    pages = sent(sandbox, "GET", contact_notes_path(contact.id))
    assert [r.query.get("after") for r in pages] == [None, [earlier.id]]
    assert all(r.query["limit"] == ["500"] for r in pages)


async def test_the_lookup_reads_notes_in_batches_of_at_most_100(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    earlier = seed_note(state, contact.id, "Wants a cleaning on Monday", NOW)
    for i in range(150):
        seed_note(state, contact.id, f"Later note {i}", NOW)

    note = await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert note.id == earlier.id
    assert [len(r.body["inputs"]) for r in sent(sandbox, "POST", BATCH_READ)] == [100, 51]
    assert sent(sandbox, "POST", "/crm/v3/objects/notes") == []


async def test_a_failed_lookup_raises_and_writes_no_note(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    seed_note(state, contact.id, "Something else", NOW)
    sandbox.inject(Fault(kind="server_error", times=0, path=BATCH_READ))

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await crm.add_note(contact.id, "Wants a cleaning on Monday", earlier_attempt_at=NOW)

    assert caught.value.status == 503
    assert len(sent(sandbox, "POST", BATCH_READ)) >= 2  # a read is safe to retry
    assert sent(sandbox, "POST", "/crm/v3/objects/notes") == []
    assert len(state.dump()["notes"]) == 1


# -- calls ------------------------------------------------------------------------------------------


async def test_a_call_is_logged_on_the_contact_with_its_details_in_hubspots_units(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    contact = state.add_contact({"firstname": "Ada", "phone": PHONE})

    logged = await crm.log_call(contact.id, a_call())

    assert (logged.contact_id, logged.provider, logged.created) == (contact.id, "hubspot", True)
    [stored] = state.dump()["calls"]
    assert stored["id"] == logged.id
    assert {name: value for name, value in stored["properties"].items() if name not in COMPUTED} == {
        "hs_timestamp": "2026-03-04T14:52:07.123Z",
        "hs_call_title": "Inbound call: booked a cleaning",
        "hs_call_body": "Booked a cleaning for Monday 9:00.",
        "hs_call_duration": "184500",
        "hs_call_direction": "INBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_from_number": PHONE,
        "hs_call_recording_url": "https://recordings.example.com/rec-1.mp3",
    }
    assert stored["associations"] == [
        {"to": {"id": contact.id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}]}
    ]
    assert logged.raw["properties"]["hs_call_title"] == "Inbound call: booked a cleaning"


@pytest.mark.parametrize(
    ("direction", "numbers"),
    [
        ("inbound", {"hs_call_from_number": PHONE}),
        ("outbound", {"hs_call_to_number": PHONE}),
        (None, {}),
    ],
)
async def test_the_callers_phone_is_the_from_number_of_an_inbound_call_and_the_to_number_of_an_outbound_one(
    crm: HubSpotConnector, state: HubSpotState, direction: str | None, numbers: dict[str, str]
) -> None:
    contact = state.add_contact({"firstname": "Ada"})

    await crm.log_call(contact.id, a_call(direction=direction))

    [stored] = state.dump()["calls"]
    assert {k: v for k, v in stored["properties"].items() if k.endswith("_number")} == numbers
    assert stored["properties"].get("hs_call_direction") == (direction.upper() if direction else None)


async def test_logging_the_same_call_again_returns_it_with_created_false_and_logs_no_second_call(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox, base_url: str, vault: MemoryVault
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    first = await crm.log_call(contact.id, a_call())

    # As a sync resumed in another process would: nothing in memory, only what HubSpot holds.
    again = await connect(base_url, vault).log_call(contact.id, a_call())

    assert (again.id, again.contact_id, again.created) == (first.id, contact.id, False)
    assert [c["id"] for c in state.dump()["calls"]] == [first.id]
    assert len(sent(sandbox, "POST", CALLS)) == 1
    [read] = sent(sandbox, "POST", CALLS_BATCH_READ)
    assert read.body["inputs"] == [{"id": first.id}]
    assert {"hs_timestamp", "hs_call_title"} <= set(read.body["properties"])


async def test_the_same_start_given_in_another_zone_or_beyond_the_millisecond_is_the_same_call(
    crm: HubSpotConnector, state: HubSpotState
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    first = await crm.log_call(contact.id, a_call())

    again = await crm.log_call(contact.id, a_call(started_at=STARTED.astimezone(UTC).replace(microsecond=123999)))

    assert (again.id, again.created) == (first.id, False)
    assert len(state.dump()["calls"]) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"started_at": STARTED + timedelta(milliseconds=1)},
        {"started_at": STARTED + timedelta(hours=2)},
        {"title": "Inbound call: asked about prices"},
    ],
    ids=["a-millisecond-later", "hours-later", "another-title"],
)
async def test_a_different_call_on_the_same_contact_is_logged_separately(
    crm: HubSpotConnector, state: HubSpotState, changes: dict[str, Any]
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    first = await crm.log_call(contact.id, a_call())

    second = await crm.log_call(contact.id, a_call(**changes))

    assert second.id != first.id
    assert (first.created, second.created) == (True, True)
    assert sorted(c["id"] for c in state.dump()["calls"]) == sorted([first.id, second.id])


async def test_the_same_call_on_another_contact_is_logged_there_too(crm: HubSpotConnector, state: HubSpotState) -> None:
    ada, grace = state.add_contact({"firstname": "Ada"}), state.add_contact({"firstname": "Grace"})
    on_ada = await crm.log_call(ada.id, a_call())

    on_grace = await crm.log_call(grace.id, a_call())

    assert on_grace.id != on_ada.id
    assert on_grace.created is True
    assert len(state.dump()["calls"]) == 2


async def test_logging_a_call_for_an_unknown_contact_raises_not_found_and_logs_nothing(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await crm.log_call("31337", a_call())

    assert (caught.value.kind, caught.value.identifier) == ("contact", "31337")
    assert state.dump()["calls"] == []
    assert sent(sandbox, "POST", CALLS) == []


async def test_logging_the_same_call_concurrently_logs_it_once(crm: HubSpotConnector, state: HubSpotState) -> None:
    contact = state.add_contact({"firstname": "Ada"})

    logged = await asyncio.gather(*(crm.log_call(contact.id, a_call()) for _ in range(3)))

    assert len({call.id for call in logged}) == 1
    assert sorted(call.created for call in logged) == [False, False, True]
    assert len(state.dump()["calls"]) == 1


async def test_a_failed_call_lookup_raises_and_logs_no_call(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    seed_call(state, contact.id, a_call(title="An earlier call"))
    sandbox.inject(Fault(kind="server_error", times=0, path=CALLS_BATCH_READ))

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await crm.log_call(contact.id, a_call())

    assert caught.value.status == 503
    assert len(sent(sandbox, "POST", CALLS_BATCH_READ)) >= 2  # a read is safe to retry
    assert sent(sandbox, "POST", CALLS) == []
    assert len(state.dump()["calls"]) == 1


async def test_a_call_is_not_logged_again_after_a_server_error_on_its_create(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    contact = state.add_contact({"firstname": "Ada"})
    sandbox.inject(Fault(kind="server_error", times=0, path=CALLS, method="POST"))

    with pytest.raises(UpstreamError) as caught:
        await crm.log_call(contact.id, a_call())

    assert (caught.value.status, caught.value.retryable) == (503, False)
    assert len(sent(sandbox, "POST", CALLS)) == 1


# -- OAuth and private-app tokens ---------------------------------------------------------------------


async def test_an_access_token_is_fetched_when_none_is_stored(
    crm: HubSpotConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    assert "access_token" not in vault.secrets

    await crm.find_contacts(phone=PHONE)

    assert vault.secrets["access_token"].startswith("sandbox-access-")
    assert datetime.fromisoformat(vault.secrets["expires_at"]) == NOW.replace(minute=30)
    [token_request] = sent(sandbox, "POST", "/oauth/v1/token")
    assert token_request.body["grant_type"] == "refresh_token"
    assert token_request.body["refresh_token"] == SANDBOX_REFRESH_TOKEN


async def test_an_expired_access_token_is_refreshed_silently_and_the_call_retried_once(
    crm: HubSpotConnector, vault: MemoryVault, state: HubSpotState, sandbox: Sandbox
) -> None:
    seeded = state.add_contact({"firstname": "Ada", "phone": PHONE})
    await crm.get_contact(seeded.id)
    stale = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    contact = await crm.get_contact(seeded.id)

    assert contact.id == seeded.id
    assert vault.secrets["access_token"] != stale
    assert vault.expired_reason is None
    assert len(sent(sandbox, "POST", "/oauth/v1/token")) == 2
    assert len(sent(sandbox, "GET", f"/crm/v3/objects/contacts/{seeded.id}")) == 3


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    crm: HubSpotConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await crm.find_contacts(phone=PHONE)
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    with pytest.raises(ProviderNotConnectedError) as caught:
        await crm.find_contacts(phone=PHONE)

    assert caught.value.capability == "crm"
    assert vault.expired_reason is not None
    assert "reconnect" in vault.expired_reason
    assert SANDBOX_REFRESH_TOKEN not in str(caught.value)


async def test_the_emulator_refuses_a_revoked_refresh_token_as_hubspot_does(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    secrets = SPEC.sandbox_connection(base_url).secrets

    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{base_url}/oauth/v1/token", data={"grant_type": "refresh_token", **secrets})

    assert answer.status_code == 400
    assert answer.json()["status"] == "BAD_REFRESH_TOKEN"
    assert answer.json()["message"] == "missing or unknown refresh token"
    assert "correlationId" in answer.json()


async def test_a_wrong_client_secret_marks_the_connection_expired(base_url: str) -> None:
    vault = MemoryVault({**SPEC.sandbox_connection(base_url).secrets, "client_secret": "rotated-away"})

    with pytest.raises(ProviderNotConnectedError):
        await connect(base_url, vault).find_contacts(phone=PHONE)

    assert vault.expired_reason is not None
    assert "invalid_client" in vault.expired_reason


async def test_the_token_dialect_rewrites_hubspots_refusal_as_an_oauth_error() -> None:
    def hubspot(_request: httpx.Request) -> httpx.Response:
        body = {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token", "correlationId": "c"}
        return httpx.Response(400, json=body)

    transport = HubSpotTokenDialect(inner=lambda: httpx.MockTransport(hubspot))
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.post("http://127.0.0.1:9/oauth/v1/token", data={"grant_type": "refresh_token"})

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "missing or unknown refresh token"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"access_token": "a", "refresh_token": "r", "expires_in": 1800, "token_type": "bearer"}),
        (400, {"status": "BAD_GRANT_TYPE", "message": "grant_type must be authorization_code or refresh_token"}),
        (503, {"status": "error", "message": "unavailable"}),
    ],
)
async def test_the_token_dialect_passes_every_other_answer_through_unchanged(status: int, body: dict[str, Any]) -> None:
    transport = HubSpotTokenDialect(
        inner=lambda: httpx.MockTransport(lambda _request: httpx.Response(status, json=body))
    )
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.post("http://127.0.0.1:9/oauth/v1/token", data={"grant_type": "refresh_token"})

    assert (answer.status_code, answer.json()) == (status, body)


async def test_a_private_app_token_works_without_any_refresh(
    base_url: str, state: HubSpotState, sandbox: Sandbox
) -> None:
    vault = MemoryVault({"access_token": SANDBOX_PRIVATE_APP_TOKEN})
    seeded = state.add_contact({"firstname": "Ada", "phone": "(212) 555-0142"})

    found = await connect(base_url, vault).find_contacts(phone=PHONE)

    assert [c.id for c in found] == [seeded.id]
    assert sent(sandbox, "POST", "/oauth/v1/token") == []
    assert vault.secrets == {"access_token": SANDBOX_PRIVATE_APP_TOKEN}


async def test_a_refused_private_app_token_marks_the_connection_expired_without_refreshing(
    base_url: str, sandbox: Sandbox
) -> None:
    vault = MemoryVault({"access_token": "pat-na1-deleted"})

    with pytest.raises(ProviderNotConnectedError):
        await connect(base_url, vault).find_contacts(phone=PHONE)

    assert vault.expired_reason is not None
    assert "private app" in vault.expired_reason
    assert sent(sandbox, "POST", "/oauth/v1/token") == []


# -- faults -------------------------------------------------------------------------------------------


async def test_one_rate_limit_with_retry_after_is_waited_out(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    seeded = state.add_contact({"phone": PHONE})
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1, path="/crm/v3/objects/contacts/search"))
    started = time.monotonic()

    found = await crm.find_contacts(phone=PHONE)

    assert [c.id for c in found] == [seeded.id]
    assert time.monotonic() - started >= 1.0
    assert len(sent(sandbox, "POST", "/crm/v3/objects/contacts/search")) == 2


async def test_a_persistent_server_error_raises_upstream_error_within_the_deadline(
    crm: HubSpotConnector, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0))
    started = time.monotonic()

    with deadline_scope(3), pytest.raises(UpstreamError) as caught:
        await crm.find_contacts(phone=PHONE)

    assert time.monotonic() - started < 3.5
    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert len(sent(sandbox, "POST", "/crm/v3/objects/contacts/search")) >= 2


async def test_a_slow_hubspot_times_out_within_the_deadline(crm: HubSpotConnector, sandbox: Sandbox) -> None:
    await crm.check_connection()  # the token first, outside the slow window
    sandbox.inject(Fault(kind="slow", seconds=1.5, times=0))
    started = time.monotonic()

    with deadline_scope(0.8), pytest.raises(UpstreamError) as caught:
        await crm.find_contacts(phone=PHONE)

    assert time.monotonic() - started < 1.3
    assert caught.value.retryable is True
    assert "timed out" in str(caught.value)


async def test_an_unreachable_hubspot_is_a_retryable_upstream_error() -> None:
    connector = connect("http://127.0.0.1:9", MemoryVault({"access_token": SANDBOX_PRIVATE_APP_TOKEN}))

    with deadline_scope(2), pytest.raises(UpstreamError) as caught:
        await connector.get_contact("1001")

    assert caught.value.retryable is True
    assert "unreachable" in str(caught.value)


def test_a_rate_limit_without_retry_after_waits_for_hubspots_window() -> None:
    error = ApiException(status=429, reason="Too Many Requests")
    error.headers = {"x-hubspot-ratelimit-interval-milliseconds": "10000"}
    error.body = b'{"status":"error","errorType":"RATE_LIMIT"}'

    translated = translate(error)

    assert isinstance(translated, RateLimitedError)
    assert translated.retry_after == 10.0


def test_a_forbidden_answer_is_a_permanent_upstream_error_naming_the_category() -> None:
    error = ApiException(status=403, reason="Forbidden")
    error.body = b'{"status":"error","message":"This app lacks scopes","category":"MISSING_SCOPES"}'

    translated = translate(error, record=("contact", "1"))

    assert isinstance(translated, UpstreamError)
    assert (translated.status, translated.retryable) == (403, False)
    assert "MISSING_SCOPES" in str(translated)


# -- the emulator against HubSpot's spec --------------------------------------------------------------


async def test_every_request_of_a_whole_flow_is_accepted_by_hubspots_spec(
    crm: HubSpotConnector, state: HubSpotState, sandbox: Sandbox
) -> None:
    state.add_contact({"firstname": "Hidden", "email": "hidden@example.com"}, searchable=False)
    await crm.check_connection()
    contact = await crm.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE))
    await crm.create_contact(ContactDraft(phone=PHONE, email="ada@example.com"))
    await crm.create_contact(ContactDraft(name="Hidden Person", email="hidden@example.com"))
    await crm.update_contact(contact.id, ContactDraft(name="Ada King"))
    await crm.get_contact(contact.id)
    await crm.add_note(contact.id, "Called about a refill")
    await crm.add_note(contact.id, "Called about a refill", earlier_attempt_at=NOW)
    await crm.log_call(contact.id, a_call())
    await crm.log_call(contact.id, a_call())

    contacts, notes, calls = OpenApi(CONTACTS_SPEC), OpenApi(NOTES_SPEC), OpenApi(CALLS_SPEC)
    associations = OpenApi(ASSOCIATIONS_SPEC)
    problems: list[str] = []
    checked = 0
    for request in sandbox.provider_requests():
        if request.path == "/oauth/v1/token":
            continue  # HubSpot's OAuth endpoint is not in the CRM specs.
        if request.path.startswith("/crm/v4/"):
            spec = associations
        elif request.path.startswith("/crm/v3/objects/notes"):
            spec = notes
        elif request.path.startswith("/crm/v3/objects/calls"):
            spec = calls
        else:
            spec = contacts
        problems += spec.check_request(request)
        checked += 1

    assert problems == []
    assert checked >= 15
    assert {r.path for r in sandbox.provider_requests()} >= {
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/contacts/search",
        f"/crm/v3/objects/contacts/{contact.id}",
        "/crm/v3/objects/notes",
        contact_notes_path(contact.id),
        BATCH_READ,
        CALLS,
        contact_calls_path(contact.id),
        CALLS_BATCH_READ,
    }


def test_the_spec_check_flags_a_batch_read_without_properties_with_history() -> None:
    request = RecordedRequest("POST", BATCH_READ, {}, {}, {"properties": ["hs_note_body"], "inputs": [{"id": "1002"}]})

    problems = OpenApi(NOTES_SPEC).check_request(request)

    assert any("'propertiesWithHistory'" in p for p in problems)


def test_the_spec_check_flags_a_search_without_its_required_fields() -> None:
    request = RecordedRequest("POST", "/crm/v3/objects/contacts/search", {}, {}, {"filterGroups": [], "limit": 10})

    problems = OpenApi(CONTACTS_SPEC).check_request(request)

    assert any("'after'" in p for p in problems)
    assert any("'sorts'" in p for p in problems)


def test_contact_answers_match_hubspots_schemas(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(CONTACTS_SPEC)
    state.add_contact({"firstname": "Grace", "phone": "(212) 555-0199"})
    with private_app(base_url) as client:
        created = client.post(
            "/crm/v3/objects/contacts",
            json={"properties": {"firstname": "Ada", "email": "ada@example.com"}, "associations": []},
        )
        fetched = client.get(f"/crm/v3/objects/contacts/{created.json()['id']}", params={"properties": "email"})
        page = client.get("/crm/v3/objects/contacts", params={"limit": 1})
        search = client.post(
            "/crm/v3/objects/contacts/search",
            json={"filterGroups": [], "properties": ["email"], "sorts": [], "limit": 1, "after": "0"},
        )

    assert created.status_code == 201
    assert spec.validate("SimplePublicObject", created.json()) == []
    assert spec.validate("SimplePublicObjectWithAssociations", fetched.json()) == []
    assert fetched.json()["properties"]["email"] == "ada@example.com"
    assert spec.validate("CollectionResponseSimplePublicObjectWithAssociationsForwardPaging", page.json()) == []
    assert page.json()["paging"]["next"]["after"] == created.json()["id"]
    assert spec.validate("CollectionResponseWithTotalSimplePublicObject", search.json()) == []
    assert search.json()["total"] == 2
    assert search.json()["paging"]["next"]["after"] == "1"


def test_note_answers_match_hubspots_schemas(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(NOTES_SPEC)
    contact = state.add_contact({"firstname": "Ada"})
    association = {
        "to": {"id": contact.id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
    }
    with private_app(base_url) as client:
        created = client.post(
            "/crm/v3/objects/notes",
            json={"properties": {"hs_timestamp": "1772636400000", "hs_note_body": "hi"}, "associations": [association]},
        )
        fetched = client.get(f"/crm/v3/objects/notes/{created.json()['id']}", params={"associations": "contacts"})

    assert created.status_code == 201
    assert spec.validate("SimplePublicObject", created.json()) == []
    assert created.json()["properties"]["hs_timestamp"] == "2026-03-04T15:00:00.000Z"
    assert spec.validate("SimplePublicObjectWithAssociations", fetched.json()) == []
    assert fetched.json()["associations"]["contacts"]["results"] == [{"id": contact.id, "type": "note_to_contact"}]


def test_association_listings_match_hubspots_schema_and_page(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(ASSOCIATIONS_SPEC)
    contact = state.add_contact({"firstname": "Ada"})
    notes = [seed_note(state, contact.id, f"note {i}", NOW) for i in range(3)]
    with private_app(base_url) as client:
        first = client.get(contact_notes_path(contact.id), params={"limit": 2})
        rest = client.get(
            contact_notes_path(contact.id), params={"limit": 2, "after": first.json()["paging"]["next"]["after"]}
        )
        back = client.get(f"/crm/v4/objects/notes/{notes[0].id}/associations/contacts")
        nobody = client.get("/crm/v4/objects/contacts/999999/associations/notes")

    listing = "CollectionResponseMultiAssociatedObjectWithLabelForwardPaging"
    for answer in (first, rest, back, nobody):
        assert answer.status_code == 200
        assert spec.validate(listing, answer.json()) == []
    assert [r["toObjectId"] for r in first.json()["results"]] == [notes[0].id, notes[1].id]
    assert first.json()["results"][0]["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 201}]
    assert [r["toObjectId"] for r in rest.json()["results"]] == [notes[2].id]
    assert "paging" not in rest.json()
    assert back.json()["results"] == [
        {"toObjectId": contact.id, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 202}]}
    ]
    assert nobody.json() == {"results": []}


def test_batch_read_answers_match_hubspots_schemas(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(NOTES_SPEC)
    contact = state.add_contact({"firstname": "Ada"})
    note = seed_note(state, contact.id, "hello", NOW)
    read = {"properties": ["hs_note_body"], "propertiesWithHistory": ["hs_note_body"], "inputs": [{"id": note.id}]}
    with private_app(base_url) as client:
        complete = client.post(BATCH_READ, json=read)
        partial = client.post(BATCH_READ, json={**read, "inputs": [{"id": note.id}, {"id": "999999"}]})

    assert complete.status_code == 200
    assert spec.validate("BatchResponseSimplePublicObject", complete.json()) == []
    [result] = complete.json()["results"]
    assert result["properties"]["hs_note_body"] == "hello"
    assert result["properties"]["hs_object_id"] == note.id
    assert result["propertiesWithHistory"]["hs_note_body"][0]["value"] == "hello"
    assert "errors" not in complete.json()
    assert partial.status_code == 207
    assert spec.validate("BatchResponseSimplePublicObjectWithErrors", partial.json()) == []
    assert [r["id"] for r in partial.json()["results"]] == [note.id]
    assert partial.json()["numErrors"] == 1
    [error] = partial.json()["errors"]
    assert (error["category"], error["context"]) == ("OBJECT_NOT_FOUND", {"ids": ["999999"]})


def test_call_answers_match_hubspots_schemas(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(CALLS_SPEC)
    contact = state.add_contact({"firstname": "Ada"})
    association = {
        "to": {"id": contact.id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
    }
    properties = {"hs_timestamp": "1772636400000", "hs_call_title": "Booked", "hs_call_duration": "60000"}
    with private_app(base_url) as client:
        created = client.post(CALLS, json={"properties": properties, "associations": [association]})
        call_id = created.json()["id"]
        fetched = client.get(f"{CALLS}/{call_id}", params={"associations": "contacts"})
        read = {"properties": ["hs_call_title"], "propertiesWithHistory": [], "inputs": [{"id": call_id}]}
        complete = client.post(CALLS_BATCH_READ, json=read)
        partial = client.post(CALLS_BATCH_READ, json={**read, "inputs": [{"id": call_id}, {"id": "999999"}]})
        wrong_type = client.post(
            CALLS,
            json={
                "properties": properties,
                "associations": [{**association, "types": [{**association["types"][0], "associationTypeId": 202}]}],
            },
        )

    assert created.status_code == 201
    assert spec.validate("SimplePublicObject", created.json()) == []
    assert created.json()["properties"]["hs_timestamp"] == "2026-03-04T15:00:00.000Z"
    assert spec.validate("SimplePublicObjectWithAssociations", fetched.json()) == []
    assert fetched.json()["associations"]["contacts"]["results"] == [{"id": contact.id, "type": "call_to_contact"}]
    assert complete.status_code == 200
    assert spec.validate("BatchResponseSimplePublicObject", complete.json()) == []
    assert complete.json()["results"][0]["properties"]["hs_call_title"] == "Booked"
    assert partial.status_code == 207
    assert spec.validate("BatchResponseSimplePublicObjectWithErrors", partial.json()) == []
    [error] = partial.json()["errors"]
    assert (error["category"], error["context"]) == ("OBJECT_NOT_FOUND", {"ids": ["999999"]})
    # 202 is note → contact: HubSpot refuses it on a call.
    assert wrong_type.status_code == 400
    assert wrong_type.json()["category"] == "VALIDATION_ERROR"
    assert len(state.dump()["calls"]) == 1


def test_call_association_listings_match_hubspots_schema_and_page(base_url: str, state: HubSpotState) -> None:
    spec = OpenApi(ASSOCIATIONS_SPEC)
    contact = state.add_contact({"firstname": "Ada"})
    calls = [seed_call(state, contact.id, a_call(title=f"call {i}")) for i in range(3)]
    seed_note(state, contact.id, "not a call", NOW)
    with private_app(base_url) as client:
        first = client.get(contact_calls_path(contact.id), params={"limit": 2})
        rest = client.get(
            contact_calls_path(contact.id), params={"limit": 2, "after": first.json()["paging"]["next"]["after"]}
        )
        back = client.get(f"/crm/v4/objects/calls/{calls[0].id}/associations/contacts")

    listing = "CollectionResponseMultiAssociatedObjectWithLabelForwardPaging"
    for answer in (first, rest, back):
        assert answer.status_code == 200
        assert spec.validate(listing, answer.json()) == []
    assert [r["toObjectId"] for r in first.json()["results"]] == [calls[0].id, calls[1].id]
    assert first.json()["results"][0]["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 193}]
    assert [r["toObjectId"] for r in rest.json()["results"]] == [calls[2].id]
    assert back.json()["results"] == [
        {"toObjectId": contact.id, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 194}]}
    ]


def test_the_sdk_reads_a_partial_batch_read_answer(base_url: str, state: HubSpotState) -> None:
    # The SDK builds models from a 207 too; the spec's required error fields must all be there.
    contact = state.add_contact({"firstname": "Ada"})
    note = seed_note(state, contact.id, "hello", NOW)

    answer = HubSpotClient(base_url).read_engagements(
        SANDBOX_PRIVATE_APP_TOKEN,
        5.0,
        "notes",
        mappers.batch_read_request(mappers.NOTE_PROPERTIES, [note.id, "999999"]),
    )

    assert [r["id"] for r in answer["results"]] == [note.id]
    assert answer["errors"][0]["context"] == {"ids": ["999999"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", contact_notes_path("1001")),
        ("POST", BATCH_READ),
        ("GET", contact_calls_path("1001")),
        ("POST", CALLS_BATCH_READ),
        ("POST", CALLS),
        ("GET", f"{CALLS}/1001"),
    ],
)
def test_the_engagement_routes_need_a_valid_token(base_url: str, method: str, path: str) -> None:
    answer = httpx.request(
        method, f"{base_url}{path}", json={"properties": [], "propertiesWithHistory": [], "inputs": []}
    )

    assert answer.status_code == 401
    assert answer.json()["category"] == "INVALID_AUTHENTICATION"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "category"),
    [
        ("POST", BATCH_READ, {"properties": [], "inputs": [{"id": str(i)} for i in range(101)]}, 400, None),
        ("POST", BATCH_READ, {"properties": [], "inputs": [{"note": "1"}]}, 400, None),
        ("GET", "/crm/v4/objects/widgets/1/associations/notes", None, 400, None),
        ("GET", "/crm/v4/objects/contacts/1/associations/notes?after=not-a-cursor", None, 400, None),
        ("GET", "/crm/v3/objects/contacts/999", None, 404, "OBJECT_NOT_FOUND"),
        ("PATCH", "/crm/v3/objects/contacts/999", {"properties": {"firstname": "A"}}, 404, "OBJECT_NOT_FOUND"),
        ("POST", "/crm/v3/objects/contacts", {"properties": {"shoe_size": "9"}, "associations": []}, 400, None),
        ("POST", "/crm/v3/objects/contacts", {"properties": {"createdate": "x"}, "associations": []}, 400, None),
        ("POST", "/crm/v3/objects/notes", {"properties": {"hs_note_body": "no time"}, "associations": []}, 400, None),
        ("GET", "/crm/v3/objects/notes/999", None, 404, "OBJECT_NOT_FOUND"),
        ("POST", CALLS, {"properties": {"hs_call_title": "no time"}, "associations": []}, 400, None),
        ("POST", CALLS, {"properties": {"hs_timestamp": "1", "hs_call_direction": "SIDEWAYS"}}, 400, None),
        ("POST", CALLS, {"properties": {"hs_timestamp": "1", "hs_call_duration": "3 min"}}, 400, None),
        ("POST", CALLS, {"properties": {"hs_timestamp": "1", "hs_note_body": "a note"}}, 400, None),
        ("POST", CALLS_BATCH_READ, {"properties": [], "inputs": [{"id": str(i)} for i in range(101)]}, 400, None),
        ("GET", f"{CALLS}/999", None, 404, "OBJECT_NOT_FOUND"),
        ("GET", "/crm/v4/objects/contacts/1/associations/calls?after=not-a-cursor", None, 400, None),
    ],
)
def test_error_answers_are_in_hubspots_error_format(
    base_url: str, method: str, path: str, body: Any, status: int, category: str | None
) -> None:
    with private_app(base_url) as client:
        answer = client.request(method, path, json=body)

    assert answer.status_code == status
    assert answer.json()["category"] == (category or "VALIDATION_ERROR")
    assert OpenApi(CONTACTS_SPEC).validate("Error", answer.json()) == []


def test_a_duplicate_email_is_a_conflict_naming_the_existing_id(base_url: str, state: HubSpotState) -> None:
    existing = state.add_contact({"email": "ada@example.com"})

    with private_app(base_url) as client:
        answer = client.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": "ADA@example.com"}, "associations": []}
        )

    assert answer.status_code == 409
    assert answer.json()["category"] == "CONFLICT"
    assert answer.json()["message"] == f"Contact already exists. Existing ID: {existing.id}"
    assert OpenApi(CONTACTS_SPEC).validate("Error", answer.json()) == []


@pytest.mark.parametrize(
    ("token", "category"),
    [(None, "INVALID_AUTHENTICATION"), ("made-up", "INVALID_AUTHENTICATION")],
)
def test_requests_without_a_valid_token_get_hubspots_401(base_url: str, token: str | None, category: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    answer = httpx.get(f"{base_url}/crm/v3/objects/contacts", headers=headers)

    assert answer.status_code == 401
    assert answer.json()["category"] == category
    assert OpenApi(CONTACTS_SPEC).validate("Error", answer.json()) == []


async def test_an_expired_token_gets_hubspots_expired_authentication_answer(
    base_url: str, state: HubSpotState, sandbox: Sandbox
) -> None:
    token = state.refresh({"grant_type": "refresh_token", **SPEC.sandbox_connection(base_url).secrets})["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 401
    assert answer.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_an_injected_rate_limit_answers_in_hubspots_format(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=2))

    with private_app(base_url) as client:
        answer = client.get("/crm/v3/objects/contacts")

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "2"
    assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert answer.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert answer.json()["errorType"] == "RATE_LIMIT"
    assert answer.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_an_injected_server_error_answers_in_hubspots_error_format(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="server_error", status=502))

    with private_app(base_url) as client:
        answer = client.get("/crm/v3/objects/contacts")

    assert answer.status_code == 502
    assert OpenApi(CONTACTS_SPEC).validate("Error", answer.json()) == []


# -- the emulator's search semantics ------------------------------------------------------------------


def _search(base_url: str, groups: list[list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    body = {
        "filterGroups": [{"filters": filters} for filters in groups],
        "properties": ["firstname"],
        "sorts": [],
        "limit": 10,
        "after": "0",
        **extra,
    }
    with private_app(base_url) as client:
        answer = client.post("/crm/v3/objects/contacts/search", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _names(answer: dict[str, Any]) -> list[str]:
    return sorted(r["properties"]["firstname"] for r in answer["results"])


@pytest.fixture
def people(state: HubSpotState) -> None:
    state.add_contact({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": PHONE})
    state.add_contact({"firstname": "Grace", "lastname": "Hopper", "email": "grace@navy.mil"})
    state.add_contact({"firstname": "Alan", "lastname": "Turing", "phone": "(212) 555-0199"})


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([[{"propertyName": "email", "operator": "EQ", "value": "ADA@example.com"}]], ["Ada"]),
        ([[{"propertyName": "email", "operator": "NEQ", "value": "ada@example.com"}]], ["Alan", "Grace"]),
        ([[{"propertyName": "firstname", "operator": "IN", "values": ["grace", "alan"]}]], ["Alan", "Grace"]),
        ([[{"propertyName": "lastname", "operator": "CONTAINS_TOKEN", "value": "hop*"}]], ["Grace"]),
        ([[{"propertyName": "phone", "operator": "HAS_PROPERTY"}]], ["Ada", "Alan"]),
        (
            [[{"propertyName": "hs_searchable_calculated_phone_number", "operator": "EQ", "value": "2125550199"}]],
            ["Alan"],
        ),
        (
            [
                [{"propertyName": "phone", "operator": "HAS_PROPERTY"}],
                [{"propertyName": "email", "operator": "EQ", "value": "grace@navy.mil"}],
            ],
            ["Ada", "Alan", "Grace"],
        ),
        (
            [
                [
                    {"propertyName": "phone", "operator": "HAS_PROPERTY"},
                    {"propertyName": "email", "operator": "HAS_PROPERTY"},
                ]
            ],
            ["Ada"],
        ),
    ],
)
def test_the_emulator_ors_filter_groups_and_ands_their_filters(
    base_url: str, groups: list[list[dict[str, Any]]], expected: list[str]
) -> None:
    answer = _search(base_url, groups)

    assert _names(answer) == expected
    assert answer["total"] == len(expected)


def test_the_emulator_refuses_more_filter_groups_than_hubspot_allows(base_url: str) -> None:
    groups = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": f"{i}@x.com"}]} for i in range(6)]
    body = {"filterGroups": groups, "properties": [], "sorts": [], "limit": 10, "after": "0"}

    with private_app(base_url) as client:
        answer = client.post("/crm/v3/objects/contacts/search", json=body)

    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("operator", "name", "value", "expected"),
    [
        ("CONTAINS_TOKEN", "email", "*@example.com", ["Ada"]),
        ("CONTAINS_TOKEN", "email", "*NAVY*", ["Grace"]),
        ("CONTAINS_TOKEN", "firstname", "g*c*e", ["Grace"]),
        ("CONTAINS_TOKEN", "lastname", "lovelace", ["Ada"]),
        ("CONTAINS_TOKEN", "lastname", "lov?lace", []),
        ("CONTAINS_TOKEN", "lastname", "[lt]uring", []),
        ("NOT_CONTAINS_TOKEN", "email", "*@example.com", ["Alan", "Grace"]),
    ],
)
def test_the_emulator_takes_a_star_in_a_token_search_for_any_characters_and_nothing_else_as_a_wildcard(
    base_url: str, operator: str, name: str, value: str, expected: list[str]
) -> None:
    answer = _search(base_url, [[{"propertyName": name, "operator": operator, "value": value}]])

    assert _names(answer) == expected


# -- state across a restart -------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("hubspot", SPEC.sandbox, tmp_path / "hubspot.json") as running:
        yield running


def person(contact: Contact) -> tuple[str, str | None, str | None, str | None]:
    return (contact.id, contact.name, contact.phone, contact.email)


async def test_after_a_restart_the_connector_finds_the_same_contact_note_and_call_with_the_token_it_had(
    restart: Restart,
) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    ada = await before.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE, email="ada@example.com"))
    note = await before.add_note(ada.id, "Wants a cleaning on Monday", idempotency_key="call-1:add_note")
    logged = await before.log_call(ada.id, a_call())

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    # The same vault: it holds the access token the first emulator issued, valid for 30 minutes.
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert [person(c) for c in await after.find_contacts(phone=PHONE)] == [person(ada)]
    assert person(await after.create_contact(ContactDraft(name="Ada Lovelace", email="ada@example.com"))) == person(ada)
    again = await after.add_note(
        ada.id, "Wants a cleaning on Monday", idempotency_key="call-1:add_note", earlier_attempt_at=NOW
    )
    assert (again.id, again.body) == (note.id, note.body)
    assert (await after.log_call(ada.id, a_call())).id == logged.id
    grace = await after.create_contact(ContactDraft(name="Grace Hopper", phone="+12125550143"))
    assert int(grace.id) > max(int(ada.id), int(note.id), int(logged.id))
    assert sent(restart.after, "POST", "/oauth/v1/token") == []
    _, dump_at_the_end = await restart.dumps()
    assert (len(dump_at_the_end["notes"]), len(dump_at_the_end["calls"])) == (1, 1)


def test_a_snapshot_keeps_record_times_to_the_microsecond_and_the_next_record_id(state: HubSpotState) -> None:
    ada = state.add_contact({"firstname": "Ada", "phone": PHONE}, searchable=False)
    seed_note(state, ada.id, "Wants a cleaning", NOW)
    seed_call(state, ada.id, a_call())
    restored = HubSpotState()

    restored.restore(json.loads(json.dumps(state.snapshot())))

    assert restored.dump() == state.dump()
    kept = restored.contacts[ada.id]
    assert (kept.created_at, kept.updated_at, kept.searchable) == (ada.created_at, ada.updated_at, False)
    assert kept.created_at.utcoffset() == timedelta(0)
    assert restored.notes.contacts_of(restored.dump()["notes"][0]["id"]) == [ada.id]
    assert restored.add_contact({"firstname": "Grace"}).id == state.add_contact({"firstname": "Grace"}).id


def test_an_access_token_keeps_its_expiry_across_a_snapshot_and_an_expired_one_stays_expired(
    state: HubSpotState,
) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": SANDBOX_REFRESH_TOKEN}
    form |= {"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
    live = state.refresh(form)["access_token"]
    stale = state.refresh(form)["access_token"]
    state.access_tokens[stale] = time.monotonic() - 1
    restored = HubSpotState()

    restored.restore(json.loads(json.dumps(state.snapshot())))

    restored.authenticate(f"Bearer {live}")
    assert abs(restored.access_tokens[live] - state.access_tokens[live]) < 1
    with pytest.raises(HubSpotError) as raised:
        restored.authenticate(f"Bearer {stale}")
    assert raised.value.body["category"] == "EXPIRED_AUTHENTICATION"


def test_a_snapshot_shares_nothing_with_the_live_portal(state: HubSpotState) -> None:
    ada = state.add_contact({"firstname": "Ada"})
    snapshot = state.snapshot()

    snapshot["contacts"][0]["properties"]["firstname"] = "Eve"
    snapshot["contacts"].clear()

    assert state.contacts[ada.id].properties["firstname"] == "Ada"


def _saved_record(**fields: Any) -> dict[str, Any]:
    stamp = NOW.isoformat()
    record = {"id": "1001", "properties": {}, "created_at": stamp, "updated_at": stamp, "searchable": True}
    return {**record, "associations": [], **fields}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"contacts": [_saved_record(), _saved_record()], "next_id": 1002}, ValueError),
        ({"contacts": [_saved_record(id="1005")], "next_id": 1005}, ValueError),
        ({"contacts": [_saved_record(id="ada")]}, ValueError),
        ({"contacts": [_saved_record(created_at="2026-03-04T15:00:00")]}, ValueError),
        ({"notes": [_saved_record(associations=[{"types": []}])]}, KeyError),
        ({"access_tokens": {"token": "never"}}, ValueError),
    ],
    ids=[
        "a later version",
        "a repeated id",
        "an id the counter would hand out again",
        "an id that is not a number",
        "a time without an offset",
        "an association without a target",
        "an expiry as text",
    ],
)
def test_a_snapshot_this_portal_did_not_write_is_refused_and_leaves_the_portal_as_it_was(
    state: HubSpotState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.add_contact({"firstname": "Ada"})
    snapshot = {**state.snapshot(), "next_id": 2000, "contacts": [], **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
