"""Claims on a caller's identity (phone, email) in one CRM connection, shared through the database.

A CRM's search-then-create is not atomic, and the CRMs offer no idempotency key for contacts.
So before looking for or creating a contact, a process claims each of the caller's identities:
one row per (connection, identity), taken by an upsert that succeeds only when nobody holds the
row or the holder's lease ran out. The claimant then looks, creates if needed, and writes the
contact's id on the rows as it lets go, so the next claimant (another call, another worker,
another server process) goes straight to that contact, even where the CRM's search index lags.

Leases use the wall clock, not the server's business clock: they measure whether a process is
still alive, which a test's frozen clock must not stop.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tool_server.store.database import Database
from tool_server.store.tables import ContactClaimRow

__all__ = ["Claim", "ClaimTimeoutError", "ContactClaims", "identities"]

# Longer than a CRM write under its deadline (10 s) with retries; a dead holder costs at most this.
LEASE = timedelta(seconds=30)
_POLL_SECONDS = 0.05


def identities(phone: str | None, email: str | None) -> list[str]:
    """The identities a contact is claimed by, sorted so every claimant takes them in one order."""
    found = [f"phone:{phone}" if phone else None, f"email:{email.lower()}" if email else None]
    return sorted(identity for identity in found if identity)


class ClaimTimeoutError(Exception):
    """Another process held the identity for longer than this caller could wait."""


@dataclass(frozen=True)
class Claim:
    """Identities held by this claimant, and the contact ids earlier claimants recorded on them."""

    connection: str
    holder: str
    identities: tuple[str, ...]
    known: dict[str, str]

    def known_contact(self) -> str | None:
        """The contact every recorded identity points at, or None (none recorded, or they differ)."""
        ids = set(self.known.values())
        return ids.pop() if len(ids) == 1 else None

    def unrecorded(self) -> list[str]:
        """Identities no earlier claimant resolved to a contact."""
        return [identity for identity in self.identities if identity not in self.known]


def _now() -> datetime:
    return datetime.now(UTC)


class ContactClaims:
    """Claims on caller identities per CRM connection, on Core statements (two short transactions per claim)."""

    def __init__(self, db: Database, *, lease: timedelta = LEASE) -> None:
        self._db = db
        self._lease = lease

    async def claim(self, connection: str, wanted: Sequence[str], *, wait_seconds: float) -> Claim:
        """Hold every identity in `wanted`, waiting while another claimant holds one.

        All or none: when one identity is held elsewhere, those taken are let go before waiting,
        so two claimants wanting the same two identities never hold one each forever.
        Raises `ClaimTimeoutError` after `wait_seconds`.
        """
        holder = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + wait_seconds
        ordered = tuple(sorted(set(wanted)))
        while True:
            known = await self._db.execute(lambda c: _take_all(c, connection, ordered, holder, self._lease))
            if known is not None:
                return Claim(connection, holder, ordered, known)
            if loop.time() >= give_up:
                raise ClaimTimeoutError(f"{len(ordered)} identities busy in {connection}")
            await asyncio.sleep(_POLL_SECONDS)

    async def release(self, claim: Claim, contact_id: str | None) -> None:
        """Let go of the claim, recording `contact_id` (when known) on each identity."""
        values: dict[str, Any] = {"holder": None, "held_until": None, "updated_at": _now()}
        if contact_id is not None:
            values["contact_id"] = contact_id
        statement = (
            update(ContactClaimRow)
            .where(
                ContactClaimRow.connection_id == claim.connection,
                ContactClaimRow.identity.in_(claim.identities),
                ContactClaimRow.holder == claim.holder,
            )
            .values(**values)
        )
        await self._db.execute(lambda c: c.execute(statement))

    async def forget(self, connection: str, contact_id: str) -> None:
        """The contact is gone from the CRM: identities pointing at it point nowhere now."""
        statement = (
            update(ContactClaimRow)
            .where(ContactClaimRow.connection_id == connection, ContactClaimRow.contact_id == contact_id)
            .values(contact_id=None, updated_at=_now())
        )
        await self._db.execute(lambda c: c.execute(statement))


def _take_all(
    connection: Connection, claim_of: str, wanted: tuple[str, ...], holder: str, lease: timedelta
) -> dict[str, str] | None:
    """In one transaction: take every free identity; None (and nothing taken) if one is held elsewhere."""
    now = _now()
    table = ContactClaimRow.__table__
    rows = [
        {
            "connection_id": claim_of,
            "identity": identity,
            "holder": holder,
            "held_until": now + lease,
            "updated_at": now,
        }
        for identity in wanted
    ]
    free = or_(table.c.holder.is_(None), table.c.held_until < now)
    changes = {"holder": holder, "held_until": now + lease, "updated_at": now}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(table).values(rows)
    connection.execute(
        upsert.on_conflict_do_update(index_elements=["connection_id", "identity"], set_=changes, where=free)
    )
    mine = select(ContactClaimRow.identity, ContactClaimRow.holder, ContactClaimRow.contact_id).where(
        and_(ContactClaimRow.connection_id == claim_of, ContactClaimRow.identity.in_(wanted))
    )
    taken = connection.execute(mine).all()
    if any(row.holder != holder for row in taken):
        # Someone else holds one of them: give back the ones this call took, then wait.
        connection.execute(
            update(ContactClaimRow)
            .where(
                ContactClaimRow.connection_id == claim_of,
                ContactClaimRow.identity.in_(wanted),
                ContactClaimRow.holder == holder,
            )
            .values(holder=None, held_until=None)
        )
        return None
    return {row.identity: row.contact_id for row in taken if row.contact_id}
