"""Pure translations between Square's JSON and the shared models (and back, for request bodies)."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from integrations.capabilities.models import (
    AccountCustomer,
    CustomerDraft,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    PaymentLink,
    PaymentLinkRequest,
)
from integrations.common.phones import digits, national_digits, same_number

__all__ = [
    "account_customer",
    "customer_create_body",
    "derived_key",
    "invoice",
    "invoice_body",
    "is_open",
    "order_body",
    "payment_link",
    "payment_link_body",
    "phone_query_digits",
]

PROVIDER = "square"

# https://developer.squareup.com/reference/square/objects/InvoiceStatus
_STATUS: dict[str, InvoiceStatus] = {
    "DRAFT": "draft",
    "UNPAID": "open",
    "SCHEDULED": "open",
    "PARTIALLY_PAID": "open",
    "PAYMENT_PENDING": "open",
    "PAID": "paid",
    "PARTIALLY_REFUNDED": "paid",
    "REFUNDED": "void",
    "CANCELED": "void",
    "FAILED": "void",
}


def derived_key(key: str, step: str) -> str:
    """A Square `idempotency_key` (at most 45 characters on most endpoints) for one step of one request.

    The caller's key can be long, so it is hashed; the step keeps the order, invoice and publish
    keys apart. https://developer.squareup.com/docs/build-basics/common-api-patterns/idempotency
    """
    return f"{step}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"[:45]


def phone_query_digits(e164: str) -> str:
    """What to give the fuzzy phone filter: the national digits, which a stored "(415) 555-0123" contains."""
    return national_digits(e164) or digits(e164)


def _split_name(name: str) -> tuple[str, str | None]:
    given, _, family = name.strip().partition(" ")
    return given, family.strip() or None


def customer_create_body(draft: CustomerDraft) -> dict[str, Any]:
    """Fields for `POST /v2/customers` (without the idempotency key)."""
    given, family = _split_name(draft.name)
    body: dict[str, Any] = {"given_name": given}
    if family:
        body["family_name"] = family
    if draft.email:
        body["email_address"] = draft.email
    if draft.phone:
        body["phone_number"] = draft.phone
    return body


def _name(customer: dict[str, Any]) -> str:
    parts = [customer.get("given_name"), customer.get("family_name")]
    joined = " ".join(part for part in parts if part)
    return joined or str(customer.get("company_name") or customer.get("nickname") or "")


def account_customer(customer: dict[str, Any], *, balance_minor: int = 0, currency: str = "USD") -> AccountCustomer:
    """A Square Customer as an `AccountCustomer` (phone and email as Square stores them)."""
    email = customer.get("email_address")
    return AccountCustomer(
        id=str(customer["id"]),
        name=_name(customer),
        phone=customer.get("phone_number"),
        email=str(email).lower() if email else None,
        balance_minor=balance_minor,
        currency=currency,
        provider=PROVIDER,
        raw=customer,
    )


def matches(customer: dict[str, Any], *, phone: str | None, email: str | None) -> bool:
    """Whether a candidate from Square's (fuzzy) search really is the phone or email asked for."""
    if phone and same_number(customer.get("phone_number"), phone):
        return True
    stored = customer.get("email_address")
    return bool(email and stored and str(stored).strip().lower() == email.strip().lower())


def order_body(request: InvoiceRequest, location_id: str) -> dict[str, Any]:
    """The order an invoice bills: one line item per invoice line. https://developer.squareup.com/reference/square/orders-api/create-order"""
    return {
        "location_id": location_id,
        "customer_id": request.customer_id,
        "line_items": [
            {
                "name": line.description,
                # Square's quantity is a decimal string.
                "quantity": str(line.quantity),
                "base_price_money": {"amount": line.unit_amount_minor, "currency": request.currency.upper()},
            }
            for line in request.lines
        ],
    }


