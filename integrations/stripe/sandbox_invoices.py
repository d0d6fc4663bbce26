"""The Stripe emulator's invoices: drafts, their invoice items, finalize, send, pay and void.

Shapes follow Stripe's current (2026) example objects in `fixtures3.json` (`invoice`, `line_item`,
`invoiceitem`); the lifecycle follows https://docs.stripe.com/invoicing/overview (draft → open →
paid | void | uncollectible). Amounts are integer minor units, as Stripe's are.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from integrations.stripe.sandbox_wire import ApiError, integer, invalid, missing, new_id, no_such

__all__ = ["InvoiceBook"]

# The emulator's one connected account, as hosted invoice URLs name it.
_ACCOUNT = "acct_1SandboxToolServer0"
_COLLECTION_METHODS = {"charge_automatically", "send_invoice"}
_PENDING_BEHAVIOURS = {"exclude", "include"}


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if str(value) not in {"true", "false"}:
        raise invalid(name, f"Invalid boolean: {value}")
    return str(value) == "true"


def _currency(value: Any, param: str) -> str:
    currency = str(value or "")
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(param, f"Invalid currency: {currency}")
    return currency.lower()


class InvoiceBook:
    """Invoices and invoice items of the emulated account.

    `customer(id, param)` reads a customer (raising Stripe's 404 for an unknown one) and `now()`
    the account's clock; both belong to `StripeState`, which owns this book.
    """

    def __init__(self, customer: Callable[[str, str], dict[str, Any]], now: Callable[[], int]) -> None:
        self._customer = customer
        self._now = now
        self.invoices: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        # Emails `/send` would have sent (Stripe keeps no such list; the emulator shows it in /_state).
        self.emails: list[dict[str, Any]] = []
        # Next invoice number per customer prefix (Stripe's `next_invoice_sequence`).
        self.sequences: dict[str, int] = {}

    # -- reads -----------------------------------------------------------------------------------

    def invoice(self, invoice_id: str, param: str = "invoice") -> dict[str, Any]:
        if invoice_id not in self.invoices:
            raise no_such("invoice", invoice_id, param)
        return copy.deepcopy(self.invoices[invoice_id])

    def newest(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Invoices newest first, filtered as GET /v1/invoices filters them."""
        if filters.get("customer") is not None:
            # unconfirmed: that an unknown customer in a list filter is a 404 rather than no results.
            self._customer(str(filters["customer"]), "customer")
        found = [copy.deepcopy(invoice) for invoice in reversed(self.invoices.values())]
        for name in ("customer", "status", "collection_method"):
            if filters.get(name) is not None:
                found = [invoice for invoice in found if invoice[name] == filters[name]]
        return found

    # -- writes: https://docs.stripe.com/api/invoices --------------------------------------------------

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise missing("customer")
        customer = self._customer(str(customer_id), "customer")
        method = str(params.get("collection_method") or "charge_automatically")
        if method not in _COLLECTION_METHODS:
            raise invalid(
                "collection_method", f"Invalid collection_method: must be one of {sorted(_COLLECTION_METHODS)}"
            )
        behaviour = str(params.get("pending_invoice_items_behavior") or "exclude")
        if behaviour not in _PENDING_BEHAVIOURS:
            raise invalid("pending_invoice_items_behavior", f"Invalid pending_invoice_items_behavior: {behaviour}")
        if behaviour == "include":
            raise invalid("pending_invoice_items_behavior", "The emulator bills only items added to the invoice.")
        created = self._now()
        due_date = self._due_date(params, method, created)
        currency = _currency(params.get("currency") or customer.get("currency") or "usd", "currency")
        invoice_id = new_id("in_")
        self.invoices[invoice_id] = _invoice_object(
            invoice_id, params, customer, created=created, method=method, currency=currency, due_date=due_date
        )
        return self.invoice(invoice_id)

    def add_item(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/invoiceitems onto a draft invoice: https://docs.stripe.com/api/invoiceitems/create"""
        customer_id = params.get("customer")
        if not customer_id:
            raise missing("customer")
        self._customer(str(customer_id), "customer")
        invoice_id = params.get("invoice")
        if not invoice_id:
            raise invalid("invoice", "The emulator keeps no pending invoice items: name the draft `invoice`.")
        stored = self.invoices.get(str(invoice_id))
        if stored is None:
            raise no_such("invoice", str(invoice_id), "invoice")
        if stored["customer"] != customer_id:
            raise invalid("invoice", "The invoice's customer must match the invoice item's customer.")
        if stored["status"] != "draft":
            # unconfirmed: Stripe's exact wording; the rule (only drafts take new items) is documented.
            raise invalid(
                "invoice", f"You can only add invoice items to draft invoices; {invoice_id} is {stored['status']}."
            )
        if params.get("currency") is not None and _currency(params["currency"], "currency") != stored["currency"]:
            raise invalid("currency", "The invoice item's currency must match the invoice's currency.")
        quantity = integer(params, "quantity", default=1, low=1)
        unit = self._unit_amount(params)
        amount = int((unit * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        item_id = new_id("ii_")
        item = _item_object(item_id, params, stored, quantity=quantity, unit=unit, amount=amount, now=self._now())
        self.items[item_id] = item
        stored["lines"]["data"].append(_line_object(item, stored))
        self._total(stored)
        return copy.deepcopy(item)

    def finalize(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._stored(invoice_id)
        if stored["status"] != "draft":
            raise ApiError(400, "This invoice is already finalized, you can't re-finalize a non-draft invoice.")
        now = self._now()
        customer = self._customer(stored["customer"], "customer")
        prefix = str(customer["invoice_prefix"])
        sequence = self.sequences.get(prefix, int(customer.get("next_invoice_sequence") or 1))
        self.sequences[prefix] = sequence + 1
        token = secrets.token_urlsafe(24)
        stored.update(
            {
                "status": "open",
                "number": f"{prefix}-{sequence:04d}",
                "auto_advance": _flag(params, "auto_advance", stored["auto_advance"]),
                "effective_at": now,
                "hosted_invoice_url": f"https://invoice.stripe.com/i/{_ACCOUNT}/test_{token}",
                "invoice_pdf": f"https://pay.stripe.com/invoice/{_ACCOUNT}/test_{token}/pdf",
                "ending_balance": 0,
            }
        )
        stored["status_transitions"]["finalized_at"] = now
        if stored["amount_due"] == 0:
            # A finalized invoice for nothing is paid at once: https://docs.stripe.com/invoicing/overview
            self._mark_paid(stored, now)
        return self.invoice(invoice_id)

    def send(self, invoice_id: str) -> dict[str, Any]:
        """POST /v1/invoices/{id}/send: Stripe emails the customer's address on file."""
        stored = self._stored(invoice_id)
        if stored["collection_method"] != "send_invoice":
            raise ApiError(400, "You can only manually send an invoice if its collection method is 'send_invoice'.")
        if stored["status"] in {"draft", "void"}:
            # unconfirmed: whether Stripe finalizes a draft on /send instead; the emulator refuses it.
            raise ApiError(400, f"You can't send an invoice whose status is {stored['status']}.")
        email = self._customer(stored["customer"], "customer").get("email")
        if not email:
            raise ApiError(400, "The customer has no email address to send the invoice to.", param="customer")
        self.emails.append({"invoice": invoice_id, "to": email, "at": self._now()})
        return self.invoice(invoice_id)

    def pay(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/invoices/{id}/pay. Only `paid_out_of_band=true` succeeds: no card is on file here."""
        stored = self._stored(invoice_id)
        self._payable(stored)
        if not _flag(params, "paid_out_of_band", False):
            # unconfirmed: the exact error for a customer with no payment method.
            raise ApiError(
                400, "This customer has no attached payment source or default payment method.", param="payment_method"
            )
        self._mark_paid(stored, self._now())
        return self.invoice(invoice_id)

    def pay_on_hosted_page(self, invoice_id: str) -> dict[str, Any]:
        """What the customer paying the hosted invoice page does: paid in full by card."""
        stored = self._stored(invoice_id)
        self._payable(stored)
        self._mark_paid(stored, self._now(), attempted=True)
        return self.invoice(invoice_id)

    def void(self, invoice_id: str) -> dict[str, Any]:
        stored = self._stored(invoice_id)
        if stored["status"] not in {"open", "uncollectible"}:
            raise ApiError(400, f"You can only void an open or uncollectible invoice; this one is {stored['status']}.")
        stored["status"] = "void"
        stored["status_transitions"]["voided_at"] = self._now()
        return self.invoice(invoice_id)

    # -- internals -------------------------------------------------------------------------------

    def _stored(self, invoice_id: str) -> dict[str, Any]:
        if invoice_id not in self.invoices:
            raise no_such("invoice", invoice_id, "invoice")
        return self.invoices[invoice_id]

    @staticmethod
    def _payable(stored: dict[str, Any]) -> None:
        if stored["status"] not in {"open", "uncollectible"}:
            raise ApiError(400, f"Invoice is {stored['status']}; only an open invoice can be paid.")

    @staticmethod
    def _due_date(params: dict[str, Any], method: str, created: int) -> int | None:
        has_days, has_date = params.get("days_until_due") is not None, params.get("due_date") is not None
        if method == "charge_automatically":
            if has_days or has_date:
                name = "days_until_due" if has_days else "due_date"
                raise invalid(name, f"{name} can only be set when collection_method=send_invoice.")
            return None
        if has_days and has_date:
            raise invalid("due_date", "You may only specify one of these parameters: days_until_due, due_date.")
        if has_date:
            # unconfirmed: whether Stripe refuses a due date already past; the emulator takes any.
            return integer(params, "due_date", low=0)
        return created + integer(params, "days_until_due", default=30, low=0, high=10 * 365) * 86400

    @staticmethod
    def _unit_amount(params: dict[str, Any]) -> Decimal:
        if params.get("price_data") is not None or params.get("pricing") is not None:
            raise invalid("price_data", "The emulator prices invoice items by unit_amount_decimal or amount only.")
        if params.get("unit_amount_decimal") is not None and params.get("amount") is not None:
            raise invalid("amount", "You may only specify one of these parameters: amount, unit_amount_decimal.")
        if params.get("amount") is not None:
            return Decimal(integer(params, "amount", low=-(10**12)))
        raw = params.get("unit_amount_decimal")
        if raw is None:
            raise ApiError(
                400, "You must specify either `amount`, `price`, `pricing` or `unit_amount_decimal`.", param="amount"
            )
        try:
            unit = Decimal(str(raw))
        except InvalidOperation:
            raise invalid("unit_amount_decimal", f"Invalid decimal: {raw}") from None
        if not unit.is_finite() or unit < 0:
            raise invalid("unit_amount_decimal", f"Invalid decimal: {raw}")
        return unit

    @staticmethod
    def _total(stored: dict[str, Any]) -> None:
        total = sum(int(line["amount"]) for line in stored["lines"]["data"])
        stored.update(
            {
                "subtotal": total,
                "subtotal_excluding_tax": total,
                "total": total,
                "total_excluding_tax": total,
                "amount_due": total,
                "amount_remaining": total,
            }
        )

    @staticmethod
    def _mark_paid(stored: dict[str, Any], now: int, *, attempted: bool = False) -> None:
        stored.update(
            {
                "status": "paid",
                "amount_paid": stored["amount_due"],
                "amount_remaining": 0,
                "attempted": attempted or stored["attempted"],
                "attempt_count": stored["attempt_count"] + (1 if attempted else 0),
                "next_payment_attempt": None,
            }
        )
        stored["status_transitions"]["paid_at"] = now


def _invoice_object(
    invoice_id: str,
    params: dict[str, Any],
    customer: dict[str, Any],
    *,
    created: int,
    method: str,
    currency: str,
    due_date: int | None,
) -> dict[str, Any]:
    """A new draft invoice (https://docs.stripe.com/api/invoices/object), with the fixture's fields."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Tool Server Sandbox",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": _flag(params, "auto_advance", method == "charge_automatically"),
        "automatic_tax": {
            "enabled": False,
            "liability": None,
            "status": None,
            "disabled_reason": None,
            "provider": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": method,
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description") or None,
        "discounts": [],
        "due_date": due_date,
        "effective_at": None,
        "ending_balance": None,
        "footer": params.get("footer") or None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": None,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": created,
    }


def _item_object(
    item_id: str,
    params: dict[str, Any],
    invoice: dict[str, Any],
    *,
    quantity: int,
    unit: Decimal,
    amount: int,
    now: int,
) -> dict[str, Any]:
    """A new invoice item (https://docs.stripe.com/api/invoiceitems/object), with the fixture's fields."""
    return {
        "id": item_id,
        "object": "invoiceitem",
        "amount": amount,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_account": None,
        "date": now,
        "description": params.get("description") or None,
        "discountable": True,
        "discounts": [],
        "invoice": invoice["id"],
        "livemode": False,
        "metadata": dict(params.get("metadata") or {}),
        "net_amount": amount,
        "parent": None,
        "period": {"end": now, "start": now},
        "pricing": {"price_details": None, "type": None, "unit_amount_decimal": format(unit, "f")},
        "proration": False,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }


def _line_object(item: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice's line for one invoice item (https://docs.stripe.com/api/invoice-line-item/object)."""
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice["id"],
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": dict(item["pricing"]),
        "quantity": item["quantity"],
        "quantity_decimal": item["quantity_decimal"],
        "subscription": None,
        "subtotal": item["amount"],
        "taxes": [],
    }
