"""Payment links and invoices this server made, and which of them a verified provider webhook says are paid.

The tools record what they made (with who asked, so a receipt can be texted); the webhook route
marks an object paid. Only a verified webhook can do that, so a `paid` here is as good as the
provider's word, and status questions afterwards are answered without a provider round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import PaymentRow

__all__ = ["PaymentLog", "PaymentRecord"]

T = TypeVar("T")
PaymentKind = Literal["payment_link", "invoice"]


class PaymentRecord(BaseModel):
    """One payment link or invoice as this server knows it."""

    agent_id: str
    provider: str
    object_id: str
    kind: PaymentKind
    status: Literal["open", "paid"]
    contact_phone: str | None = None
    contact_email: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    snapshot: dict[str, Any] | None = None
    call_id: str | None = None
    event_id: str | None = None
    created_at: datetime
    paid_at: datetime | None = None


def _record(row: PaymentRow) -> PaymentRecord:
    return PaymentRecord.model_validate(row, from_attributes=True)


class PaymentLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def expect(
        self,
        agent_id: str,
        provider: str,
        object_id: str,
        kind: PaymentKind,
        *,
        contact_phone: str | None,
        contact_email: str | None,
        amount_minor: int,
        currency: str,
        snapshot: dict[str, Any],
        call_id: str | None,
    ) -> None:
        """A tool made (or showed) this link or invoice: remember who it is for. Never un-pays it."""

        def work(session: Session) -> None:
            row = session.get(PaymentRow, (agent_id, provider, object_id))
            if row is None:
                session.add(
                    PaymentRow(
                        agent_id=agent_id,
                        provider=provider,
                        object_id=object_id,
                        kind=kind,
                        status="open",
                        contact_phone=contact_phone,
                        contact_email=contact_email,
                        amount_minor=amount_minor,
                        currency=currency,
                        snapshot=snapshot,
                        call_id=call_id,
                        created_at=self._clock(),
                    )
                )
                return
            # The webhook may have come first (a caller paying while still on the line).
            row.contact_phone = row.contact_phone or contact_phone
            row.contact_email = row.contact_email or contact_email
            row.call_id = row.call_id or call_id
            row.snapshot = snapshot
            row.amount_minor = row.amount_minor if row.amount_minor is not None else amount_minor
            row.currency = row.currency or currency

        await self._retrying(work)

    async def mark_paid(
        self,
        agent_id: str,
        provider: str,
        object_id: str,
        kind: PaymentKind,
        *,
        event_id: str,
        amount_minor: int | None,
        currency: str | None,
    ) -> bool:
        """A verified webhook says it is paid. True the first time; a re-delivery changes nothing."""

        def work(session: Session) -> bool:
            row = session.get(PaymentRow, (agent_id, provider, object_id))
            now = self._clock()
            if row is None:
                session.add(
                    PaymentRow(
                        agent_id=agent_id,
                        provider=provider,
                        object_id=object_id,
                        kind=kind,
                        status="paid",
                        amount_minor=amount_minor,
                        currency=currency.upper() if currency else None,
                        event_id=event_id[:255],
                        created_at=now,
                        paid_at=now,
                    )
                )
                return True
            if row.status == "paid":
                return False
            row.status, row.paid_at, row.event_id = "paid", now, event_id[:255]
            if amount_minor is not None:
                row.amount_minor = amount_minor
            return True

        return await self._retrying(work)

    async def get(self, agent_id: str, provider: str, object_id: str) -> PaymentRecord | None:
        def work(session: Session) -> PaymentRecord | None:
            row = session.get(PaymentRow, (agent_id, provider, object_id))
            return None if row is None else _record(row)

        return await self._db.run(work)

    async def _retrying(self, work: Callable[[Session], T]) -> T:
        """Two deliveries racing to insert the same row: the loser finds the winner's row on its second try."""
        try:
            return await self._db.run(work)
        except IntegrityError:
            return await self._db.run(work)
