"""find_contact, create_contact and add_note over every transport."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.support.callers import ToolCaller
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.store.tables import ContactRow, NoteRow


async def contact_count(services: Services, agent_id: str) -> int:
    query = select(func.count()).where(ContactRow.agent_id == agent_id)
    return int(await services.db.run(lambda session: session.execute(query).scalar_one()))


async def test_create_contact_normalizes_the_phone_and_email(caller: ToolCaller) -> None:
    result = (
        await caller.call(
            "create_contact",
            {"contact_name": "Jane Doe", "contact_phone": "(212) 555-0142", "contact_email": "Jane@Example.COM"},
        )
    ).unwrap()

    assert result["created"] is True
    assert result["contact"]["phone"] == "+12125550142"
    assert result["contact"]["email"] == "jane@example.com"
    assert result["speech"] == "I've saved your details, Jane."


async def test_the_same_phone_in_another_format_never_makes_a_second_contact(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    first = (await caller.call("create_contact", {"contact_name": "Jane", "contact_phone": "212-555-0142"})).unwrap()
    second = (
        await caller.call("create_contact", {"contact_name": "Jane Doe", "contact_phone": "+1 212 555 0142"})
    ).unwrap()

    assert second["created"] is False
    assert second["contact"]["contact_id"] == first["contact"]["contact_id"]
    assert await contact_count(services, agent.agent.id) == 1


async def test_the_same_email_in_another_case_never_makes_a_second_contact(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    first = (await caller.call("create_contact", {"contact_email": "jane@example.com"})).unwrap()
    second = (await caller.call("create_contact", {"contact_email": "JANE@example.com", "contact_name": "J"})).unwrap()

    assert second["contact"]["contact_id"] == first["contact"]["contact_id"]
    assert second["contact"]["name"] == "J"  # a blank was filled in, nothing overwritten
    assert await contact_count(services, agent.agent.id) == 1


async def test_concurrent_creates_for_one_phone_leave_one_contact(
    caller: ToolCaller, services: Services, agent: CreatedAgent
) -> None:
    outcomes = await asyncio.gather(
        *(caller.call("create_contact", {"contact_phone": "212 555 0142", "contact_name": f"N{n}"}) for n in range(10))
    )

    assert len({outcome.unwrap()["contact"]["contact_id"] for outcome in outcomes}) == 1
    assert await contact_count(services, agent.agent.id) == 1


async def test_find_contact_matches_a_phone_given_in_any_format(caller: ToolCaller) -> None:
    created = (
        await caller.call("create_contact", {"contact_name": "Jane Doe", "contact_phone": "+12125550142"})
    ).unwrap()

    found = (await caller.call("find_contact", {"contact_phone": "(212) 555-0142"})).unwrap()

    assert found["found"] is True
    assert [c["contact_id"] for c in found["contacts"]] == [created["contact"]["contact_id"]]
    assert found["speech"] == "I found your record, Jane Doe."


async def test_find_contact_says_so_when_there_is_no_match(caller: ToolCaller) -> None:
    found = (await caller.call("find_contact", {"contact_email": "nobody@example.com"})).unwrap()

    assert found == {"found": False, "contacts": [], "speech": "I couldn't find a record with those details."}


async def test_find_contact_needs_a_phone_or_an_email(caller: ToolCaller) -> None:
    outcome = await caller.call("find_contact", {})

    assert outcome.code == "VALIDATION_ERROR"
    assert outcome.field == "contact_phone"


async def test_add_note_attaches_the_note_to_the_contact_found_by_phone(caller: ToolCaller, services: Services) -> None:
    contact = (await caller.call("create_contact", {"contact_phone": "+12125550142"})).unwrap()["contact"]

    result = (
        await caller.call("add_note", {"contact_phone": "212.555.0142", "note": "Asked about whitening prices."})
    ).unwrap()

    assert result["note"]["contact_id"] == contact["contact_id"]
    query = select(NoteRow.body).where(NoteRow.contact_id == contact["contact_id"])
    bodies = await services.db.run(lambda session: session.execute(query).all())
    assert [row[0] for row in bodies] == ["Asked about whitening prices."]


async def test_add_note_for_an_unknown_contact_is_not_found(caller: ToolCaller) -> None:
    outcome = await caller.call("add_note", {"contact_phone": "+12125550199", "note": "hello"})

    assert outcome.code == "NOT_FOUND"
    assert outcome.status in (None, 404)


async def test_add_note_by_an_unknown_contact_id_is_not_found(caller: ToolCaller) -> None:
    outcome = await caller.call("add_note", {"contact_id": "con_missing", "note": "hello"})

    assert outcome.code == "NOT_FOUND"
