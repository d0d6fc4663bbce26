"""QuickBooks JSON to the shared accounting models and back, plus query-language quoting.

QuickBooks keeps money as decimal amounts in the transaction's currency (`TotalAmt: 240.0`);
the shared models use integer minor units. Conversions go through `Decimal`, never floats.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from integrations.capabilities.models import AccountCustomer, CustomerDraft, Invoice, InvoiceRequest
from integrations.common import phones
from integrations.quickbooks.errors import PROVIDER

__all__ = [
    "customer_request",
    "from_minor",
    "invoice_request",
    "quote",
    "to_customer",
    "to_invoice",
    "to_minor",
]

# ISO 4217 currencies without minor units that QuickBooks supports; everything else has two.
# unconfirmed: QuickBooks' own list of zero-decimal currencies (ISO 4217 used instead).
_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV"})
_THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def _exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    return 3 if code in _THREE_DECIMAL else 2


def to_minor(amount: Any, currency: str) -> int:
    """A QuickBooks decimal amount (number or string) as integer minor units; 0 when absent."""
    if amount is None or amount == "":
        return 0
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return 0
    scaled = value.scaleb(_exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(scaled)


def from_minor(minor: int, currency: str) -> float:
    """Minor units as the decimal amount QuickBooks' JSON carries (a JSON number)."""
    return float(Decimal(minor).scaleb(-_exponent(currency)))


def quote(text: str) -> str:
    """`text` as a QuickBooks query-language string literal: quoted, with `\\` and `'` backslash-escaped.

    Caller text only ever reaches a query through here, so a quote in it ends nothing.
    """
    # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    # unconfirmed: that QuickBooks reads `\\` as one backslash (documented: `\'` is a quote).
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _currency_of(obj: dict[str, Any], fallback: str) -> str:
    ref = obj.get("CurrencyRef")
    if isinstance(ref, dict) and ref.get("value"):
        return str(ref["value"]).upper()
    return fallback


def to_customer(obj: dict[str, Any], *, home_currency: str = "USD", region: str | None = None) -> AccountCustomer:
    """A QuickBooks `Customer` as an `AccountCustomer`; phone as E.164 when it parses (else as typed)."""
    phone_obj = obj.get("PrimaryPhone") or obj.get("Mobile") or {}
    typed = phone_obj.get("FreeFormNumber") if isinstance(phone_obj, dict) else None
    phone = (phones.to_e164(typed, region or "US") or typed) if typed else None
    email_obj = obj.get("PrimaryEmailAddr") or {}
    email = email_obj.get("Address") if isinstance(email_obj, dict) else None
    currency = _currency_of(obj, home_currency)
    return AccountCustomer(
        id=str(obj.get("Id", "")),
        name=str(obj.get("DisplayName") or obj.get("FullyQualifiedName") or ""),
        phone=phone,
        email=email.lower() if isinstance(email, str) and email else None,
        balance_minor=to_minor(obj.get("Balance"), currency),
        currency=currency,
        provider=PROVIDER,
        raw=obj,
    )


def customer_request(draft: CustomerDraft) -> dict[str, Any]:
    """The body of `POST /customer` for a draft (phone stored in E.164 as given)."""
    body: dict[str, Any] = {"DisplayName": draft.name}
    if draft.phone:
        body["PrimaryPhone"] = {"FreeFormNumber": draft.phone}
    if draft.email:
        body["PrimaryEmailAddr"] = {"Address": draft.email}
    return body


def invoice_request(request: InvoiceRequest, *, item_id: str) -> dict[str, Any]:
    """The body of `POST /invoice`: one `SalesItemLineDetail` line per request line, on `item_id`."""
    currency = request.currency.upper()
    lines: list[dict[str, Any]] = []
    for line in request.lines:
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": from_minor(line.quantity * line.unit_amount_minor, currency),
                "Description": line.description,
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_id},
                    "Qty": line.quantity,
                    "UnitPrice": from_minor(line.unit_amount_minor, currency),
                },
            }
        )
    body: dict[str, Any] = {
        "CustomerRef": {"value": request.customer_id},
        "Line": lines,
        # unconfirmed: a company without multicurrency accepts a CurrencyRef equal to its home currency.
        "CurrencyRef": {"value": currency},
    }
    if request.due_date is not None:
        body["DueDate"] = request.due_date.isoformat()
    if request.memo:
        body["CustomerMemo"] = {"value": request.memo}
    return body


def _date(raw: Any) -> date | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def to_invoice(obj: dict[str, Any], *, home_currency: str = "USD") -> Invoice:
    """A QuickBooks `Invoice` as an `Invoice`: paid once its `Balance` is zero, else open."""
    currency = _currency_of(obj, home_currency)
    total = to_minor(obj.get("TotalAmt"), currency)
    balance = to_minor(obj.get("Balance"), currency)
    customer = obj.get("CustomerRef") or {}
    link = obj.get("InvoiceLink")
    return Invoice(
        id=str(obj.get("Id", "")),
        number=str(obj["DocNumber"]) if obj.get("DocNumber") else None,
        customer_id=str(customer.get("value", "")) if isinstance(customer, dict) else "",
        # unconfirmed: a voided invoice reads as TotalAmt 0 / Balance 0, indistinguishable here from paid.
        status="open" if balance > 0 else "paid",
        total_minor=total,
        balance_minor=balance,
        currency=currency,
        due_date=_date(obj.get("DueDate")),
        pay_url=str(link) if isinstance(link, str) and link else None,
        provider=PROVIDER,
        raw=obj,
    )
