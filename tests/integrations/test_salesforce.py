"""The Salesforce connector against its emulator on a real 127.0.0.1 socket; the emulator against Salesforce's spec."""

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
from integrations.common.spec import Checkable
from integrations.common.vault import MemoryVault
from integrations.salesforce import SPEC, SalesforceConnector, mappers
from integrations.salesforce.errors import DAILY_LIMIT_WAIT, api_usage, translate
from integrations.salesforce.queries import soql_like, soql_string, sosl_search, sosl_term
from integrations.salesforce.sandbox import INSTANCE_PATH
from integrations.salesforce.sandbox_query import QueryError, parse_soql, parse_sosl, run_soql
from integrations.salesforce.sandbox_state import (
    FIELDS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    SalesforceState,
)
from tests.integrations.sandbox_restarts import Restart, restartable
from tests.support.provider_kit import NOW, TYPED_PHONES, emulator_fixtures, requests_to
from tests.support.provider_kit import connect as kit_connect
from tests.support.specs import OpenApi

PHONE = "+14155550123"
API = f"{INSTANCE_PATH}/services/data/v59.0"
TOKEN_PATH = "/services/oauth2/token"
SOBJECTS_SPEC = "salesforce/sobjects-oas.v59.contact-lead-task-event-account.json"
POSTMAN = "salesforce/postman-2021.rest-composite-auth.json"
STARTED = datetime(2026, 3, 4, 9, 52, 7, 123456, tzinfo=ZoneInfo("America/New_York"))
# What a caller (or a confused speech-to-text) may hand the tools, aimed at SOQL and SOSL.
HOSTILE = ["' OR Name LIKE '%", "} OR {", "%", "*", "\\", "x' OR Email != '", '"} IN ALL FIELDS RETURNING Lead(Id) {"']


# -- fixtures -----------------------------------------------------------------------------------------


sandbox, served, base_url, vault = emulator_fixtures(SPEC)


@pytest.fixture(autouse=True)
def _fresh_org(sandbox: Sandbox) -> None:
    sandbox.reset()


@pytest.fixture
def state(sandbox: Sandbox) -> SalesforceState:
    assert isinstance(sandbox.state, SalesforceState)
    return sandbox.state


@pytest.fixture
def crm(base_url: str, vault: MemoryVault) -> SalesforceConnector:
    return connect(base_url, vault)


def connect(base_url: str, vault: MemoryVault, **settings: Any) -> SalesforceConnector:
    connector = kit_connect(SPEC, base_url, vault, **settings)
    assert isinstance(connector, SalesforceConnector)
    return connector


def sent(sandbox: Sandbox, method: str, path: str) -> list[RecordedRequest]:
    return requests_to(sandbox, method, path)


def a_call(**changes: Any) -> CallActivity:
    fields: dict[str, Any] = {
        "title": "Inbound call: booked a cleaning",
        "body": "Booked a cleaning for Monday 9:00.",
        "started_at": STARTED,
        "duration_seconds": 184.5,
        "direction": "inbound",
        "caller_phone": PHONE,
    }
    return CallActivity(**{**fields, **changes})


def api_client(base_url: str, state: SalesforceState) -> httpx.Client:
    """A plain HTTP client on the emulator's REST API with a freshly issued session."""
    token = state.issue_token(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REFRESH_TOKEN)
    return httpx.Client(base_url=f"{base_url}{API}", headers={"Authorization": f"Bearer {token}"})


# -- the integration as the registry sees it ----------------------------------------------------------


def test_the_spec_describes_an_oauth_crm_provider_with_sandbox_credentials(base_url: str) -> None:
    conn = SPEC.sandbox_connection(base_url)

    assert (SPEC.name, SPEC.capabilities, SPEC.auth) == ("salesforce", frozenset({"crm"}), "oauth")
    assert SPEC.required_secrets == ("client_id", "client_secret", "refresh_token")
    assert "instance_url" in SPEC.optional_secrets
    assert conn.settings == {"base_url": base_url}


def test_the_connector_is_a_crm_provider_with_a_call_log_that_can_check_its_connection(
    crm: SalesforceConnector,
) -> None:
    assert isinstance(crm, CrmProvider)
    assert isinstance(crm, CallActivityLog)
    assert isinstance(crm, Checkable)


def test_settings_default_to_the_production_login_host_and_refuse_unknown_fields() -> None:
    settings = SPEC.settings_model.model_validate({})
    assert settings.model_dump() == {
        "base_url": "https://login.salesforce.com",
        "api_version": "v59.0",
        "create_as": "contact",
        "lead_company": "Phone caller",
    }
    with pytest.raises(ValueError, match="extra"):
        SPEC.settings_model.model_validate({"instance_url": "https://x.my.salesforce.com"})
    with pytest.raises(ValueError, match="create_as"):
        SPEC.settings_model.model_validate({"create_as": "account"})


