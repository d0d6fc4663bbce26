"""Every CRM behaves the same: find by phone or email, create without duplicates, update, notes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import phonenumbers
import pytest

from integrations.capabilities import ContactDraft, CrmProvider, NotFoundError
from integrations.common.sandbox import ContactSeeding
from tests.conftest import NOW, AgentFactory
from tests.contracts.conftest import agent_with, build, providers_of
from tests.support.provider_kit import TYPED_PHONES
from tests.support.sandbox_server import ServedSandboxes
from tool_server.services import Services

# Stores a contact with a phone exactly as a person typed it into the CRM; returns its id.
Seed = Callable[[str, str], Awaitable[str]]

CALLER = "+14155550123"


@pytest.fixture(params=providers_of("crm"))
def crm_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def crm(crm_name: str, services: Services, make_agent: AgentFactory, sandboxes: ServedSandboxes) -> CrmProvider:
    created = await agent_with(make_agent, sandboxes, "crm", crm_name)
    provider = build(services, created, "crm")
    assert isinstance(provider, CrmProvider)
    return provider


@pytest.fixture
def seed(crm_name: str, crm: CrmProvider, sandboxes: ServedSandboxes) -> Seed:
    """How a contact someone else typed in gets into this CRM."""
    if crm_name in sandboxes.sandboxes:
        state = sandboxes.sandboxes[crm_name].state
        assert isinstance(state, ContactSeeding), f"{crm_name}'s emulator cannot seed a typed contact"

        async def typed(name: str, phone: str) -> str:
            return state.seed_contact(name=name, phone=phone)

        return typed

    async def through_the_book(name: str, phone: str) -> str:
        # The built-in book stores every phone as E.164 whatever was typed: its only way in is create.
        parsed = phonenumbers.parse(phone, "US")
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return (await crm.create_contact(ContactDraft(name=name, phone=e164))).id

    return through_the_book


@pytest.mark.parametrize("typed", TYPED_PHONES)
async def test_a_phone_typed_in_any_common_format_is_found_by_its_e164_number(
    crm: CrmProvider, seed: Seed, typed: str
) -> None:
    contact_id = await seed("Jane Doe", typed)

    found = await crm.find_contacts(phone=CALLER)

    assert [contact.id for contact in found] == [contact_id]
    assert found[0].phone == CALLER


async def test_a_number_one_digit_away_from_a_typed_phone_is_not_found(crm: CrmProvider, seed: Seed) -> None:
    await seed("Jane Doe", "(415) 555-0123")

    assert await crm.find_contacts(phone="+14155550124") == []
    assert await crm.find_contacts(phone="+442074555012") == []


async def test_creating_a_contact_for_a_typed_phone_finds_it_instead(crm: CrmProvider, seed: Seed) -> None:
    contact_id = await seed("Jane Doe", "(415) 555-0123")

    created = await crm.create_contact(ContactDraft(name="Jane", phone=CALLER))

    assert created.id == contact_id


async def test_a_created_contact_is_found_by_phone_and_by_email(crm: CrmProvider) -> None:
    created = await crm.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142", email="jane@example.com"))

    assert created.name == "Jane Doe"
    assert created.phone == "+12125550142"
    assert created.email == "jane@example.com"
    assert [c.id for c in await crm.find_contacts(phone="+12125550142")] == [created.id]
    assert [c.id for c in await crm.find_contacts(email="jane@example.com")] == [created.id]
    assert (await crm.get_contact(created.id)).id == created.id


async def test_the_same_phone_or_email_never_makes_a_second_contact(crm: CrmProvider) -> None:
    first = await crm.create_contact(ContactDraft(name="Jane", phone="+12125550142"))
    by_phone = await crm.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142"))
    with_email = await crm.create_contact(ContactDraft(phone="+12125550142", email="jane@example.com"))
    by_email = await crm.create_contact(ContactDraft(email="jane@example.com"))

    assert by_phone.id == first.id
    assert with_email.id == first.id
    assert by_email.id == first.id
    assert with_email.email == "jane@example.com"  # a blank filled in
    assert (await crm.get_contact(first.id)).name == "Jane"  # nothing overwritten


async def test_nobody_is_found_for_an_unknown_phone(crm: CrmProvider) -> None:
    await crm.create_contact(ContactDraft(name="Jane", phone="+12125550142"))

    assert await crm.find_contacts(phone="+12125550199") == []


async def test_update_changes_only_the_given_fields(crm: CrmProvider) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane Doe", phone="+12125550142"))

    updated = await crm.update_contact(contact.id, ContactDraft(email="jane@example.com"))

    assert updated.email == "jane@example.com"
    assert updated.name == "Jane Doe"
    assert updated.phone == "+12125550142"


async def test_a_note_is_attached_to_its_contact(crm: CrmProvider) -> None:
    contact = await crm.create_contact(ContactDraft(name="Jane", phone="+12125550142"))

    note = await crm.add_note(contact.id, "Asked about whitening.")

    assert note.contact_id == contact.id
    assert note.body == "Asked about whitening."


async def test_a_note_retried_after_a_crashed_attempt_is_not_written_twice(crm: CrmProvider) -> None:
    # The first call wrote the note, then its process died before answering; dispatch retries the key.
    contact = await crm.create_contact(ContactDraft(name="Jane", phone="+12125550142"))
    first = await crm.add_note(contact.id, "Asked about whitening.", idempotency_key="call-1:add_note")

    again = await crm.add_note(
        contact.id, "Asked about whitening.", idempotency_key="call-1:add_note", earlier_attempt_at=NOW
    )

    assert again.id == first.id
    assert again.body == "Asked about whitening."


async def test_an_unknown_contact_is_not_found(crm: CrmProvider) -> None:
    with pytest.raises(NotFoundError):
        await crm.get_contact("999999999")
    with pytest.raises(NotFoundError):
        await crm.add_note("999999999", "hello")
