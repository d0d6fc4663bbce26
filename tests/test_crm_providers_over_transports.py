"""Each external CRM, connected to its emulator, through the tools over HTTP and MCP.

find_contact finds a contact whose phone was typed in any common format; create_contact,
retried and repeated, leaves one contact; add_note leaves one note, however often it is retried.
Where the CRM has a calendar too, check_availability and book_appointment go through it and the
booking is in the emulator once.
"""

from __future__ import annotations

from typing import Any

import pytest

from integrations.common.sandbox import ContactSeeding
from integrations.housecall_pro.mappers import parse_notes
from integrations.registry import INTEGRATIONS
from tests.conftest import MONDAY, AgentFactory, CallerFactory
from tests.support.provider_kit import TYPED_PHONES
from tests.support.sandbox_server import ServedSandboxes
from tool_server.agents import CreatedAgent
from tool_server.agents.sandbox import sandbox_connections
from tool_server.services import Services

pytestmark = pytest.mark.usefixtures("fresh_sandboxes")

CRMS = ["salesforce", "gohighlevel", "housecall_pro"]
NOTE = "Asked for a quote on a new water heater."


def counts(sandboxes: ServedSandboxes, provider: str) -> dict[str, int]:
    """Contacts, notes and bookings the provider's emulator holds."""
    state = sandboxes.sandboxes[provider].state.dump()
    if provider == "salesforce":
        notes = [task for task in state["tasks"] if task.get("TaskSubtype") == "Task"]
        return {"contacts": len(state["contacts"]) + len(state["leads"]), "notes": len(notes)}
    if provider == "gohighlevel":
        return {
            "contacts": len(state["contacts"]),
            "notes": len(state["notes"]),
            "bookings": len(
                [event for event in state["appointments"] if event.get("appointmentStatus") != "cancelled"]
            ),
        }
    return {
        "contacts": len(state["customers"]),
        "notes": sum(len(parse_notes(customer.get("notes"))) for customer in state["customers"]),
        "bookings": len(state["jobs"]) + len(state.get("estimates", [])),
    }


@pytest.fixture(params=CRMS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def connected(
    provider: str, make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes
) -> CreatedAgent:
    pairs = [
        (connection, secrets)
        for connection, secrets in sandbox_connections(services.providers, sandboxes.base_url, prefer=[provider])
        if connection.provider == provider
    ]
    assert {connection.capability for connection, _ in pairs} == set(INTEGRATIONS[provider].capabilities)
    return await make_agent(
        connections=[connection for connection, _ in pairs],
        secrets={connection.capability: dict(secrets) for connection, secrets in pairs},
    )


@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_find_create_and_note_through_each_crm(
    provider: str, transport: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller(transport, connected)
    state = sandboxes.sandboxes[provider].state
    assert isinstance(state, ContactSeeding)
    for index, typed in enumerate(TYPED_PHONES):
        number = f"+1415555{index:04d}"
        seeded = state.seed_contact(name=f"Typed {index}", phone=typed.replace("0123", f"{index:04d}"))

        found = (await caller.call("find_contact", {"contact_phone": number})).unwrap()

        assert [contact["contact_id"] for contact in found["contacts"]] == [seeded], typed
    before = counts(sandboxes, provider)["contacts"]

    jane = {"contact_name": "Jane Doe", "contact_phone": "(212) 555-0142", "contact_email": "jane@example.com"}
    first = (await caller.call("create_contact", jane, call_id="c-1", idempotency_key="k-1")).unwrap()
    retried = (await caller.call("create_contact", jane, call_id="c-1", idempotency_key="k-1")).unwrap()
    repeated = (await caller.call("create_contact", jane, call_id="c-2")).unwrap()
    contact_id = first["contact"]["contact_id"]
    assert first["created"] is True
    assert repeated["created"] is False
    assert {answer["contact"]["contact_id"] for answer in (retried, repeated)} == {contact_id}
    assert counts(sandboxes, provider)["contacts"] == before + 1

    note = {"contact_id": contact_id, "note": NOTE}
    written = (await caller.call("add_note", note, call_id="c-1", idempotency_key="n-1")).unwrap()
    again = (await caller.call("add_note", note, call_id="c-1", idempotency_key="n-1")).unwrap()
    assert written["note"]["note_id"] == again["note"]["note_id"]
    assert counts(sandboxes, provider)["notes"] == 1


@pytest.mark.parametrize("provider", [name for name in CRMS if "calendar" in INTEGRATIONS[name].capabilities])
@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_availability_and_a_booking_through_each_field_service_calendar(
    provider: str, transport: str, connected: CreatedAgent, make_caller: CallerFactory, sandboxes: ServedSandboxes
) -> None:
    caller = await make_caller(transport, connected)

    offered = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id="c-1")).unwrap()
    start = offered["slots"][0]["start"]
    booking: dict[str, Any] = {
        "start": start,
        "caller_name": "Jane Doe",
        "caller_phone": "+12125550142",
        "caller_address": "55 Market St, San Francisco, CA 94105",
        "notes": "Water heater leaking",
    }
    first = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-1")).unwrap()
    retried = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-1")).unwrap()
    again = (await caller.call("book_appointment", booking, call_id="c-1", idempotency_key="b-2")).unwrap()

    assert first["appointment"]["start"] == start
    assert {a["appointment"]["appointment_id"] for a in (retried, again)} == {first["appointment"]["appointment_id"]}
    assert counts(sandboxes, provider)["bookings"] == 1
    later = (await caller.call("check_availability", {"date": MONDAY, "max_slots": 10}, call_id="c-2")).unwrap()
    assert start not in [slot["start"] for slot in later["slots"]]


async def test_a_revoked_gohighlevel_install_tells_a_calendar_caller_about_booking_not_records(
    make_agent: AgentFactory, services: Services, sandboxes: ServedSandboxes, make_caller: CallerFactory
) -> None:
    pairs = [
        (connection, secrets)
        for connection, secrets in sandbox_connections(services.providers, sandboxes.base_url, prefer=["gohighlevel"])
        if connection.provider == "gohighlevel"
    ]
    created = await make_agent(
        connections=[connection for connection, _ in pairs],
        # Another install's refresh token, which the emulator does not know: the grant is refused.
        secrets={c.capability: {**s, "refresh_token": "refresh-revoked-elsewhere"} for c, s in pairs},
    )
    caller = await make_caller("http", created)

    outcome = await caller.call("check_availability", {"date": MONDAY})

    assert outcome.error is not None
    assert outcome.error["code"] == "NOT_CONNECTED"
    assert "calendar" in outcome.error["message"]
    assert "book appointments" in outcome.error["speech"]
