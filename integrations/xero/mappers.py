"""Xero's JSON (PascalCase, `/Date(ms+0000)/` dates, decimal amounts) to and from the shared accounting models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import phonenumbers
from xero_python.accounting import Contact, Contacts, CurrencyCode, LineItem, Phone
from xero_python.accounting import Invoice as XeroInvoice
from xero_python.accounting import Invoices as XeroInvoices

from integrations.capabilities.models import AccountCustomer, CustomerDraft, Invoice, InvoiceRequest, InvoiceStatus
from integrations.common.phones import digits, to_e164

__all__ = [
    "contact_body",
    "customer",
    "from_minor",
    "invoice",
    "invoice_body",
    "joined_phones",
    "parse_date",
    "to_minor",
]

PROVIDER = "xero"
# ISO 4217 currencies without minor units among those Xero supports; every other one has two
# (Xero itself rounds amounts to 2 decimals, or 4 for unit prices with unitdp=4).
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "PYG", "UGX", "XAF", "XOF", "RWF", "KMF", "GNF"})
# Xero's invoice states → the shared ones. SUBMITTED is awaiting approval inside the business: not yet owed.
_STATUS: dict[str, InvoiceStatus] = {
    "DRAFT": "draft",
    "SUBMITTED": "draft",
    "AUTHORISED": "open",
    "PAID": "paid",
    "VOIDED": "void",
    "DELETED": "void",
}


def _exponent(currency: str) -> int:
    return 0 if currency.upper() in _ZERO_DECIMAL else 2


def to_minor(amount: Any, currency: str) -> int:
    """A Xero decimal amount (number or string) in integer minor units of `currency`."""
    scaled = Decimal(str(amount or 0)) * (10 ** _exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(minor: int, currency: str) -> float:
    """Integer minor units as the decimal amount Xero takes (a float in the SDK's models)."""
    return float(Decimal(minor) / (10 ** _exponent(currency)))


def parse_date(raw: Any) -> date | None:
    """`/Date(1539561600000+0000)/` (Xero's JSON) or an ISO date string; None when absent."""
    if not isinstance(raw, str) or not raw:
        return None
    if raw.startswith("/Date("):
        inner = raw[len("/Date(") :].split(")", 1)[0]
        sign = -1 if inner.startswith("-") else 1
        millis = inner.lstrip("-").split("+", 1)[0].split("-", 1)[0]
        return datetime.fromtimestamp(sign * int(millis) / 1000, tz=UTC).date()
    return date.fromisoformat(raw[:10])


def joined_phones(contact: dict[str, Any]) -> list[str]:
    """Each phone of a contact, its PhoneCountryCode, PhoneAreaCode and PhoneNumber joined ("1 415 555-0123")."""
    joined = []
    for phone in contact.get("Phones") or []:
        if not isinstance(phone, dict) or not phone.get("PhoneNumber"):
            continue
        parts = (phone.get("PhoneCountryCode"), phone.get("PhoneAreaCode"), phone.get("PhoneNumber"))
        joined.append(" ".join(str(part).strip() for part in parts if part and str(part).strip()))
    return joined


def _preferred_phone(contact: dict[str, Any]) -> str | None:
    """The mobile, else default, else direct-dial phone; with its country code, "+" and digits only."""
    phones = {p.get("PhoneType"): p for p in contact.get("Phones") or [] if isinstance(p, dict)}
    for kind in ("MOBILE", "DEFAULT", "DDI"):
        phone = phones.get(kind)
        if phone and phone.get("PhoneNumber"):
            if phone.get("PhoneCountryCode"):
                parts = (phone.get("PhoneCountryCode"), phone.get("PhoneAreaCode"), phone.get("PhoneNumber"))
                return "+" + "".join(digits(str(part)) for part in parts if part)
            return joined_phones({"Phones": [phone]})[0]
    return None


def customer(contact: dict[str, Any], *, balance_minor: int = 0, currency: str | None = None) -> AccountCustomer:
    """A Xero contact as an `AccountCustomer`; the phone as E.164 when it reads as a valid number."""
    phone = _preferred_phone(contact)
    if phone is not None:
        phone = to_e164(phone if phone.startswith("+") else f"+{phone}", None) or phone
    balances = contact.get("Balances") or {}
    receivable = balances.get("AccountsReceivable") if isinstance(balances, dict) else None
    money = currency or str(contact.get("DefaultCurrency") or "USD")
    if isinstance(receivable, dict) and not balance_minor:
        balance_minor = to_minor(receivable.get("Outstanding"), money)
    return AccountCustomer(
        id=str(contact["ContactID"]),
        name=str(contact.get("Name") or ""),
        phone=phone,
        email=(str(contact["EmailAddress"]).lower() if contact.get("EmailAddress") else None),
        balance_minor=balance_minor,
        currency=money,
        provider=PROVIDER,
        raw=contact,
    )


def invoice(raw: dict[str, Any], *, pay_url: str | None = None) -> Invoice:
    """A Xero ACCREC invoice as an `Invoice` (amounts to minor units, status to the shared states)."""
    currency = str(raw.get("CurrencyCode") or "USD")
    status = _STATUS.get(str(raw.get("Status") or "DRAFT"), "draft")
    return Invoice(
        id=str(raw["InvoiceID"]),
        number=str(raw["InvoiceNumber"]) if raw.get("InvoiceNumber") else None,
        customer_id=str((raw.get("Contact") or {}).get("ContactID") or ""),
        status=status,
        total_minor=to_minor(raw.get("Total"), currency),
        balance_minor=0 if status == "void" else to_minor(raw.get("AmountDue"), currency),
        currency=currency,
        due_date=parse_date(raw.get("DueDate")),
        pay_url=pay_url,
        provider=PROVIDER,
        raw=raw,
    )


def _split_phone(e164: str) -> Phone:
    """An E.164 phone as Xero's parts: PhoneCountryCode and the national number (no area code split)."""
    parsed = phonenumbers.parse(e164, None)
    return Phone(
        phone_type="MOBILE",
        phone_country_code=str(parsed.country_code),
        phone_number=phonenumbers.national_significant_number(parsed),
    )


def contact_body(draft: CustomerDraft) -> Contacts:
    """The PUT /Contacts body for a new customer."""
    contact = Contact(name=draft.name)
    if draft.email:
        contact.email_address = draft.email
    if draft.phone:
        contact.phones = [_split_phone(draft.phone)]
    return Contacts(contacts=[contact])


def invoice_body(request: InvoiceRequest, account_code: str) -> XeroInvoices:
    """The PUT /Invoices body: an AUTHORISED (open, payable) ACCREC invoice, its lines on `account_code`."""
    currency = request.currency.upper()
    invoice_model = XeroInvoice(
        type="ACCREC",
        contact=Contact(contact_id=request.customer_id),
        line_items=[
            LineItem(
                description=line.description,
                quantity=float(line.quantity),
                unit_amount=from_minor(line.unit_amount_minor, currency),
                account_code=account_code,
            )
            for line in request.lines
        ],
        currency_code=getattr(CurrencyCode, currency),
        status="AUTHORISED",
    )
    if request.due_date is not None:
        invoice_model.due_date = request.due_date
    if request.memo:
        invoice_model.reference = request.memo
    return XeroInvoices(invoices=[invoice_model])
