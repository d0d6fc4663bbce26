"""The CRM capability: contacts and the notes on them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from integrations.capabilities.models import CallActivity, Contact, ContactDraft, LoggedCall, Note

__all__ = ["CallActivityLog", "CrmProvider"]


@runtime_checkable
class CrmProvider(Protocol):
    """A contact store. Phones arrive as E.164 and emails lower-cased.

    A CRM that keeps a contact's notes in one text field, rewritten whole on every note, sets a
    class attribute `notes_in_one_field = True`: the server then lets one process at a time add
    a note to a given contact, so concurrent notes are never lost.
    """

    name: str

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        """Contacts matching the phone or the email (either matches)."""
        ...

    async def get_contact(self, contact_id: str) -> Contact:
        """One contact by id; raises `NotFoundError`."""
        ...

    async def create_contact(self, draft: ContactDraft) -> Contact:
        """Create a contact, or return the existing one with the same phone or email.

        A provider must never hold two contacts with the same phone or the same email
        that it created, even under concurrent calls.
        """
        ...

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        """Fill in or change the given fields; fields left as None are kept."""
        ...

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """Attach a note to the contact; raises `NotFoundError` for an unknown contact.

        With `idempotency_key`, a provider that can look the key up returns the note already
        written under it instead of writing a second one. `earlier_attempt_at` says an earlier
        attempt under the same key started then and its process died without an answer: it may
        have written the note, so a provider without keys looks for that note before writing.
        """
        ...


@runtime_checkable
class CallActivityLog(Protocol):
    """A CRM with call activities (HubSpot calls): the post-call sync logs each call there too."""

    async def log_call(self, contact_id: str, call: CallActivity) -> LoggedCall:
        """Log the call on the contact's timeline, once.

        A call is identified by the contact, its start time and its title: when the contact
        already has that call, it is returned (`created` False) instead of logged again, so a
        retried or resumed sync never logs it twice. Raises `NotFoundError` for an unknown contact.
        """
        ...