async def test_check_connection_logs_in_keeps_the_instance_url_and_reports_api_usage(
    crm: SalesforceConnector, vault: MemoryVault, base_url: str, sandbox: Sandbox
) -> None:
    answer = await crm.check_connection()

    assert answer == "salesforce org reachable, 1 of 15000 daily API requests used"
    assert vault.secrets["instance_url"] == f"{base_url}{INSTANCE_PATH}"
    assert vault.secrets["access_token"]
    assert crm.api_usage == (1, 15000)
    assert [r.path for r in sandbox.provider_requests()] == [TOKEN_PATH, f"{API}/sobjects/Contact/"]


# -- finding callers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", TYPED_PHONES)
async def test_a_contact_typed_in_any_phone_format_is_found_by_its_e164_number(
    crm: SalesforceConnector, state: SalesforceState, typed: str
) -> None:
    seeded = state.seed_contact(name="Jane Doe", phone=typed)

    found = await crm.find_contacts(phone=PHONE)

    assert [(c.id, c.phone, c.name) for c in found] == [(seeded, PHONE, "Jane Doe")]


async def test_a_number_one_digit_away_or_in_another_country_is_not_the_caller(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    state.seed_contact(name="London", phone="+44 20 7455 5012")

    assert await crm.find_contacts(phone="+14155550124") == []
    assert [c.name for c in await crm.find_contacts(phone="+442074555012")] == ["London"]
    assert [c.name for c in await crm.find_contacts(phone="+14155550123")] == ["Jane Doe"]


async def test_the_emulator_matches_phone_digits_exactly_so_the_connector_asks_for_both_forms(
    crm: SalesforceConnector, sandbox: Sandbox
) -> None:
    await crm.find_contacts(phone=PHONE)

    [search] = sent(sandbox, "GET", f"{API}/search/")
    assert search.query["q"][0].startswith('FIND {"4155550123" OR "14155550123"} IN PHONE FIELDS RETURNING Contact(')


async def test_leads_are_found_too_and_the_configured_kind_comes_first(
    base_url: str, vault: MemoryVault, state: SalesforceState
) -> None:
    lead = state.create("Lead", {"LastName": "Lead", "Company": "Acme", "Phone": "415 555 0123"})
    contact = state.seed_contact(name="Jane Contact", phone="(415) 555-0123")

    as_contacts = await connect(base_url, vault).find_contacts(phone=PHONE)
    as_leads = await connect(base_url, vault, create_as="lead").find_contacts(phone=PHONE)

    assert [c.id for c in as_contacts] == [contact, lead]
    assert [c.id for c in as_leads] == [lead, contact]


async def test_email_matches_whole_addresses_in_any_case_and_phone_matches_come_first(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    by_email = state.seed_contact(name="By Email", email="Jane.Doe+x@Example.com")
    by_phone = state.seed_contact(name="By Phone", phone="4155550123")
    state.seed_contact(name="Other", email="doe+x@example.com")

    found = await crm.find_contacts(phone=PHONE, email="jane.doe+x@example.com")

    assert [c.id for c in found] == [by_phone, by_email]
    assert found[1].email == "jane.doe+x@example.com"


async def test_find_without_a_phone_or_email_asks_salesforce_nothing(
    crm: SalesforceConnector, sandbox: Sandbox
) -> None:
    assert await crm.find_contacts() == []
    assert sandbox.provider_requests() == []


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_query_syntax_from_a_caller_finds_nothing_and_breaks_nothing(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox, hostile: str
) -> None:
    state.seed_contact(name="Jane Doe", phone="(415) 555-0123", email="jane@example.com")
    state.seed_contact(name="Bob Roe", phone="212-555-0142", email="bob@example.com")

    assert await crm.find_contacts(email=hostile) == []
    assert await crm.find_contacts(phone=hostile) == []
    created = await crm.create_contact(ContactDraft(name=hostile, email=f"{hostile}@example.com"))

    assert created.id not in {c["Id"] for c in state.dump()["contacts"][:2]}
    assert created.email == f"{hostile}@example.com".lower()
    assert (await crm.get_contact(created.id)).name == hostile.strip() or hostile.strip() == ""
    assert len(state.dump()["contacts"]) == 3
    # Every query the emulator received parsed: no 400 was answered.
    assert all(r.method != "GET" or "q" not in r.query or _parses(r.query["q"][0]) for r in sandbox.provider_requests())


def _parses(text: str) -> bool:
    fields = {name.lower(): fields for name, fields in FIELDS.items()}
    try:
        (parse_sosl if text.startswith("FIND") else parse_soql)(text, lambda name: fields.get(name.lower()))
    except QueryError:
        return False
    return True


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELECT Id FROM Contact WHERE Email = '' OR Name LIKE '%'", None),
        ("SELECT Id FROM Contact WHERE Email = ''' OR Name LIKE '%'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Nickname = 'a'", "INVALID_FIELD"),
        ('FIND {"x"} OR {"y"} IN EMAIL FIELDS RETURNING Contact(Id)', "MALFORMED_SEARCH"),
        ('FIND {"jane@example.com" OR "} IN EMAIL FIELDS RETURNING Contact(Id)', "MALFORMED_SEARCH"),
        ('FIND {"a-b"} IN EMAIL FIELDS RETURNING Contact(Id)', "MALFORMED_SEARCH"),
    ],
    ids=[
        "injected OR widens the match",
        "stray quote",
        "AND with OR",
        "no such field",
        "two terms",
        "open brace",
        "bare minus",
    ],
)
def test_the_emulator_parses_each_query_as_salesforce_would(
    base_url: str, state: SalesforceState, query: str, code: str | None
) -> None:
    state.seed_contact(name="Jane Doe", email="jane@example.com")
    state.seed_contact(name="Bob Roe", email="bob@example.com")
    path = "/search/" if query.startswith("FIND") else "/query/"

    with api_client(base_url, state) as client:
        answer = client.get(path, params={"q": query})

    if code is None:
        # Unescaped, the caller's text would have returned every contact: the reason for escaping.
        assert answer.status_code == 200
        assert answer.json()["totalSize"] == 2
    else:
        assert answer.status_code == 400
        assert answer.json()[0]["errorCode"] == code
        assert set(answer.json()[0]) == {"message", "errorCode", "fields"}


