"""Pure translations between the shared payment models and Stripe's objects and parameters.

Request shapes follow stripe-python's typed params (the current API), response fields the
Checkout Session object: https://docs.stripe.com/api/checkout/sessions/object
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from stripe.params import CustomerCreateParams
from stripe.params.checkout import SessionCreateParams

from integrations.capabilities.models import PaymentLink, PaymentLinkRequest
from integrations.stripe.settings import StripeSettings

__all__ = [
    "LinkStatus",
    "StripeKeys",
    "customer_create_params",
    "idempotency_keys",
    "link_status",
    "payment_link",
    "phone_search_query",
    "pick_customer",
    "session_create_params",
]

PROVIDER = "stripe"
LinkStatus = Literal["open", "paid", "expired"]
# Stripe accepts Idempotency-Key values up to 255 characters; leave room for the ":session" suffix.
_MAX_KEY_BASE = 200


@dataclass(frozen=True)
class StripeKeys:
    """The Idempotency-Key of each POST one create_payment_link makes."""

    customer: str
    session: str


def idempotency_keys(request: PaymentLinkRequest, connection_id: str) -> StripeKeys:
    """Keys derived from the request's idempotency key, so a retried call makes no second record.

    Without a key (a caller outside dispatch), the key is a hash of the request itself: the same
    request on the same connection within Stripe's 24-hour key window gets the same session back.
    """
    base = request.idempotency_key
    if base is None:
        fields = request.model_dump(exclude={"idempotency_key"})
        digest = hashlib.sha256(json.dumps([connection_id, fields], sort_keys=True).encode()).hexdigest()
        base = f"payment-link-{digest[:40]}"
    elif len(base) > _MAX_KEY_BASE:
        base = f"payment-link-{hashlib.sha256(base.encode()).hexdigest()}"
    return StripeKeys(customer=f"{base}:customer", session=f"{base}:session")


def normalized_email(request: PaymentLinkRequest) -> str | None:
    # Stripe's customer list filters email case-sensitively; one spelling keeps one customer.
    return request.customer_email.strip().lower() if request.customer_email else None


def phone_search_query(phone: str) -> str:
    """Stripe search syntax for one phone number: https://docs.stripe.com/search#search-query-language"""
    escaped = phone.replace("\\", "\\\\").replace("'", "\\'")
    return f"phone:'{escaped}'"


def pick_customer(customers: list[dict[str, Any]]) -> str | None:
    """The customer to reuse among matches: the oldest, which is the one people have paid as before."""
    if not customers:
        return None
    oldest = min(customers, key=lambda customer: (int(customer.get("created") or 0), str(customer["id"])))
    return str(oldest["id"])


def customer_create_params(request: PaymentLinkRequest) -> CustomerCreateParams:
    params: CustomerCreateParams = {}
    if request.customer_name:
        params["name"] = request.customer_name
    email = normalized_email(request)
    if email:
        params["email"] = email
    if request.customer_phone:
        params["phone"] = request.customer_phone
    return params


def session_create_params(
    request: PaymentLinkRequest, settings: StripeSettings, customer_id: str | None, connection_id: str
) -> SessionCreateParams:
    """One-time hosted Checkout for one line item priced inline (no Product or Price to manage)."""
    metadata = {"connection_id": connection_id}
    if customer_id is None and request.customer_name:
        # Without an email or phone there is no customer to find; keep the name on the session.
        metadata["customer_name"] = request.customer_name
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount_minor,
                    "product_data": {"name": request.description},
                },
            }
        ],
        "success_url": settings.success_url,
        "payment_intent_data": {"description": request.description},
        "metadata": metadata,
    }
    if settings.cancel_url:
        params["cancel_url"] = settings.cancel_url
    if customer_id is not None:
        params["customer"] = customer_id
    return params


def link_status(session: dict[str, Any]) -> LinkStatus:
    """open | paid | expired, from a session's `status` and `payment_status`.

    A complete session whose payment is still `unpaid` (a delayed method such as a bank debit)
    stays "open": nothing has been received yet.
    """
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return "paid"
    if session.get("status") == "expired":
        return "expired"
    return "open"


def payment_link(session: dict[str, Any], description: str | None = None) -> PaymentLink:
    """A Checkout Session as the shared model. `description` comes from the request or line items."""
    items = (session.get("line_items") or {}).get("data") or []
    if description is None:
        description = ", ".join(str(item.get("description") or "") for item in items)
    amount = session.get("amount_total")
    if amount is None:
        amount = sum(int(item.get("amount_total") or 0) for item in items)
    return PaymentLink(
        id=str(session["id"]),
        # Stripe clears `url` once a session is complete or expired; there is no page left to open.
        url=str(session.get("url") or ""),
        amount_minor=int(amount),
        currency=str(session.get("currency") or "").upper(),
        description=description,
        status=link_status(session),
        provider=PROVIDER,
        raw=session,
    )
