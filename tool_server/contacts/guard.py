"""A CRM behind contact claims: one contact per caller, across every process sharing the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from integrations.capabilities import Contact, ContactDraft, CrmProvider, NotFoundError, UpstreamError
from integrations.capabilities.crm import CallActivityLog
from integrations.capabilities.models import Note
from integrations.common.deadline import remaining
from tool_server.contacts.claims import Claim, ClaimTimeoutError, ContactClaims, identities

__all__ = ["GuardedCrm", "SavedContact"]

# Without a tool deadline (a script, a test), how long to wait for another claimant.
_DEFAULT_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class SavedContact:
    """The caller's contact, and whether this call created it."""

    contact: Contact
    created: bool


class GuardedCrm:
    """The connected CRM, with contact creation claimed per phone and email in the database.

    Reads, updates and notes pass straight through. `save` (what create_contact and the post-call
    sync use) claims the caller's phone and email for this connection first, so a second call
    from the same new caller waits for the first to finish and then finds its contact, whichever
    worker or server process runs it. The contact a phone or email resolved to is remembered on
    the claim, so the next claimant gets it even when the CRM's search has not caught up.
    """

    def __init__(self, provider: CrmProvider, claims: ContactClaims | None, connection_key: str) -> None:
        """`claims` None: the provider's own store already keeps one contact per phone and email
        under concurrency (the built-in contact book's unique indexes), so nothing is claimed."""
        self.provider = provider
        self._claims = claims
        self.connection_key = connection_key

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def call_log(self) -> CallActivityLog | None:
        """The CRM's call activities, when it has them (HubSpot calls, Salesforce call tasks)."""
        return self.provider if isinstance(self.provider, CallActivityLog) else None

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        return await self.provider.find_contacts(phone=phone, email=email)

    async def get_contact(self, contact_id: str) -> Contact:
        return await self.provider.get_contact(contact_id)

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        return await self.provider.update_contact(contact_id, draft)

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        if self._claims is None or not getattr(self.provider, "notes_in_one_field", False):
            return await self.provider.add_note(
                contact_id, body, idempotency_key=idempotency_key, earlier_attempt_at=earlier_attempt_at
            )
        # The CRM keeps a contact's notes in one text field, read and written back whole (Housecall
        # Pro): two processes appending at once would lose one note, so they take turns.
        claim = await self._claims.claim(
            self.connection_key, [f"notes:{contact_id}"], wait_seconds=max(remaining(_DEFAULT_WAIT_SECONDS) - 1.0, 0.1)
        )
        try:
            return await self.provider.add_note(
                contact_id, body, idempotency_key=idempotency_key, earlier_attempt_at=earlier_attempt_at
            )
        finally:
            await self._claims.release(claim, None)

    async def create_contact(self, draft: ContactDraft) -> Contact:
        return (await self.save(draft)).contact

    async def save(self, draft: ContactDraft) -> SavedContact:
        """The contact with this phone or email (blanks filled in), or a new one; never two."""
        wanted = identities(draft.phone, draft.email)
        if self._claims is None or not wanted:
            return await self._look_then_create(draft)
        try:
            # Leave a second of the tool's deadline for the CRM call itself.
            wait = max(remaining(_DEFAULT_WAIT_SECONDS) - 1.0, 0.1)
            claim = await self._claims.claim(self.connection_key, wanted, wait_seconds=wait)
        except ClaimTimeoutError:
            raise UpstreamError(
                self.provider.name, "another call is saving this caller's contact; try again", retryable=True
            ) from None
        contact_id: str | None = None
        try:
            saved = await self._save_claimed(draft, claim)
            contact_id = saved.contact.id
            return saved
        finally:
            await self._claims.release(claim, contact_id)

    async def _save_claimed(self, draft: ContactDraft, claim: Claim) -> SavedContact:
        known = claim.known_contact()
        if known is not None:
            existing = await self._known(known)
            # A phone or email not seen here before may belong to another contact typed into the
            # CRM: only when the CRM has nobody else with it is it added to the known contact.
            unrecorded = claim.unrecorded()
            others = (
                await self.provider.find_contacts(
                    phone=draft.phone if f"phone:{draft.phone}" in unrecorded else None,
                    email=draft.email if draft.email and f"email:{draft.email.lower()}" in unrecorded else None,
                )
                if unrecorded
                else []
            )
            if existing is not None and all(other.id == existing.id for other in others):
                return SavedContact(await self._fill_blanks(existing, draft), created=False)
        return await self._look_then_create(draft)

    async def _look_then_create(self, draft: ContactDraft) -> SavedContact:
        """One search: a match gets its blanks filled, no match a new contact (the provider's
        create_contact still looks first, for a contact written since, but nothing is found twice)."""
        found = await self.provider.find_contacts(phone=draft.phone, email=draft.email)
        if not found:
            return SavedContact(await self.provider.create_contact(draft), created=True)
        return SavedContact(await self._fill_blanks(found[0], draft, others=found[1:]), created=False)

    async def _known(self, contact_id: str) -> Contact | None:
        try:
            return await self.provider.get_contact(contact_id)
        except NotFoundError:
            # Deleted in the CRM since: look and create as for a new caller.
            if self._claims is not None:
                await self._claims.forget(self.connection_key, contact_id)
            return None

    async def _fill_blanks(self, existing: Contact, draft: ContactDraft, others: Sequence[Contact] = ()) -> Contact:
        """Fill what `existing` lacks; never overwrite, and never take a phone or email another contact holds."""
        phone_taken = any(other.phone == draft.phone for other in others)
        email_taken = any(
            other.email and draft.email and other.email.lower() == draft.email.lower() for other in others
        )
        blanks = ContactDraft(
            name=draft.name if not existing.name else None,
            phone=draft.phone if not existing.phone and not phone_taken else None,
            email=draft.email if not existing.email and not email_taken else None,
        )
        if blanks == ContactDraft():
            return existing
        return await self.provider.update_contact(existing.id, blanks)
