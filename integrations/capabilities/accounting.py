"""The accounting capability: a caller's customer account, open invoices and balance, and new invoices.

Money is integer minor units plus an ISO 4217 currency everywhere (24000 USD is $240.00).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from integrations.capabilities.models import AccountCustomer, CustomerDraft, Invoice, InvoiceRequest

__all__ = ["AccountingProvider"]


@runtime_checkable
class AccountingProvider(Protocol):
    """Customers, invoices and balances in the business's books (QuickBooks, Xero, Square, Stripe…)."""

    name: str

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Customers whose phone (E.164 given; any stored format matches) or email (case-insensitive) match.

        Every match is returned: the caller of this method reports two matches, it never guesses.
        Caller text reaches the provider only escaped (a quote in a name never changes a query).
        """
        ...

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        """A new customer; the same `draft.idempotency_key` never creates a second one."""
        ...

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's unpaid invoices (balance above zero), oldest due first."""
        ...

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """A new open invoice; the same `request.idempotency_key` never creates a second one."""
        ...

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Have the provider email the invoice (to `email`, else the customer's address on file)."""
        ...

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice as it stands now. Raises `NotFoundError` for an unknown id."""
        ...