def test_escaping_turns_every_reserved_character_into_a_literal() -> None:
    assert soql_string("' OR Name LIKE '%") == "'\\' OR Name LIKE \\'%'"
    assert soql_string("a\\b\n") == "'a\\\\b\\n'"
    assert soql_like("50%_off") == "'50\\%\\_off'"
    assert sosl_term("} OR {") == "\\} OR \\{"
    assert sosl_term("a+b-c@d.com") == "a\\+b\\-c@d.com"
    search = sosl_search(["} OR {x"], "EMAIL", [("Contact", ["Id"])])
    parsed = parse_sosl(search, lambda name: FIELDS.get(name))
    assert parsed.words == ("} OR {x",)


def test_an_escaped_like_pattern_matches_only_itself() -> None:
    records = [{"Id": "1", "Email": "50%_off@x.com"}, {"Id": "2", "Email": "50abcoff@x.com"}]
    query = parse_soql(f"SELECT Id FROM Contact WHERE Email LIKE {soql_like('50%_off@x.com')}", FIELDS.get)

    assert [r["Id"] for r in run_soql(query, records)] == ["1"]


# -- creating and updating ------------------------------------------------------------------------------


async def test_creating_twice_with_the_same_phone_keeps_one_contact_and_fills_blanks_only(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    first = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))
    again = await crm.create_contact(ContactDraft(name="Jane Doe", phone=PHONE, email="Jane@Example.com"))
    by_email = await crm.create_contact(ContactDraft(email="jane@example.com"))

    assert first.id == again.id == by_email.id
    assert (again.name, again.phone, again.email) == ("Jane", PHONE, "jane@example.com")
    [stored] = state.dump()["contacts"]
    assert (stored["LastName"], stored["Phone"], stored["Email"]) == ("Jane", PHONE, "Jane@Example.com")