def invoice_body(
    request: InvoiceRequest, *, location_id: str, order_id: str, due: date, delivery_method: str
) -> dict[str, Any]:
    """The invoice for an order: the whole balance due on `due`, payable by card on Square's page."""
    body: dict[str, Any] = {
        "location_id": location_id,
        "order_id": order_id,
        "primary_recipient": {"customer_id": request.customer_id},
        "payment_requests": [{"request_type": "BALANCE", "due_date": due.isoformat()}],
        "delivery_method": delivery_method,
        "accepted_payment_methods": {"card": True},
    }
    if request.memo:
        body["description"] = request.memo
    return body


def _amount(money: Any) -> int:
    return int(money.get("amount") or 0) if isinstance(money, dict) else 0


def invoice(raw: dict[str, Any]) -> Invoice:
    """A Square Invoice as an `Invoice`: total from its payment requests, balance = total − paid."""
    requests = raw.get("payment_requests") or []
    total = sum(_amount(request.get("computed_amount_money")) for request in requests)
    paid = sum(_amount(request.get("total_completed_amount_money")) for request in requests)
    currency = next(
        (str(r["computed_amount_money"].get("currency")) for r in requests if r.get("computed_amount_money")), "USD"
    )
    dues = sorted(str(request["due_date"]) for request in requests if request.get("due_date"))
    status = _STATUS.get(str(raw.get("status")), "open")
    recipient = raw.get("primary_recipient") or {}
    return Invoice(
        id=str(raw["id"]),
        number=raw.get("invoice_number"),
        customer_id=str(recipient.get("customer_id") or ""),
        status=status,
        total_minor=total,
        balance_minor=0 if status in {"paid", "void"} else max(total - paid, 0),
        currency=currency,
        due_date=date.fromisoformat(dues[0]) if dues else None,
        pay_url=raw.get("public_url"),
        provider=PROVIDER,
        raw=raw,
    )


def is_open(found: Invoice) -> bool:
    """Unpaid (or partly paid) with something left to pay."""
    return found.status == "open" and found.balance_minor > 0


def payment_link_body(request: PaymentLinkRequest, location_id: str) -> dict[str, Any]:
    """A quick-pay link for one amount. https://developer.squareup.com/reference/square/checkout-api/create-payment-link"""
    body: dict[str, Any] = {
        "quick_pay": {
            "name": request.description,
            "price_money": {"amount": request.amount_minor, "currency": request.currency.upper()},
            "location_id": location_id,
        },
    }
    prefill: dict[str, str] = {}
    if request.customer_email:
        prefill["buyer_email"] = request.customer_email.strip().lower()
    if request.customer_phone:
        prefill["buyer_phone_number"] = request.customer_phone
    if prefill:
        body["pre_populated_data"] = prefill
    return body


def payment_link(link: dict[str, Any], order: dict[str, Any] | None, *, description: str | None = None) -> PaymentLink:
    """A Square PaymentLink (and its order, which says whether it was paid) as a `PaymentLink`."""
    order = order or {}
    total = order.get("total_money") or {}
    due = order.get("net_amount_due_money")
    state = str(order.get("state") or "OPEN")
    # unconfirmed: that a paid quick-pay order shows tenders / no amount due while staying OPEN or
    # moving to COMPLETED; either way the money is in. A CANCELED order can no longer be paid.
    if state == "CANCELED":
        status = "expired"
    elif state == "COMPLETED" or order.get("tenders") or (due is not None and _amount(due) == 0 and _amount(total)):
        status = "paid"
    else:
        status = "open"
    items = order.get("line_items") or [{}]
    return PaymentLink(
        id=str(link["id"]),
        url=str(link.get("url") or link.get("long_url") or ""),
        amount_minor=_amount(total),
        currency=str(total.get("currency") or "USD"),
        description=description or str(items[0].get("name") or link.get("description") or ""),
        status=status,
        provider=PROVIDER,
        raw={"payment_link": link, "order": order},
    )
