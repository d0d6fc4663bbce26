"""A key reaches only its own agent's data, over every transport."""

from __future__ import annotations

import pytest

from tests.conftest import MONDAY, TRANSPORTS, AgentFactory, CallerFactory


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_agent_a_cannot_see_or_change_agent_b_appointments_or_contacts(
    transport: str, make_agent: AgentFactory, make_caller: CallerFactory
) -> None:
    alice_agent, bob_agent = await make_agent("Alice Clinic"), await make_agent("Bob Clinic")
    alice, bob = await make_caller(transport, alice_agent), await make_caller(transport, bob_agent)
    bobs = (
        await bob.call(
            "book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Jane", "caller_phone": "+12125550142"}
        )
    ).unwrap()["appointment"]
    (await bob.call("create_contact", {"contact_phone": "+12125550142", "contact_name": "Jane"})).unwrap()

    assert (await alice.call("cancel_appointment", {"appointment_id": bobs["appointment_id"]})).code == "NOT_FOUND"
    moved = await alice.call(
        "reschedule_appointment", {"appointment_id": bobs["appointment_id"], "new_start": f"{MONDAY}T11:00"}
    )
    assert moved.code == "NOT_FOUND"
    assert (await alice.call("find_appointments", {"caller_phone": "+12125550142"})).unwrap()["appointments"] == []
    assert (await alice.call("find_contact", {"contact_phone": "+12125550142"})).unwrap()["found"] is False
    assert (await alice.call("add_note", {"contact_phone": "+12125550142", "note": "x"})).code == "NOT_FOUND"
    # Alice's calendar is her own: Bob's 10:00 does not block her.
    mine = await alice.call(
        "book_appointment", {"start": f"{MONDAY}T10:00", "caller_name": "Ann", "caller_phone": "+12125550100"}
    )
    assert mine.ok

    still = (await bob.call("find_appointments", {"caller_phone": "+12125550142"})).unwrap()["appointments"]
    assert [(a["appointment_id"], a["status"], a["start"]) for a in still] == [
        (bobs["appointment_id"], "booked", bobs["start"])
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_same_idempotency_key_used_by_two_agents_does_not_collide(
    transport: str, make_agent: AgentFactory, make_caller: CallerFactory
) -> None:
    first, second = await make_agent("One"), await make_agent("Two")
    arguments = {"start": f"{MONDAY}T10:00", "caller_name": "Jane", "caller_phone": "+12125550142"}
    one = await (await make_caller(transport, first)).call("book_appointment", arguments, idempotency_key="k1")
    two = await (await make_caller(transport, second)).call("book_appointment", arguments, idempotency_key="k1")

    assert one.unwrap()["appointment"]["appointment_id"] != two.unwrap()["appointment"]["appointment_id"]
