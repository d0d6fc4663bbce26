"""One contact per caller, whatever the concurrency: claims in the database, not locks in a process.

Two `Services` on one database stand for two server processes: each builds its own connector,
so nothing in one process's memory protects the other. The HubSpot emulator answers creates
slowly, so unguarded creates would overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from integrations.capabilities import ContactDraft, CrmProvider
from integrations.common.sandbox import Fault
from integrations.hubspot import SPEC as HUBSPOT
from tests.conftest import NOW
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.clock import fixed_clock
from tool_server.dispatch import CallInfo
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.tables import ContactClaimRow

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

CALLER = "+14155550123"


@pytest.fixture
async def second_server(settings: ServerSettings) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=fixed_clock(NOW))
    yield built
    await built.aclose()


@pytest.fixture
async def agent(services: Services, sandboxes: ServedSandboxes) -> CreatedAgent:
    sandbox = HUBSPOT.sandbox_connection(sandboxes.url("hubspot"))
    return await services.agents.create(
        "Test Dental",
        timezone="America/New_York",
        phone_region="US",
        connections=[Connection(capability="crm", provider="hubspot", settings=sandbox.settings)],
        secrets={"crm": sandbox.secrets},
    )


def _contacts(sandboxes: ServedSandboxes) -> list[dict[str, object]]:
    return list(sandboxes.sandboxes["hubspot"].state.dump()["contacts"])


def _slow_creates(sandboxes: ServedSandboxes) -> None:
    sandboxes.sandboxes["hubspot"].inject(
        Fault(kind="slow", seconds=0.3, times=0, path="/crm/v3/objects/contacts", method="POST")
    )


async def test_without_claims_two_processes_racing_on_one_new_caller_would_make_two_contacts(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    # The control: the bare connectors, each safe only within its own process.
    _slow_creates(sandboxes)
    first = services.providers.build(agent.agent, "crm")
    second = second_server.providers.build(agent.agent, "crm")
    assert isinstance(first, CrmProvider)
    assert isinstance(second, CrmProvider)

    await asyncio.gather(
        first.create_contact(ContactDraft(name="Jane", phone=CALLER)),
        second.create_contact(ContactDraft(name="Jane", phone=CALLER)),
    )

    assert len(_contacts(sandboxes)) == 2


async def test_ten_create_contact_calls_across_two_processes_make_one_contact(
    services: Services, second_server: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    _slow_creates(sandboxes)
    servers = [services, second_server]

    outcomes = await asyncio.gather(
        *(
            servers[n % 2].dispatcher.execute(
                agent.agent,
                "create_contact",
                {"contact_name": "Jane Doe", "contact_phone": CALLER},
                CallInfo(transport="http", call_id=f"call-{n}"),
            )
            for n in range(10)
        )
    )

    assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes if not o.ok]
    assert len(_contacts(sandboxes)) == 1
    assert len({outcome.result["contact"]["contact_id"] for outcome in outcomes if outcome.result}) == 1
    assert [outcome.result["created"] for outcome in outcomes if outcome.result].count(True) == 1


async def test_a_contact_the_crm_search_has_not_indexed_yet_is_found_through_the_claim(
    services: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    contacts = services.providers.for_agent(agent.agent).contacts()
    first = await contacts.save(ContactDraft(name="Jane", phone=CALLER))
    # HubSpot's search lags its writes by seconds; the emulator can hide a record from search.
    sandboxes.sandboxes["hubspot"].state.contacts[first.contact.id].searchable = False

    again = await contacts.save(ContactDraft(name="Jane Doe", phone=CALLER, email="jane@example.com"))

    assert again.contact.id == first.contact.id
    assert again.created is False
    assert len(_contacts(sandboxes)) == 1


async def test_a_claim_left_by_a_process_that_died_lapses_and_the_next_caller_goes_on(
    services: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    contacts = services.providers.for_agent(agent.agent).contacts()
    claims = services.providers.contact_claims
    dead = await claims.claim(contacts.connection_key, [f"phone:{CALLER}"], wait_seconds=1)
    # Its lease ran out: the process that took it died mid-create.
    lapsed = datetime.now(UTC) - timedelta(seconds=1)
    await services.db.execute(
        lambda c: c.execute(
            update(ContactClaimRow).where(ContactClaimRow.holder == dead.holder).values(held_until=lapsed)
        )
    )

    saved = await contacts.save(ContactDraft(name="Jane", phone=CALLER))

    assert saved.created is True
    assert len(_contacts(sandboxes)) == 1


async def test_a_caller_waiting_on_a_live_claim_gets_a_retryable_error_when_it_outlasts_the_wait(
    settings: ServerSettings, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    # A short create_contact deadline, so the wait ends in two seconds rather than ten.
    quick = Services.build(
        settings.model_copy(update={"tool_deadlines": {"create_contact": 2.0}}), clock=fixed_clock(NOW)
    )
    contacts = quick.providers.for_agent(agent.agent).contacts()
    await quick.providers.contact_claims.claim(contacts.connection_key, [f"phone:{CALLER}"], wait_seconds=1)

    try:
        outcome = await quick.dispatcher.execute(
            agent.agent, "create_contact", {"contact_phone": CALLER}, CallInfo(transport="http", call_id="call-late")
        )
    finally:
        await quick.aclose()

    assert outcome.error is not None
    assert outcome.error.retryable is True
    assert _contacts(sandboxes) == []


async def test_notes_added_at_once_by_two_processes_to_a_crm_with_one_notes_field_are_both_kept(
    services: Services, second_server: Services, sandboxes: ServedSandboxes
) -> None:
    from integrations.housecall_pro import SPEC as HOUSECALL_PRO
    from integrations.housecall_pro.mappers import parse_notes

    sandbox = HOUSECALL_PRO.sandbox_connection(sandboxes.url("housecall_pro"))
    created = await services.agents.create(
        "HVAC",
        timezone="America/New_York",
        phone_region="US",
        connections=[Connection(capability="crm", provider="housecall_pro", settings=sandbox.settings)],
        secrets={"crm": sandbox.secrets},
    )
    first = services.providers.for_agent(created.agent).contacts()
    second = second_server.providers.for_agent(created.agent).contacts()
    customer = (await first.save(ContactDraft(name="Jane Doe", phone=CALLER))).contact
    # Slow reads: both processes read the field before either writes it back.
    sandboxes.sandboxes["housecall_pro"].inject(Fault(kind="slow", seconds=0.3, times=0, method="GET"))

    await asyncio.gather(
        first.add_note(customer.id, "Asked about a furnace tune-up.", idempotency_key="call-1"),
        second.add_note(customer.id, "Wants a quote for a heat pump.", idempotency_key="call-2"),
    )

    stored = next(c for c in sandboxes.sandboxes["housecall_pro"].state.dump()["customers"] if c["id"] == customer.id)
    assert sorted(text for _token, _at, text in parse_notes(stored["notes"])) == [
        "Asked about a furnace tune-up.",
        "Wants a quote for a heat pump.",
    ]


async def test_a_caller_matching_two_contacts_gets_the_phone_match_and_no_email_taken_from_the_other(
    services: Services, agent: CreatedAgent, sandboxes: ServedSandboxes
) -> None:
    state = sandboxes.sandboxes["hubspot"].state
    by_phone = state.seed_contact(name="Jane Doe", phone="(415) 555-0123")
    by_email = state.seed_contact(name="J. Doe", email="jane@example.com")
    contacts = services.providers.for_agent(agent.agent).contacts()

    saved = await contacts.save(ContactDraft(name="Jane Doe", phone=CALLER, email="jane@example.com"))

    assert saved.created is False
    assert saved.contact.id == by_phone
    assert (await contacts.get_contact(by_phone)).email is None
    assert (await contacts.get_contact(by_email)).email == "jane@example.com"
    assert len(_contacts(sandboxes)) == 2