async def test_a_caller_typed_in_by_staff_is_found_not_created_again(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    seeded = state.seed_contact(name="Jane Doe", phone="1 (415) 555-0123")

    created = await crm.create_contact(ContactDraft(name="Janet", phone=PHONE, email="jane@example.com"))

    assert created.id == seeded
    assert created.name == "Jane Doe"
    assert state.find("Contact", seeded)["Phone"] == "1 (415) 555-0123"  # type: ignore[index]


async def test_a_caller_without_a_name_gets_salesforces_placeholder_and_their_name_later(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    nameless = await crm.create_contact(ContactDraft(phone=PHONE))
    assert nameless.name is None
    assert state.dump()["contacts"][0]["LastName"] == mappers.NOT_PROVIDED

    named = await crm.create_contact(ContactDraft(name="Mary Ann Smith", phone=PHONE))

    assert (named.id, named.name) == (nameless.id, "Mary Ann Smith")
    stored = state.dump()["contacts"][0]
    assert (stored["FirstName"], stored["LastName"]) == ("Mary Ann", "Smith")


async def test_a_lead_connection_creates_leads_with_the_configured_company(
    base_url: str, vault: MemoryVault, state: SalesforceState
) -> None:
    crm = connect(base_url, vault, create_as="lead", lead_company="Walk-in")

    lead = await crm.create_contact(ContactDraft(name="Jane Doe", phone=PHONE))

    assert lead.id.startswith("00Q")
    [stored] = state.dump()["leads"]
    assert (stored["Company"], stored["LeadSource"], stored["Status"]) == (
        "Walk-in",
        "Phone Inquiry",
        "Open - Not Contacted",
    )
    assert state.dump()["contacts"] == []
    assert (await crm.get_contact(lead.id)).name == "Jane Doe"
    assert (await crm.update_contact(lead.id, ContactDraft(email="j@example.com"))).email == "j@example.com"


async def test_concurrent_creates_for_one_caller_make_one_contact(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    made = await asyncio.gather(*(crm.create_contact(ContactDraft(name="Jane", phone=PHONE)) for _ in range(4)))

    assert len({c.id for c in made}) == 1
    assert len(state.dump()["contacts"]) == 1


async def test_a_create_is_found_by_soql_while_sosls_index_has_not_caught_up(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    first = await crm.create_contact(ContactDraft(name="Jane", email="jane@example.com"))
    # Salesforce indexes new records for SOSL asynchronously: the search may not see it yet.
    state.unindexed.add(first.id)

    again = await crm.create_contact(ContactDraft(name="Jane", email="jane@example.com"))

    assert again.id == first.id
    assert len(sent(sandbox, "GET", f"{API}/query/")) >= 2


async def test_update_changes_only_the_given_fields(crm: SalesforceConnector, state: SalesforceState) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane Doe", phone=PHONE))

    updated = await crm.update_contact(contact.id, ContactDraft(email="jane@example.com"))
    renamed = await crm.update_contact(contact.id, ContactDraft(name="Cher"))

    assert (updated.name, updated.phone, updated.email) == ("Jane Doe", PHONE, "jane@example.com")
    stored = state.dump()["contacts"][0]
    assert (renamed.name, stored["FirstName"], stored["LastName"]) == ("Cher", None, "Cher")


@pytest.mark.parametrize("unknown", ["999999999", "003Sb0000000099XAA", "00TSb0000000001AAA", "' OR Name LIKE '%"])
async def test_an_unknown_or_malformed_id_is_not_found_and_nothing_is_written(
    crm: SalesforceConnector, state: SalesforceState, unknown: str
) -> None:
    with pytest.raises(NotFoundError):
        await crm.get_contact(unknown)
    with pytest.raises(NotFoundError):
        await crm.update_contact(unknown, ContactDraft(name="X"))
    with pytest.raises(NotFoundError):
        await crm.add_note(unknown, "hello")
    with pytest.raises(NotFoundError):
        await crm.log_call(unknown, a_call())
    assert state.dump()["tasks"] == []


async def test_a_15_character_id_finds_the_same_record(crm: SalesforceConnector) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    assert (await crm.get_contact(contact.id[:15])).id == contact.id


# -- notes and calls ------------------------------------------------------------------------------------


async def test_a_note_is_a_completed_task_on_the_contact(crm: SalesforceConnector, state: SalesforceState) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    note = await crm.add_note(contact.id, "Asked about whitening.\nCall back Monday.")

    [task] = state.dump()["tasks"]
    assert (note.id, note.contact_id, note.body) == (task["Id"], contact.id, task["Description"])
    assert (task["WhoId"], task["Subject"], task["Status"], task["IsClosed"], task["TaskSubtype"]) == (
        contact.id,
        "Asked about whitening.",
        "Completed",
        True,
        "Task",
    )
    assert task["ActivityDate"] == "2026-03-04"


async def test_a_note_written_before_a_crash_is_returned_when_earlier_attempt_at_is_given(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))
    first = await crm.add_note(contact.id, "Asked about whitening.", idempotency_key="k")

    again = await crm.add_note(contact.id, "Asked about whitening.", idempotency_key="k", earlier_attempt_at=NOW)
    other = await crm.add_note(contact.id, "Something else.", idempotency_key="k2", earlier_attempt_at=NOW)
    plain = await crm.add_note(contact.id, "Asked about whitening.")

    assert again.id == first.id
    assert len({first.id, other.id, plain.id}) == 3
    assert len(state.dump()["tasks"]) == 3
    [lookup, *_] = [r for r in sent(sandbox, "GET", f"{API}/query/") if "FROM Task" in r.query["q"][0]]
    assert "CreatedDate >= 2026-03-04T14:55:00Z" in lookup.query["q"][0]


async def test_a_note_older_than_the_earlier_attempt_is_not_taken_for_it(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))
    state.clock = lambda: NOW - timedelta(minutes=10)
    old = await crm.add_note(contact.id, "Asked about whitening.")
    state.clock = lambda: datetime.now(UTC)

    again = await crm.add_note(contact.id, "Asked about whitening.", earlier_attempt_at=NOW)

    assert again.id != old.id


async def test_a_failed_note_lookup_raises_and_writes_nothing(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))
    sandbox.inject(Fault(kind="server_error", times=0, path="/query/"))

    with deadline_scope(2), pytest.raises(UpstreamError):
        await crm.add_note(contact.id, "hello", earlier_attempt_at=NOW)

    assert state.dump()["tasks"] == []


async def test_a_note_is_not_repeated_after_a_server_error_on_its_create(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))
    sandbox.inject(Fault(kind="server_error", times=0, path="/sobjects/Task/", method="POST"))

    with pytest.raises(UpstreamError) as caught:
        await crm.add_note(contact.id, "hello")

    assert (caught.value.status, caught.value.retryable) == (503, False)
    assert len(sent(sandbox, "POST", f"{API}/sobjects/Task/")) == 1


