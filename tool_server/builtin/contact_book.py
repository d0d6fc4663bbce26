"""The built-in contact book: contacts and notes in the tool server's database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.capabilities import Contact, ContactDraft, Note, NotFoundError
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import ContactRow, NoteRow, new_id

__all__ = ["ContactBook"]

PROVIDER = "contact_book"


def _to_contact(row: ContactRow) -> Contact:
    return Contact(
        id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        created_at=row.created_at,
        provider=PROVIDER,
        raw={"id": row.id},
    )


class ContactBook:
    """One agent's contacts. Unique indexes keep one contact per phone and one per email."""

    name = PROVIDER

    def __init__(self, db: Database, agent_id: str, clock: Clock) -> None:
        self._db = db
        self._agent_id = agent_id
        self._clock = clock

    async def find_contacts(self, *, phone: str | None = None, email: str | None = None) -> list[Contact]:
        return await self._db.run(lambda session: [_to_contact(r) for r in self._matching(session, phone, email)])

    async def get_contact(self, contact_id: str) -> Contact:
        return await self._db.run(lambda session: _to_contact(self._row(session, contact_id)))

    async def create_contact(self, draft: ContactDraft) -> Contact:
        def work(session: Session) -> Contact:
            existing = self._matching(session, draft.phone, draft.email)
            if existing:
                return self._fill_blanks(session, existing[0], draft)
            now = self._clock()
            row = ContactRow(
                id=new_id("con"),
                agent_id=self._agent_id,
                name=draft.name,
                phone=draft.phone,
                email=draft.email,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return _to_contact(row)

        for _attempt in range(3):
            try:
                return await self._db.run(work)
            except IntegrityError:
                # A concurrent call created the same phone or email first; the next attempt finds it.
                continue
        raise RuntimeError("contact creation kept colliding with concurrent writers")

    async def update_contact(self, contact_id: str, draft: ContactDraft) -> Contact:
        def work(session: Session) -> Contact:
            row = self._row(session, contact_id)
            for field in ("name", "phone", "email"):
                value = getattr(draft, field)
                if value is not None:
                    setattr(row, field, value)
            row.updated_at = self._clock()
            session.flush()
            return _to_contact(row)

        return await self._db.run(work)

    async def add_note(
        self,
        contact_id: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Note:
        """Attach a note; under an `idempotency_key` already used, the note written then is returned.

        `earlier_attempt_at` changes nothing here: the note and its key are written in one
        transaction, so a dead attempt either left its note under the key or left nothing.
        """

        def work(session: Session) -> Note:
            self._row(session, contact_id)
            row = None
            if idempotency_key is not None:
                row = session.execute(
                    select(NoteRow).where(
                        NoteRow.agent_id == self._agent_id, NoteRow.idempotency_key == idempotency_key
                    )
                ).scalar_one_or_none()
            if row is None:
                row = NoteRow(
                    id=new_id("note"),
                    agent_id=self._agent_id,
                    contact_id=contact_id,
                    body=body,
                    idempotency_key=idempotency_key,
                    created_at=self._clock(),
                )
                session.add(row)
                session.flush()
            return Note(
                id=row.id,
                contact_id=row.contact_id,
                body=row.body,
                created_at=row.created_at,
                provider=PROVIDER,
                raw={"id": row.id},
            )

        return await self._db.run(work)

    def _fill_blanks(self, session: Session, row: ContactRow, draft: ContactDraft) -> Contact:
        """Keep what we know; add what the caller told us that the contact lacks.

        A phone or email that already belongs to another contact is left off rather than moved.
        """
        for field in ("name", "phone", "email"):
            value = getattr(draft, field)
            if value is None or getattr(row, field) is not None:
                continue
            if field != "name" and self._matching(
                session, value if field == "phone" else None, value if field == "email" else None
            ):
                continue
            setattr(row, field, value)
            row.updated_at = self._clock()
        session.flush()
        return _to_contact(row)

    def _matching(self, session: Session, phone: str | None, email: str | None) -> list[ContactRow]:
        matches = []
        if phone:
            matches.append(ContactRow.phone == phone)
        if email:
            matches.append(ContactRow.email == email)
        if not matches:
            return []
        query = (
            select(ContactRow)
            .where(ContactRow.agent_id == self._agent_id, or_(*matches))
            .order_by(ContactRow.created_at, ContactRow.id)
        )
        rows = list(session.execute(query).scalars())
        # A phone match is the stronger identity for a caller; list it first.
        return sorted(rows, key=lambda row: 0 if phone and row.phone == phone else 1)

    def _row(self, session: Session, contact_id: str) -> ContactRow:
        row = session.execute(
            select(ContactRow).where(ContactRow.id == contact_id, ContactRow.agent_id == self._agent_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError("contact", contact_id)
        return row
