"""The emulator's in-memory Stripe account: customers, Checkout Sessions, payments, idempotency keys.

Objects carry the fields of Stripe's current (2026) example objects in `fixtures3.json`, with the
values an open, card-only, tax-free hosted session really has:
https://docs.stripe.com/api/customers/object and https://docs.stripe.com/api/checkout/sessions/object
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations.stripe.sandbox_wire import ApiError, integer, invalid, missing, new_id, no_such

__all__ = ["Remembered", "StripeState"]

# A session lives 24 hours unless created with `expires_at` between 30 minutes and 24 hours out.
_DEFAULT_LIFETIME = 24 * 3600
_MIN_LIFETIME = 30 * 60


@dataclass(frozen=True)
class Remembered:
    """The first answer to an idempotent POST, replayed for the same key and parameters."""

    fingerprint: str
    status: int
    body: dict[str, Any]
    request_id: str


class StripeState:
    """One test-mode Stripe account held in memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, list[dict[str, Any]]] = {}
        # Not part of the session object; the PaymentIntent made on payment takes its description.
        self.payment_intent_data: dict[str, dict[str, Any]] = {}
        self.payments: list[dict[str, Any]] = []
        self.idempotency: dict[str, Remembered] = {}

    def dump(self) -> dict[str, Any]:
        return {
            "customers": list(self.customers.values()),
            "checkout_sessions": [
                {**self.session(session_id), "line_items": self.line_items[session_id]} for session_id in self.sessions
            ],
            "payments": self.payments,
            "idempotency_keys": sorted(self.idempotency),
        }

    def expire_access_tokens(self) -> None:
        """Nothing to expire: Stripe authenticates with API keys, not OAuth tokens."""

    def revoke_refresh_tokens(self) -> None:
        """Nothing to revoke: Stripe authenticates with API keys, not OAuth tokens."""

    def now(self) -> int:
        return int(self._clock())

    # -- customers ------------------------------------------------------------------------------

    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        email = params.get("email")
        if email and "@" not in str(email):
            raise ApiError(400, f"Invalid email address: {email}", code="email_invalid", param="email")
        customer: dict[str, Any] = {
            "id": new_id("cus_", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description") or None,
            "discount": None,
            "email": email or None,
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "name": params.get("name") or None,
            "next_invoice_sequence": 1,
            "phone": params.get("phone") or None,
            "preferred_locales": list(params.get("preferred_locales") or []),
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def customer(self, customer_id: str, param: str = "id") -> dict[str, Any]:
        if customer_id not in self.customers:
            raise no_such("customer", customer_id, param)
        return copy.deepcopy(self.customers[customer_id])

    def newest_customers(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(customer) for customer in reversed(self.customers.values())]

    # -- checkout sessions -----------------------------------------------------------------------

    def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode") or ""
        if not mode:
            raise missing("mode")
        if mode != "payment":
            raise invalid("mode", f"The emulator supports mode=payment only, not {mode!r}.")
        if not params.get("success_url") and params.get("ui_mode", "hosted_page") == "hosted_page":
            raise missing("success_url")
        for name in ("success_url", "cancel_url"):
            url = params.get(name)
            if url and not str(url).startswith(("https://", "http://")):
                raise ApiError(400, "Not a valid URL", code="url_invalid", param=name)
        customer_id = params.get("customer")
        if customer_id and params.get("customer_email"):
            raise ApiError(400, "You may only specify one of these parameters: customer, customer_email.")
        if customer_id:
            self.customer(str(customer_id), "customer")
        created = self.now()
        expires_at = integer(
            params,
            "expires_at",
            default=created + _DEFAULT_LIFETIME,
            low=created + _MIN_LIFETIME,
            high=created + _DEFAULT_LIFETIME,
        )
        session_id = new_id("cs_test_", 58)
        items = self._line_items(params.get("line_items"), created)
        currencies = {item["currency"] for item in items}
        if len(currencies) > 1:
            raise invalid("line_items", "All line items must use the same currency.")
        total = sum(item["amount_total"] for item in items)
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
            "billing_address_collection": None,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": created,
            "currency": currencies.pop(),
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer_id or None,
            "customer_account": None,
            "customer_creation": None if customer_id else params.get("customer_creation", "if_required"),
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "discounts": [],
            "expires_at": expires_at,
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            },
            "livemode": False,
            "locale": params.get("locale"),
            "managed_payments": {"enabled": False},
            "metadata": dict(params.get("metadata") or {}),
            "mode": mode,
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": params.get("ui_mode", "hosted_page"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "wallet_options": None,
        }
        self.sessions[session_id] = session
        self.line_items[session_id] = items
        self.payment_intent_data[session_id] = dict(params.get("payment_intent_data") or {})
        return self.session(session_id)

    def session(self, session_id: str, param: str = "session") -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise no_such("checkout.session", session_id, param)
        if session["status"] == "open" and self.now() >= session["expires_at"]:
            self._close(session, "expired")
        return copy.deepcopy(session)

    def newest_sessions(self) -> list[dict[str, Any]]:
        return [self.session(session_id) for session_id in reversed(self.sessions)]

    def session_line_items(self, session_id: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.line_items[session_id])

    def expire_session(self, session_id: str) -> dict[str, Any]:
        session = self.session(session_id)
        if session["status"] != "open":
            raise ApiError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This one is {session["status"]}.',
                param="session",
            )
        self._close(self.sessions[session_id], "expired")
        return self.session(session_id)

    def pay(self, session_id: str) -> dict[str, Any]:
        """What a payer completing the hosted page does: the session completes with a PaymentIntent."""
        session = self.session(session_id)
        if session["status"] != "open":
            raise ApiError(409, f"The session is {session['status']}; only an open session can be paid.")
        stored = self.sessions[session_id]
        customer = self.customers.get(stored["customer"] or "", {})
        payment = {
            "id": new_id("pi_"),
            "object": "payment_intent",
            "amount": stored["amount_total"],
            "amount_received": stored["amount_total"],
            "currency": stored["currency"],
            "customer": stored["customer"],
            "checkout_session": session_id,
            "description": self.payment_intent_data[session_id].get("description"),
            "status": "succeeded",
            "created": self.now(),
            "livemode": False,
        }
        self.payments.append(payment)
        stored["payment_intent"] = payment["id"]
        stored["payment_status"] = "paid"
        stored["customer_details"] = {
            "address": None,
            "business_name": None,
            "email": customer.get("email") or stored["customer_email"],
            "individual_name": None,
            "name": customer.get("name"),
            "phone": customer.get("phone"),
            "tax_exempt": "none",
            "tax_ids": [],
        }
        self._close(stored, "complete")
        return self.session(session_id)

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _close(session: dict[str, Any], status: str) -> None:
        session["status"] = status
        # Stripe clears the URL once the hosted page can no longer be paid.
        session["url"] = None

    def _line_items(self, raw: Any, created: int) -> list[dict[str, Any]]:
        if not raw:
            raise missing("line_items")
        if not isinstance(raw, list):
            raise invalid("line_items", "Invalid array")
        return [self._line_item(item, index, created) for index, item in enumerate(raw)]

    def _line_item(self, item: Any, index: int, created: int) -> dict[str, Any]:
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, "Invalid object")
        quantity = integer(item, "quantity", low=1)
        if item.get("price"):
            raise no_such("price", str(item["price"]), f"{where}[price]")
        price_data = item.get("price_data")
        if not isinstance(price_data, dict):
            raise missing(f"{where}[price_data]")
        currency = str(price_data.get("currency") or "")
        if not currency:
            raise missing(f"{where}[price_data][currency]")
        if len(currency) != 3 or not currency.isalpha():
            raise invalid(f"{where}[price_data][currency]", f"Invalid currency: {currency}")
        try:
            unit_amount = integer(price_data, "unit_amount", low=0)
        except ApiError as error:
            error.param = f"{where}[price_data][{error.param}]"
            error.message = error.message.replace("unit_amount", f"{where}[price_data][unit_amount]")
            raise
        product = price_data.get("product_data")
        if not isinstance(product, dict) or not product.get("name"):
            raise missing(f"{where}[price_data][product_data][name]")
        price = {
            "id": new_id("price_"),
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": currency.lower(),
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": new_id("prod_", 14),
            "recurring": None,
            "tax_behavior": str(price_data.get("tax_behavior") or "unspecified"),
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        amount = unit_amount * quantity
        return {
            "id": new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency.lower(),
            "description": str(product["name"]),
            "metadata": dict(item.get("metadata") or {}),
            "price": price,
            "quantity": quantity,
        }