async def test_a_call_is_logged_as_a_call_task_once(crm: SalesforceConnector, state: SalesforceState) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    logged = await crm.log_call(contact.id, a_call())
    again = await crm.log_call(contact.id, a_call(started_at=STARTED.astimezone(UTC)))
    other = await crm.log_call(contact.id, a_call(started_at=STARTED + timedelta(hours=1)))

    assert (logged.created, again.created, other.created) == (True, False, True)
    assert again.id == logged.id != other.id
    task = next(t for t in state.dump()["tasks"] if t["Id"] == logged.id)
    assert {k: task[k] for k in ("TaskSubtype", "CallType", "CallDurationInSeconds", "Status", "ActivityDate")} == {
        "TaskSubtype": "Call",
        "CallType": "Inbound",
        "CallDurationInSeconds": 184,
        "Status": "Completed",
        "ActivityDate": "2026-03-04",
    }
    assert (task["Subject"], task["CallObject"]) == (
        "Inbound call: booked a cleaning",
        "voice-agent:2026-03-04T14:52:07.123Z",
    )


async def test_logging_the_same_call_concurrently_logs_it_once(
    crm: SalesforceConnector, state: SalesforceState
) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    results = await asyncio.gather(*(crm.log_call(contact.id, a_call()) for _ in range(3)))

    assert [r.created for r in results].count(True) == 1
    assert len(state.dump()["tasks"]) == 1


# -- OAuth --------------------------------------------------------------------------------------------------


async def test_an_expired_session_is_refreshed_once_and_the_call_retried(
    crm: SalesforceConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await crm.check_connection()
    stale = vault.secrets["access_token"]
    sandbox.inject(Fault(kind="expire_access_tokens"))

    assert await crm.find_contacts(phone=PHONE) == []

    assert vault.secrets["access_token"] != stale
    assert len(sent(sandbox, "POST", TOKEN_PATH)) == 2
    assert vault.expired_reason is None


async def test_a_revoked_refresh_token_marks_the_connection_expired(
    crm: SalesforceConnector, vault: MemoryVault, sandbox: Sandbox
) -> None:
    await crm.check_connection()
    sandbox.inject(Fault(kind="revoke_refresh_tokens"))
    sandbox.inject(Fault(kind="expire_access_tokens"))

    with pytest.raises(ProviderNotConnectedError):
        await crm.find_contacts(phone=PHONE)

    assert vault.expired_reason is not None
    assert "invalid_grant" in vault.expired_reason


async def test_the_token_endpoint_answers_as_salesforce_does(base_url: str) -> None:
    form = {"grant_type": "refresh_token", "client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
    async with httpx.AsyncClient() as client:
        good = await client.post(f"{base_url}{TOKEN_PATH}", data={**form, "refresh_token": SANDBOX_REFRESH_TOKEN})
        bad = await client.post(f"{base_url}{TOKEN_PATH}", data={**form, "refresh_token": "nope"})
        wrong_app = await client.post(
            f"{base_url}{TOKEN_PATH}", data={**form, "client_id": "x", "refresh_token": SANDBOX_REFRESH_TOKEN}
        )

    assert good.status_code == 200
    assert set(good.json()) == {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}
    assert good.json()["instance_url"] == f"{base_url}{INSTANCE_PATH}"
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "expired access/refresh token"},
    )
    assert wrong_app.json()["error"] == "invalid_client_id"


