"""Stripe objects as the emulator creates them: customers, Checkout Sessions, their line items and prices.

Fields follow Stripe's current (2026) example objects in `fixtures3.json`, with the values an open,
card-only, tax-free hosted session really has:
https://docs.stripe.com/api/customers/object and https://docs.stripe.com/api/checkout/sessions/object
"""

from __future__ import annotations

import secrets
from typing import Any

from integrations.stripe.sandbox_wire import ApiError, integer, invalid, missing, new_id, no_such

__all__ = ["checkout_line_items", "customer_object", "session_object"]


def customer_object(params: dict[str, Any], created: int) -> dict[str, Any]:
    """A new customer from POST /v1/customers parameters (https://docs.stripe.com/api/customers/object)."""
    email = params.get("email")
    return {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
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


def session_object(
    session_id: str,
    params: dict[str, Any],
    *,
    items: list[dict[str, Any]],
    created: int,
    expires_at: int,
    customer_id: str | None,
) -> dict[str, Any]:
    """A new open Checkout Session (https://docs.stripe.com/api/checkout/sessions/object)."""
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise invalid("line_items", "All line items must use the same currency.")
    total = sum(item["amount_total"] for item in items)
    mode = params.get("mode")
    return {
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


def checkout_line_items(raw: Any, created: int) -> list[dict[str, Any]]:
    if not raw:
        raise missing("line_items")
    if not isinstance(raw, list):
        raise invalid("line_items", "Invalid array")
    return [_line_item(item, index, created) for index, item in enumerate(raw)]


def _line_item(item: Any, index: int, created: int) -> dict[str, Any]:
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
