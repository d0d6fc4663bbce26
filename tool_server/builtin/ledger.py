"""The built-in ledger: the accounting capability in the tool server's own database.

For a business with no accounting product connected, and as the reference the contract suite
holds every accounting provider to. It sends nothing: "sending" an invoice records when.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.capabilities import (
    AccountCustomer,
    CustomerDraft,
    Invoice,
    InvoiceRequest,
    NotFoundError,
)
from tool_server.clock import Clock
from tool_server.store.database import Database
from tool_server.store.tables import LedgerCustomerRow, LedgerInvoiceRow, new_id

__all__ = ["Ledger"]

PROVIDER = "ledger"


def _invoice(row: LedgerInvoiceRow) -> Invoice:
    balance = row.total_minor - row.paid_minor
    return Invoice(
        id=row.id,
        number=row.number,
        customer_id=row.customer_id,
        status=row.status,
        total_minor=row.total_minor,
        balance_minor=balance,
        currency=row.currency,
        due_date=date.fromisoformat(row.due_date) if row.due_date else None,
        provider=PROVIDER,
        raw={"id": row.id, "sent_at": row.sent_at.isoformat() if row.sent_at else None},
    )


class Ledger:
    """One agent's customers and invoices."""

    name = PROVIDER

    def __init__(self, db: Database, agent_id: str, clock: Clock) -> None:
        self._db = db
        self._agent_id = agent_id
        self._clock = clock

    def _customer(self, session: Session, row: LedgerCustomerRow) -> AccountCustomer:
        owed = session.execute(
            select(func.coalesce(func.sum(LedgerInvoiceRow.total_minor - LedgerInvoiceRow.paid_minor), 0)).where(
                LedgerInvoiceRow.customer_id == row.id, LedgerInvoiceRow.status == "open"
            )
        ).scalar_one()
        return AccountCustomer(
            id=row.id, name=row.name, phone=row.phone, email=row.email, balance_minor=int(owed), provider=PROVIDER
        )

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Exact matches on the stored E.164 phone or lower-cased email."""
        conditions = []
        if phone:
            conditions.append(LedgerCustomerRow.phone == phone)
        if email:
            conditions.append(LedgerCustomerRow.email == email.lower())
        if not conditions:
            return []

        def work(session: Session) -> list[AccountCustomer]:
            rows = session.execute(
                select(LedgerCustomerRow)
                .where(LedgerCustomerRow.agent_id == self._agent_id, or_(*conditions))
                .order_by(LedgerCustomerRow.created_at, LedgerCustomerRow.id)
            ).scalars()
            return [self._customer(session, row) for row in rows]

        return await self._db.run(work)

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        def create(session: Session) -> AccountCustomer:
            row = LedgerCustomerRow(
                id=new_id("cus"),
                agent_id=self._agent_id,
                name=draft.name,
                phone=draft.phone,
                email=draft.email.lower() if draft.email else None,
                idempotency_key=draft.idempotency_key,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return self._customer(session, row)

        def existing(session: Session) -> AccountCustomer:
            row = session.execute(
                select(LedgerCustomerRow).where(
                    LedgerCustomerRow.agent_id == self._agent_id,
                    LedgerCustomerRow.idempotency_key == draft.idempotency_key,
                )
            ).scalar_one()
            return self._customer(session, row)

        try:
            return await self._db.run(create)
        except IntegrityError:
            return await self._db.run(existing)

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        def work(session: Session) -> list[Invoice]:
            rows = session.execute(
                select(LedgerInvoiceRow)
                .where(
                    LedgerInvoiceRow.agent_id == self._agent_id,
                    LedgerInvoiceRow.customer_id == customer_id,
                    LedgerInvoiceRow.status == "open",
                )
                .order_by(LedgerInvoiceRow.due_date, LedgerInvoiceRow.created_at)
            ).scalars()
            return [_invoice(row) for row in rows if row.total_minor > row.paid_minor]

        return await self._db.run(work)

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        total = sum(line.quantity * line.unit_amount_minor for line in request.lines)

        def create(session: Session) -> Invoice:
            customer = session.get(LedgerCustomerRow, request.customer_id)
            if customer is None or customer.agent_id != self._agent_id:
                raise NotFoundError("customer", request.customer_id)
            count = session.execute(
                select(func.count()).select_from(LedgerInvoiceRow).where(LedgerInvoiceRow.agent_id == self._agent_id)
            ).scalar_one()
            row = LedgerInvoiceRow(
                id=new_id("inv"),
                agent_id=self._agent_id,
                customer_id=request.customer_id,
                number=f"INV-{count + 1:04d}",
                status="open" if total > 0 else "paid",
                total_minor=total,
                paid_minor=0,
                currency=request.currency.upper(),
                due_date=request.due_date.isoformat() if request.due_date else None,
                lines={"lines": [line.model_dump() for line in request.lines]},
                memo=request.memo,
                idempotency_key=request.idempotency_key,
                sent_at=None,
                created_at=self._clock(),
            )
            session.add(row)
            session.flush()
            return _invoice(row)

        def existing(session: Session) -> Invoice:
            row = session.execute(
                select(LedgerInvoiceRow).where(
                    LedgerInvoiceRow.agent_id == self._agent_id,
                    LedgerInvoiceRow.idempotency_key == request.idempotency_key,
                )
            ).scalar_one()
            return _invoice(row)

        try:
            return await self._db.run(create)
        except IntegrityError:
            return await self._db.run(existing)

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Records that it was sent (the ledger has no mail server)."""

        def work(session: Session) -> Invoice:
            row = self._own(session, invoice_id)
            row.sent_at = row.sent_at or self._clock()
            return _invoice(row)

        return await self._db.run(work)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return await self._db.run(lambda session: _invoice(self._own(session, invoice_id)))

    async def record_payment(self, invoice_id: str) -> Invoice:
        """Mark the invoice paid in full (a payment webhook, or a test)."""

        def work(session: Session) -> Invoice:
            row = self._own(session, invoice_id)
            row.paid_minor, row.status = row.total_minor, "paid"
            return _invoice(row)

        return await self._db.run(work)

    def _own(self, session: Session, invoice_id: str) -> LedgerInvoiceRow:
        row = session.get(LedgerInvoiceRow, invoice_id)
        if row is None or row.agent_id != self._agent_id:
            raise NotFoundError("invoice", invoice_id)
        return row