async def test_a_stored_token_without_its_instance_url_is_refreshed_to_learn_the_host(
    base_url: str, state: SalesforceState
) -> None:
    vault = MemoryVault({**SPEC.sandbox_connection(base_url).secrets, "access_token": "00Dxx!old"})

    await connect(base_url, vault).check_connection()

    assert vault.secrets["instance_url"] == f"{base_url}{INSTANCE_PATH}"
    assert vault.secrets["access_token"] != "00Dxx!old"


def test_requests_without_a_valid_session_get_invalid_session_id(base_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer 00Dxx!forged"}):
        answer = httpx.get(f"{base_url}{API}/sobjects/Contact/", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
        ]


# -- limits and faults ----------------------------------------------------------------------------------


async def test_one_rate_limit_with_retry_after_is_waited_out(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1, times=1, path="/search/"))
    started = time.monotonic()

    created = await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    assert time.monotonic() - started >= 0.9
    assert len(state.dump()["contacts"]) == 1
    assert created.phone == PHONE


def test_an_injected_rate_limit_is_request_limit_exceeded_with_retry_after(base_url: str, sandbox: Sandbox) -> None:
    sandbox.inject(Fault(kind="rate_limit", retry_after=1))

    answer = httpx.get(f"{base_url}{API}/sobjects/Contact/")

    assert (answer.status_code, answer.headers["retry-after"]) == (403, "1")
    assert answer.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


