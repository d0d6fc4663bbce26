"""Pure translations for Stripe as a set of books: customers and invoices to the shared models, and back.

Objects: https://docs.stripe.com/api/customers/object and https://docs.stripe.com/api/invoices/object
Request shapes follow stripe-python's typed params (the current API).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from stripe.params import (
    CustomerCreateParams,
    InvoiceCreateParams,
    InvoiceItemCreateParams,
)

from integrations.capabilities.models import (
    AccountCustomer,
    CustomerDraft,
    Invoice,
    InvoiceLine,
    InvoiceRequest,
    InvoiceStatus,
)
from integrations.common.phones import digits, same_number

__all__ = [
    "DEFAULT_DAYS_UNTIL_DUE",
    "account_customer",
    "customer_email_query",
    "customer_params",
    "customer_phone_query",
    "derived_key",
    "due_timestamp",
    "invoice",
    "invoice_create_params",
    "invoice_item_params",
    "matches_email",
    "matches_phone",
    "search_literal",
]

PROVIDER = "stripe"
# Net 30 when the request names no due date: Stripe's own default for `days_until_due` is also 30.
# https://docs.stripe.com/api/invoices/create#create_invoice-days_until_due
DEFAULT_DAYS_UNTIL_DUE = 30
# Stripe accepts Idempotency-Key values up to 255 characters; a longer caller key is hashed.
_MAX_KEY_BASE = 200
# How many trailing digits of a phone the substring search uses. Four stay contiguous in every
# common way of writing a number ("(415) 555-0123", "415.555.0123", "+1 415 555 0123").
_PHONE_TAIL = 4

# https://docs.stripe.com/api/invoices/object#invoice_object-status
# `uncollectible` is an invoice the business wrote off, which Stripe still lets the customer pay:
# there is a balance and a working pay page, so it reads as "open".
_STATUS: dict[str, InvoiceStatus] = {
    "draft": "draft",
    "open": "open",
    "uncollectible": "open",
    "paid": "paid",
    "void": "void",
}


def derived_key(key: str, step: str) -> str:
    """The Idempotency-Key of one step of one request: the caller's key (hashed when long) plus the step.

    https://docs.stripe.com/api/idempotent_requests (keys up to 255 characters, kept 24 hours)
    """
    base = key if len(key) <= _MAX_KEY_BASE else f"books-{hashlib.sha256(key.encode()).hexdigest()}"
    return f"{base}:{step}"


def search_literal(text: str) -> str:
    """`text` as a quoted string of Stripe's search query language.

    Inside quotes a backslash escapes the next character, so backslashes and single quotes are
    escaped and nothing the caller said can close the string or add a clause.
    https://docs.stripe.com/search#search-query-language
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def customer_phone_query(e164: str) -> str:
    """Candidates for one phone: stored exactly as E.164, or containing its last four digits.

    Stripe keeps `phone` as typed and its `:` match is exact, so "(415) 555-0123" is found only
    through a substring (`~`, at least 3 characters) of digits that stay together however the
    number was written. The candidates are then compared exactly (`matches_phone`), so a
    stranger sharing the last four digits is never returned.
    # unconfirmed: that `phone` takes `~` substring matching on customers (the query-field list
    # could not be read here; third-party drivers document "contains" on it).
    """
    tail = digits(e164)[-_PHONE_TAIL:]
    exact = f"phone:{search_literal(e164)}"
    return f"{exact} OR phone~{search_literal(tail)}" if len(tail) >= 3 else exact


def customer_email_query(email: str) -> str:
    """An exact (case-insensitive) email match: https://docs.stripe.com/search#query-fields-for-customers"""
    return f"email:{search_literal(email.strip().lower())}"


def matches_phone(customer: dict[str, Any], e164: str) -> bool:
    return same_number(customer.get("phone"), e164)


def matches_email(customer: dict[str, Any], email: str) -> bool:
    return str(customer.get("email") or "").strip().lower() == email.strip().lower()


def customer_params(draft: CustomerDraft) -> CustomerCreateParams:
    params: CustomerCreateParams = {"name": draft.name}
    if draft.email:
        # Stripe's list filter on email is case-sensitive: one spelling keeps one customer findable.
        params["email"] = draft.email.strip().lower()
    if draft.phone:
        params["phone"] = draft.phone
    return params


def account_customer(
    customer: dict[str, Any], *, balance_minor: int = 0, currency: str | None = None
) -> AccountCustomer:
    """A Stripe customer as the shared model; `balance_minor` is what its open invoices still ask for."""
    return AccountCustomer(
        id=str(customer["id"]),
        name=str(customer.get("name") or customer.get("email") or customer["id"]),
        phone=customer.get("phone") or None,
        email=customer.get("email") or None,
        balance_minor=balance_minor,
        currency=(currency or customer.get("currency") or "usd").upper(),
        provider=PROVIDER,
        raw=customer,
    )


def due_timestamp(due: date) -> int:
    """A due date as the Unix time Stripe takes: noon UTC, which is that same date from UTC-12 to UTC+11."""
    return int(datetime.combine(due, time(12, 0), tzinfo=UTC).timestamp())


def invoice_create_params(request: InvoiceRequest) -> InvoiceCreateParams:
    """A draft invoice the customer pays on Stripe's hosted page, billing only the lines added to it.

    - `collection_method=send_invoice`: the customer pays the hosted invoice (no card on file is
      charged), and `/send` emails it;
    - `pending_invoice_items_behavior=exclude`: pending items left on the customer by anything else
      are not swept onto this invoice;
    - `auto_advance=false`: Stripe neither finalizes nor emails on its own; `create_invoice`
      finalizes and `send_invoice` emails, each when asked.
    https://docs.stripe.com/api/invoices/create
    """
    params: InvoiceCreateParams = {
        "customer": request.customer_id,
        "collection_method": "send_invoice",
        "currency": request.currency.lower(),
        "pending_invoice_items_behavior": "exclude",
        "auto_advance": False,
    }
    if request.due_date is not None:
        params["due_date"] = due_timestamp(request.due_date)
    else:
        params["days_until_due"] = DEFAULT_DAYS_UNTIL_DUE
    if request.memo:
        # The invoice's `description` is what the Dashboard and the hosted page call the memo.
        params["description"] = request.memo
    return params


def invoice_item_params(customer_id: str, invoice_id: str, line: InvoiceLine) -> InvoiceItemCreateParams:
    """One line on the draft invoice: quantity × a unit amount in minor units (no Product needed).

    https://docs.stripe.com/api/invoiceitems/create
    """
    return {
        "customer": customer_id,
        "invoice": invoice_id,
        "description": line.description,
        "quantity": line.quantity,
        "unit_amount_decimal": Decimal(line.unit_amount_minor),
    }


def invoice(raw: dict[str, Any]) -> Invoice:
    """A Stripe invoice as the shared model; `pay_url` is its hosted page (set once finalized)."""
    due = raw.get("due_date")
    customer = raw.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    status = _STATUS.get(str(raw.get("status")), "open")
    return Invoice(
        id=str(raw["id"]),
        number=raw.get("number") or None,
        customer_id=str(customer or ""),
        status=status,
        total_minor=int(raw.get("total") or 0),
        # A voided invoice asks for nothing more, whatever `amount_remaining` still says.
        balance_minor=0 if status == "void" else int(raw.get("amount_remaining") or 0),
        currency=str(raw.get("currency") or "").upper(),
        due_date=datetime.fromtimestamp(int(due), UTC).date() if due else None,
        pay_url=raw.get("hosted_invoice_url") or None,
        provider=PROVIDER,
        raw=raw,
    )