async def test_the_daily_limit_spent_is_a_rate_limit_not_retried_within_the_call(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    await crm.check_connection()
    state.api_limit = state.api_used

    with deadline_scope(5), pytest.raises(RateLimitedError) as caught:
        await crm.find_contacts(phone=PHONE)

    assert caught.value.retry_after == DAILY_LIMIT_WAIT
    assert len(sent(sandbox, "GET", f"{API}/search/")) == 1
    assert crm.api_usage == (state.api_used, state.api_limit)


def test_the_limit_header_is_read() -> None:
    assert api_usage({"sforce-limit-info": "api-usage=25/15000"}) == (25, 15000)
    assert api_usage({"sforce-limit-info": "per-app-api-usage=1/10(appName=x), api-usage=7/9"}) == (7, 9)
    assert api_usage({}) is None
    assert isinstance(translate(403, b'[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"x"}]', {}), RateLimitedError)
    assert isinstance(translate(404, b'[{"errorCode":"NOT_FOUND","message":"x"}]', {}, ("contact", "1")), NotFoundError)


async def test_a_persistent_server_error_raises_a_retryable_upstream_error_within_the_deadline(
    crm: SalesforceConnector, sandbox: Sandbox
) -> None:
    await crm.check_connection()
    sandbox.inject(Fault(kind="server_error", status=503, times=0))
    started = time.monotonic()

    with deadline_scope(2), pytest.raises(UpstreamError) as caught:
        await crm.find_contacts(phone=PHONE)

    assert time.monotonic() - started < 2.5
    assert (caught.value.status, caught.value.retryable) == (503, True)
    assert len(sent(sandbox, "GET", f"{API}/search/")) >= 2


async def test_a_create_is_not_repeated_after_a_server_error(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    sandbox.inject(Fault(kind="server_error", times=0, path="/sobjects/Contact/", method="POST"))

    with pytest.raises(UpstreamError) as caught:
        await crm.create_contact(ContactDraft(name="Jane", phone=PHONE))

    assert caught.value.retryable is False
    assert len(sent(sandbox, "POST", f"{API}/sobjects/Contact/")) == 1


async def test_an_unreachable_org_is_a_retryable_upstream_error() -> None:
    vault = MemoryVault({"access_token": "00Dxx!t", "instance_url": "http://127.0.0.1:9", "refresh_token": "r"})
    crm = connect("http://127.0.0.1:9", vault)

    with deadline_scope(1), pytest.raises(UpstreamError) as caught:
        await crm.get_contact("003Sb0000000001IAA")

    assert caught.value.retryable is True
    assert "127.0.0.1" not in str(caught.value)


# -- the spec ---------------------------------------------------------------------------------------------


async def test_every_request_of_a_whole_flow_is_accepted_by_salesforces_spec(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    state.seed_contact(name="Typed In", phone="(212) 555-0199")
    await crm.check_connection()
    contact = await crm.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE))
    await crm.create_contact(ContactDraft(phone=PHONE, email="ada@example.com"))
    await crm.update_contact(contact.id, ContactDraft(name="Ada King"))
    await crm.find_contacts(phone="+12125550199", email="ada@example.com")
    await crm.add_note(contact.id, "Called about a refill")
    await crm.add_note(contact.id, "Called about a refill", earlier_attempt_at=NOW)
    await crm.log_call(contact.id, a_call())

    sobjects = OpenApi(SOBJECTS_SPEC)
    postman = json.loads((Path(__file__).parent.parent / "specs" / POSTMAN).read_text())["requests"]
    templates = {
        f"{t['method']} {t['url'].split('?')[0].split('/services/data/v{{version}}')[-1].rstrip('/')}"
        for t in postman.values()
    }
    problems: list[str] = []
    paths = set()
    for request in sandbox.provider_requests():
        paths.add(f"{request.method} {request.path}")
        if request.path == TOKEN_PATH:
            assert "POST /services/oauth2/token" in {
                f"{t['method']} {t['url'].split('}}', 2)[-1]}" for t in postman.values()
            }
            assert request.body["grant_type"] == "refresh_token"
            assert set(request.body) == {"grant_type", "refresh_token", "client_id", "client_secret"}
            continue
        relative = request.path.removeprefix(API)
        if relative in ("/query/", "/search/"):
            # Not in the sObjects spec: the official Postman collection's templates.
            assert f"GET {relative.rstrip('/')}" in templates
            assert list(request.query) == ["q"]
            continue
        found = sobjects.operation(request.method, relative.rstrip("/"))
        assert found is not None, f"{request.method} {relative}"
        if isinstance(request.body, dict):
            problems += unknown_fields(sobjects, relative.split("/")[2], request.body)
        problems += sobjects.check_request(
            RecordedRequest(request.method, relative.rstrip("/"), request.query, request.headers, request.body)
        )
        for name in request.query:
            assert name in {p["name"] for p in found[1].get("parameters", [])}, name
    assert problems == []
    assert {
        f"POST {API}/sobjects/Contact/",
        f"PATCH {API}/sobjects/Contact/{contact.id}",
        f"POST {API}/sobjects/Task/",
    } <= paths


def unknown_fields(spec: OpenApi, sobject: str, body: dict[str, Any]) -> list[str]:
    """Body fields the sObject's schema does not list (its schemas leave additionalProperties open)."""
    known = spec.document["components"]["schemas"][f"{sobject}SObject"]["properties"]
    return sorted(name for name in body if name not in known)


def test_the_field_check_flags_a_field_salesforce_does_not_have() -> None:
    spec = OpenApi(SOBJECTS_SPEC)
    assert unknown_fields(spec, "Contact", {"LastName": "X", "Nickname": "Y"}) == ["Nickname"]
    assert unknown_fields(spec, "Task", mappers.call_request("003Sb0000000001IAA", a_call())) == []


def without_nulls(record: dict[str, Any]) -> dict[str, Any]:
    """Salesforce answers unset fields as null; the generated spec marks no field nullable."""
    return {name: value for name, value in record.items() if value is not None}


def test_emulator_answers_match_salesforces_schemas(base_url: str, state: SalesforceState) -> None:
    spec = OpenApi(SOBJECTS_SPEC)
    contact = state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    with api_client(base_url, state) as client:
        created = client.post("/sobjects/Task/", json=mappers.note_request(contact, "hello", NOW))
        task = client.get(f"/sobjects/Task/{created.json()['id']}")
        read = client.get(f"/sobjects/Contact/{contact}")
        info = client.get("/sobjects/Contact/")
        missing = client.get("/sobjects/Contact/003Sb0000000099XAA")
        invalid = client.post("/sobjects/Contact/", json={"FirstName": "No last name"})
        patched = client.patch(f"/sobjects/Contact/{contact}", json={"Email": "j@example.com"})

    assert (created.status_code, patched.status_code) == (201, 204)
    assert spec.validate("SaveResult", created.json()) == []
    assert spec.validate("TaskSObject", without_nulls(task.json())) == []
    assert spec.validate("ContactSObject", without_nulls(read.json())) == []
    assert spec.validate("SObjectRootInfo", info.json()) == []
    assert missing.status_code == 404
    assert [spec.validate("RestApiError", item) for item in missing.json()] == [[]]
    assert invalid.status_code == 400
    assert invalid.json() == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    assert [spec.validate("ErrorInfo", item) for item in invalid.json()] == [[]]


def test_soql_results_page_through_next_records_url(base_url: str, state: SalesforceState) -> None:
    for number in range(5):
        state.seed_contact(name=f"Person {number}", email="same@example.com")
    state.batch_size = 2
    with api_client(base_url, state) as client:
        pages = [client.get("/query/", params={"q": "SELECT Id FROM Contact WHERE Email = 'same@example.com'"}).json()]
        while not pages[-1]["done"]:
            pages.append(client.get(pages[-1]["nextRecordsUrl"].removeprefix("/services/data/v59.0")).json())

    assert [len(page["records"]) for page in pages] == [2, 2, 1]
    assert {page["totalSize"] for page in pages} == {5}
    assert pages[0]["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")


async def test_the_connector_follows_next_records_url(
    crm: SalesforceConnector, state: SalesforceState, sandbox: Sandbox
) -> None:
    contact = state.seed_contact(name="Jane", phone=PHONE)
    for minute in range(5):
        state.clock = lambda minute=minute: datetime.now(UTC) + timedelta(minutes=minute)
        state.create("Task", {"WhoId": contact, "Subject": "n", "Description": f"note {minute}", "Status": "Completed"})
    state.clock = lambda: datetime.now(UTC) + timedelta(minutes=10)
    state.batch_size = 2

    found = await crm.add_note(contact, "note 0", earlier_attempt_at=NOW)

    assert len(state.dump()["tasks"]) == 5
    assert found.body == "note 0"
    assert len([r for r in sandbox.provider_requests() if r.path.startswith(f"{API}/query/01g")]) == 2


# -- persistence ------------------------------------------------------------------------------------------


@pytest.fixture
def restart(tmp_path: Path) -> Iterator[Restart]:
    with restartable("salesforce", SPEC.sandbox, tmp_path / "salesforce.json") as running:
        yield running


def person(contact: Contact) -> tuple[str, str | None, str | None, str | None]:
    return (contact.id, contact.name, contact.phone, contact.email)


async def test_after_a_restart_the_connector_finds_the_same_contact_note_and_call_with_its_session(
    restart: Restart,
) -> None:
    vault = MemoryVault(SPEC.sandbox_connection(restart.url_before).secrets)
    before = connect(restart.url_before, vault)
    ada = await before.create_contact(ContactDraft(name="Ada Lovelace", phone=PHONE, email="ada@example.com"))
    note = await before.add_note(ada.id, "Wants a cleaning", idempotency_key="k")
    logged = await before.log_call(ada.id, a_call())

    restart.restart()
    dump_before, dump_after = await restart.dumps()
    # The org moved host (a new port): the session the vault holds still works there.
    vault.secrets["instance_url"] = f"{restart.url_after}{INSTANCE_PATH}"
    after = connect(restart.url_after, vault)

    assert dump_after == dump_before
    assert [person(c) for c in await after.find_contacts(phone=PHONE)] == [person(ada)]
    assert (await after.add_note(ada.id, "Wants a cleaning", idempotency_key="k", earlier_attempt_at=NOW)).id == note.id
    assert (await after.log_call(ada.id, a_call())).created is False
    assert logged.created is True
    grace = await after.create_contact(ContactDraft(name="Grace Hopper", phone="+12125550143"))
    assert grace.id not in {ada.id, note.id, logged.id}
    assert sent(restart.after, "POST", TOKEN_PATH) == []


def test_a_snapshot_round_trips_and_shares_nothing_with_the_live_org(state: SalesforceState) -> None:
    contact = state.seed_contact(name="Ada", phone="(415) 555-0123")
    state.create("Task", mappers.note_request(contact, "hello", NOW))
    snapshot = state.snapshot()
    restored = SalesforceState()

    restored.restore(json.loads(json.dumps(snapshot)))
    snapshot["records"]["Contact"][0]["LastName"] = "Eve"

    assert restored.dump() == state.dump()
    assert state.find("Contact", contact)["LastName"] == "Ada"  # type: ignore[index]
    assert restored.seed_contact(name="Grace") == state.seed_contact(name="Grace")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ValueError),
        ({"next_number": 1}, ValueError),
        ({"records": {"Contact": []}}, KeyError),
        ({"records": {"Contact": [{"Id": "ada"}], "Lead": [], "Task": []}}, ValueError),
        ({"records": {"Contact": [], "Lead": [], "Task": [{"Id": "003Sb0000000001IAA"}]}}, ValueError),
        ({"access_tokens": "all"}, ValueError),
    ],
    ids=[
        "a later version",
        "a counter below saved ids",
        "a missing object",
        "a bad id",
        "a foreign prefix",
        "tokens as text",
    ],
)
def test_a_snapshot_this_org_did_not_write_is_refused_and_leaves_it_as_it_was(
    state: SalesforceState, change: dict[str, Any], error: type[Exception]
) -> None:
    state.seed_contact(name="Ada")
    snapshot = {**state.snapshot(), **change}
    before = state.dump()

    with pytest.raises(error):
        state.restore(snapshot)

    assert state.dump() == before
