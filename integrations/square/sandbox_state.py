"""The Square emulator's in-memory seller account: customers, orders, invoices and payment links.

Everything is held as the JSON Square answers, so `snapshot()` is a deep copy plus a version and
the ids counter. Writes remember their answer per (endpoint, idempotency_key), as Square does, so
a retried request gets the first answer back and a key reused for a different body is refused.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integrations.common.phones import digits

__all__ = [
    "SANDBOX_ACCESS_TOKEN",
    "SANDBOX_LOCATION_ID",
    "SANDBOX_SIGNATURE_KEY",
    "SNAPSHOT_VERSION",
    "SquareCallback",
    "SquareError",
    "SquareState",
    "signed",
]

SANDBOX_ACCESS_TOKEN = "EAAAsandbox-square-access-token"
SANDBOX_LOCATION_ID = "LSANDBOX0MAIN"
# The webhook subscription's signature key the emulator signs notifications with.
SANDBOX_SIGNATURE_KEY = "sandbox-square-signature-key"
SANDBOX_MERCHANT_ID = "MLSANDBOXMERCHANT"
SNAPSHOT_VERSION = 1
_MAX_CUSTOMER_PAGE = 100
_MAX_INVOICE_PAGE = 200


@dataclass(frozen=True)
class SquareCallback:
    """One signed notification delivery: where, its headers, its raw JSON body."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def signed(url: str, notification: dict[str, Any], key: str = SANDBOX_SIGNATURE_KEY) -> SquareCallback:
    """A notification to `url` signed as Square signs: base64(HMAC-SHA256(key, url + body))."""
    body = json.dumps(notification, separators=(",", ":")).encode()
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    headers = {"content-type": "application/json", "x-square-hmacsha256-signature": base64.b64encode(digest).decode()}
    return SquareCallback(url, body, headers)


class SquareError(Exception):
    """An error answer: HTTP status and one Square `Error` object."""

    def __init__(self, status: int, category: str, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"category": category, "code": code, "detail": detail}
        if field:
            self.body["field"] = field


def _bad(code: str, detail: str, field: str | None = None) -> SquareError:
    return SquareError(400, "INVALID_REQUEST_ERROR", code, detail, field)


def _not_found(kind: str, identifier: str) -> SquareError:
    return SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", f"{kind} with id `{identifier}` not found.")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def _page(items: list[dict[str, Any]], cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    try:
        start = int(cursor) if cursor else 0
    except ValueError:
        raise _bad("INVALID_CURSOR", "The pagination cursor is invalid.", "cursor") from None
    chunk = items[start : start + limit]
    return chunk, str(start + limit) if start + limit < len(items) else None


class SquareState:
    """One seller with one location. Tests call `pay_invoice` / `pay_payment_link` as the payer would."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    # -- kit protocol ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.counter = 0
            self.tokens = [SANDBOX_ACCESS_TOKEN]
            self.locations: dict[str, dict[str, Any]] = {
                SANDBOX_LOCATION_ID: {
                    "id": SANDBOX_LOCATION_ID,
                    "name": "Sandbox Main Street",
                    "status": "ACTIVE",
                    "currency": "USD",
                    "country": "US",
                    "timezone": "America/New_York",
                }
            }
            self.customers: dict[str, dict[str, Any]] = {}
            self.orders: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.payment_links: dict[str, dict[str, Any]] = {}
            # "<endpoint> <key>" → [request body as JSON text, answer]
            self.remembered: dict[str, list[Any]] = {}
            # The webhook subscription's notification URL, and what it has not delivered yet.
            self.webhook_url: str | None = None
            self.pending: list[SquareCallback] = []

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "customers": list(self.customers.values()),
                    "invoices": list(self.invoices.values()),
                    "orders": list(self.orders.values()),
                    "payment_links": list(self.payment_links.values()),
                }
            )

    def expire_access_tokens(self) -> None:
        """Square access tokens in this connection are long-lived; a revoked one answers 401."""
        with self._lock:
            self.tokens = []

    def revoke_refresh_tokens(self) -> None:
        self.expire_access_tokens()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "version": SNAPSHOT_VERSION,
                    "counter": self.counter,
                    "tokens": self.tokens,
                    "locations": self.locations,
                    "customers": self.customers,
                    "orders": self.orders,
                    "invoices": self.invoices,
                    "payment_links": self.payment_links,
                    "remembered": self.remembered,
                    "webhook_url": self.webhook_url,
                    "pending": [{"url": c.url, "body": c.body.decode(), "headers": c.headers} for c in self.pending],
                }
            )

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a square emulator snapshot (version {snapshot.get('version')!r})")
        loaded = copy.deepcopy(snapshot)
        if not isinstance(loaded["counter"], int):
            raise TypeError("counter must be an integer")
        with self._lock:
            self.counter = loaded["counter"]
            self.tokens = list(loaded["tokens"])
            self.locations = dict(loaded["locations"])
            self.customers = dict(loaded["customers"])
            self.orders = dict(loaded["orders"])
            self.invoices = dict(loaded["invoices"])
            self.payment_links = dict(loaded["payment_links"])
            self.remembered = dict(loaded["remembered"])
            self.webhook_url = loaded["webhook_url"]
            self.pending = [SquareCallback(c["url"], c["body"].encode(), dict(c["headers"])) for c in loaded["pending"]]

    # -- helpers --------------------------------------------------------------------------------

    def authorized(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and token in self.tokens

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:020d}"

    def idempotent(self, endpoint: str, body: dict[str, Any], make: Any) -> dict[str, Any]:
        """`make()`'s answer, or the one remembered for this endpoint and `body["idempotency_key"]`."""
        with self._lock:
            key = body.get("idempotency_key")
            if not key:
                return dict(make())
            slot = f"{endpoint} {key}"
            fingerprint = json.dumps({k: v for k, v in body.items() if k != "idempotency_key"}, sort_keys=True)
            if slot in self.remembered:
                seen, answer = self.remembered[slot]
                if seen != fingerprint:
                    raise _bad("IDEMPOTENCY_KEY_REUSED", "The idempotency key was used with a different request.")
                return dict(copy.deepcopy(answer))
            answer = make()
            self.remembered[slot] = [fingerprint, copy.deepcopy(answer)]
            return dict(answer)

    # -- customers ------------------------------------------------------------------------------

    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("given_name", "family_name", "company_name", "nickname", "email_address", "phone_number")
        if not any(body.get(name) for name in fields):
            raise _bad(
                "MISSING_REQUIRED_PARAMETER",
                "At least one of given_name, family_name, company_name, nickname, email_address, or "
                "phone_number is required.",
            )
        now = _now()
        customer: dict[str, Any] = {"id": self._id("CUST"), "created_at": now, "updated_at": now}
        for name in (*fields, "reference_id", "note"):
            if body.get(name):
                customer[name] = body[name]
        customer.update({"preferences": {"email_unsubscribed": False}, "creation_source": "THIRD_PARTY", "version": 0})
        self.customers[customer["id"]] = customer
        return {"customer": copy.deepcopy(customer)}

    def seed_customer(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A customer typed in by staff, fields verbatim."""
        given, _, family = name.partition(" ")
        with self._lock:
            body: dict[str, Any] = {"given_name": given, "family_name": family or None}
            body.update({"phone_number": phone, "email_address": email})
            return str(self.create_customer(body)["customer"]["id"])

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        with self._lock:
            if customer_id not in self.customers:
                raise _not_found("Customer", customer_id)
            return {"customer": copy.deepcopy(self.customers[customer_id])}

    def search_customers(self, body: dict[str, Any]) -> dict[str, Any]:
        """The phone and email filters (exact or fuzzy, never both), ANDed; cursor pages."""
        limit = int(body.get("limit") or _MAX_CUSTOMER_PAGE)
        if not 1 <= limit <= _MAX_CUSTOMER_PAGE:
            raise _bad("INVALID_VALUE", "limit must be between 1 and 100.", "limit")
        filters = ((body.get("query") or {}).get("filter")) or {}
        with self._lock:
            found = [c for c in self.customers.values() if self._passes(c, filters)]
            page, cursor = _page(found, body.get("cursor"), limit)
            answer: dict[str, Any] = {"customers": copy.deepcopy(page)} if page else {}
            if cursor:
                answer["cursor"] = cursor
            return answer

    @staticmethod
    def _passes(customer: dict[str, Any], filters: dict[str, Any]) -> bool:
        for attribute in ("phone_number", "email_address"):
            text_filter = filters.get(attribute)
            if not text_filter:
                continue
            if "exact" in text_filter and "fuzzy" in text_filter:
                raise _bad("INVALID_VALUE", "A text filter can be exact or fuzzy, not both.", attribute)
            stored = str(customer.get(attribute) or "")
            if attribute == "email_address":
                # Case-insensitive; fuzzy drops punctuation and needs every query token in the address.
                if "exact" in text_filter and stored.lower() != str(text_filter["exact"]).lower():
                    return False
                if "fuzzy" in text_filter:
                    bare = "".join(ch if ch.isalnum() else " " for ch in stored.lower())
                    tokens = "".join(ch if ch.isalnum() else " " for ch in str(text_filter["fuzzy"]).lower()).split()
                    if not stored or not all(token in bare for token in tokens):
                        return False
            else:
                # Exact takes E.164 and matches the number whatever its stored format; fuzzy needs
                # each token's digits somewhere in the stored number's digits.
                if "exact" in text_filter and (
                    not stored or digits(stored).lstrip("1") != digits(str(text_filter["exact"])).lstrip("1")
                ):
                    return False
                if "fuzzy" in text_filter:
                    tokens = [digits(token) for token in str(text_filter["fuzzy"]).split()]
                    if not stored or not all(token and token in digits(stored) for token in tokens):
                        return False
        return True

    # -- locations ------------------------------------------------------------------------------

    def get_location(self, location_id: str) -> dict[str, Any]:
        with self._lock:
            if location_id not in self.locations:
                raise _not_found("Location", location_id)
            return {"location": copy.deepcopy(self.locations[location_id])}

    def _location(self, location_id: Any, field: str) -> dict[str, Any]:
        if not location_id:
            raise _bad("MISSING_REQUIRED_PARAMETER", f"Field must be set: {field}.", field)
        if location_id not in self.locations:
            raise _bad("NOT_FOUND", f"Location `{location_id}` not found.", field)
        return self.locations[str(location_id)]

    # -- orders ---------------------------------------------------------------------------------

    def create_order(self, order: dict[str, Any], *, source: str = "orders") -> dict[str, Any]:
        self._location(order.get("location_id"), "order.location_id")
        lines = order.get("line_items") or []
        if not lines:
            raise _bad("MISSING_REQUIRED_PARAMETER", "An order needs at least one line item.", "order.line_items")
        currency = ""
        items: list[dict[str, Any]] = []
        total = 0
        for index, line in enumerate(lines):
            price = line.get("base_price_money") or {}
            try:
                quantity = int(str(line.get("quantity")))
            except ValueError:
                raise _bad(
                    "INVALID_VALUE", "quantity must be a whole number.", f"order.line_items[{index}].quantity"
                ) from None
            currency = currency or str(price.get("currency") or "USD")
            amount = int(price.get("amount") or 0) * quantity
            total += amount
            items.append(
                {
                    "uid": f"li{index}",
                    "name": line.get("name"),
                    "quantity": str(quantity),
                    "base_price_money": _money(int(price.get("amount") or 0), currency),
                    "gross_sales_money": _money(amount, currency),
                    "total_money": _money(amount, currency),
                }
            )
        now = _now()
        created: dict[str, Any] = {
            "id": self._id("ORD"),
            "location_id": order["location_id"],
            "line_items": items,
            "state": "OPEN",
            "version": 1,
            "total_money": _money(total, currency),
            "net_amount_due_money": _money(total, currency),
            "created_at": now,
            "updated_at": now,
            "source": {"name": source},
        }
        if order.get("customer_id"):
            created["customer_id"] = order["customer_id"]
        self.orders[created["id"]] = created
        return {"order": copy.deepcopy(created)}

    def get_order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            if order_id not in self.orders:
                raise _not_found("Order", order_id)
            return {"order": copy.deepcopy(self.orders[order_id])}

    # -- invoices -------------------------------------------------------------------------------

    def create_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        self._location(body.get("location_id"), "invoice.location_id")
        order = self.orders.get(str(body.get("order_id")))
        if order is None:
            raise _bad("NOT_FOUND", f"Order `{body.get('order_id')}` not found.", "invoice.order_id")
        if any(i["order_id"] == order["id"] for i in self.invoices.values()):
            raise _bad("BAD_REQUEST", "The order is already attached to an invoice.", "invoice.order_id")
        customer_id = (body.get("primary_recipient") or {}).get("customer_id")
        customer = self.customers.get(str(customer_id))
        if customer is None:
            raise _bad("NOT_FOUND", f"Customer `{customer_id}` not found.", "invoice.primary_recipient.customer_id")
        requests = body.get("payment_requests") or []
        if len(requests) != 1 or requests[0].get("request_type") != "BALANCE" or not requests[0].get("due_date"):
            # unconfirmed: the emulator serves only the one-BALANCE-request shape this connector sends.
            raise _bad(
                "INVALID_VALUE", "Expected one BALANCE payment request with a due_date.", "invoice.payment_requests"
            )
        delivery = body.get("delivery_method") or "EMAIL"
        if delivery not in {"EMAIL", "SHARE_MANUALLY", "SMS"}:
            raise _bad("INVALID_ENUM_VALUE", f"Unknown delivery_method `{delivery}`.", "invoice.delivery_method")
        methods = body.get("accepted_payment_methods") or {}
        if not any(methods.values()):
            raise _bad(
                "MISSING_REQUIRED_PARAMETER",
                "Field must be set: accepted_payment_methods.",
                "invoice.accepted_payment_methods",
            )
        currency = str(order["total_money"]["currency"])
        recipient = {"customer_id": customer["id"]}
        for name in ("given_name", "family_name", "email_address", "phone_number"):
            if customer.get(name):
                recipient[name] = customer[name]
        now = _now()
        number = sum(1 for _ in self.invoices) + 1
        invoice: dict[str, Any] = {
            "id": "inv:0-" + self._id("INV"),
            "version": 0,
            "location_id": body["location_id"],
            "order_id": order["id"],
            "primary_recipient": recipient,
            "payment_requests": [
                {
                    "uid": f"pr{number}",
                    "request_type": "BALANCE",
                    "due_date": requests[0]["due_date"],
                    "tipping_enabled": False,
                    "automatic_payment_source": "NONE",
                    "computed_amount_money": dict(order["net_amount_due_money"]),
                    "total_completed_amount_money": _money(0, currency),
                }
            ],
            "delivery_method": delivery,
            "invoice_number": f"{number:06d}",
            "status": "DRAFT",
            "timezone": "Etc/UTC",
            "accepted_payment_methods": {
                k: bool(methods.get(k))
                for k in ("card", "square_gift_card", "bank_account", "buy_now_pay_later", "cash_app_pay")
            },
            "created_at": now,
            "updated_at": now,
        }
        if body.get("description"):
            invoice["description"] = body["description"]
        self.invoices[invoice["id"]] = invoice
        return {"invoice": copy.deepcopy(invoice)}

    def _invoice(self, invoice_id: str) -> dict[str, Any]:
        if invoice_id not in self.invoices:
            raise _not_found("Invoice", invoice_id)
        return self.invoices[invoice_id]

    def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        with self._lock:
            return {"invoice": copy.deepcopy(self._invoice(invoice_id))}

    def publish_invoice(self, invoice_id: str, body: dict[str, Any]) -> dict[str, Any]:
        invoice = self._invoice(invoice_id)
        if body.get("version") is None:
            raise _bad("MISSING_REQUIRED_PARAMETER", "Field must be set: version.", "version")
        if body["version"] != invoice["version"]:
            raise _bad("VERSION_MISMATCH", "The invoice version does not match.", "version")
        if invoice["status"] != "DRAFT":
            raise _bad("BAD_REQUEST", "Only a DRAFT invoice can be published.")
        if invoice["delivery_method"] == "EMAIL" and not invoice["primary_recipient"].get("email_address"):
            raise _bad("MISSING_REQUIRED_PARAMETER", "The recipient needs an email address.", "primary_recipient")
        invoice.update(
            {
                "status": "UNPAID",
                "version": invoice["version"] + 1,
                "updated_at": _now(),
                # unconfirmed: the exact public_url form; Square documents it as a Square-hosted page.
                "public_url": f"https://squareup.com/pay-invoice/{invoice_id}",
                "next_payment_amount_money": dict(invoice["payment_requests"][0]["computed_amount_money"]),
            }
        )
        return {"invoice": copy.deepcopy(invoice)}

    def search_invoices(self, body: dict[str, Any]) -> dict[str, Any]:
        query = body.get("query") or {}
        filters = query.get("filter") or {}
        locations = filters.get("location_ids") or []
        if len(locations) != 1:
            raise _bad("INVALID_VALUE", "Exactly one location_id is required.", "query.filter.location_ids")
        customers = filters.get("customer_ids") or []
        limit = int(body.get("limit") or 100)
        if not 1 <= limit <= _MAX_INVOICE_PAGE:
            raise _bad("INVALID_VALUE", "limit must be between 1 and 200.", "limit")
        with self._lock:
            found = [
                invoice
                for invoice in self.invoices.values()
                if invoice["location_id"] in locations
                and (not customers or invoice["primary_recipient"]["customer_id"] in customers)
            ]
            descending = (query.get("sort") or {}).get("order") == "DESC"
            found.sort(key=lambda invoice: str(invoice["created_at"]), reverse=descending)
            page, cursor = _page(found, body.get("cursor"), limit)
            answer: dict[str, Any] = {"invoices": copy.deepcopy(page)} if page else {}
            if cursor:
                answer["cursor"] = cursor
            return answer

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The customer pays the whole balance on the invoice page: PAID, its order paid too."""
        with self._lock:
            invoice = self._invoice(invoice_id)
            if invoice["status"] not in {"UNPAID", "PARTIALLY_PAID", "SCHEDULED"}:
                raise _bad("BAD_REQUEST", f"An invoice in status {invoice['status']} cannot be paid.")
            for request in invoice["payment_requests"]:
                request["total_completed_amount_money"] = dict(request["computed_amount_money"])
            invoice.update({"status": "PAID", "version": invoice["version"] + 1, "updated_at": _now()})
            invoice.pop("next_payment_amount_money", None)
            self._pay_order(invoice["order_id"])
            if self.webhook_url is not None:
                # https://developer.squareup.com/reference/square/invoices-api/webhooks/invoice.payment_made
                notification = {
                    "merchant_id": SANDBOX_MERCHANT_ID,
                    "type": "invoice.payment_made",
                    "event_id": str(uuid.uuid4()),
                    "created_at": _now(),
                    "data": {"type": "invoice", "id": invoice_id, "object": {"invoice": copy.deepcopy(invoice)}},
                }
                self.pending.append(signed(self.webhook_url, notification))
            return copy.deepcopy(invoice)

    def take_callbacks(self) -> list[SquareCallback]:
        """The signed notifications not yet taken, oldest first; they leave the queue."""
        with self._lock:
            taken, self.pending = self.pending, []
            return taken

    def requeue(self, callbacks: list[SquareCallback]) -> None:
        with self._lock:
            self.pending[:0] = callbacks

    def _pay_order(self, order_id: str) -> None:
        order = self.orders[order_id]
        currency = order["total_money"]["currency"]
        order["tenders"] = [{"id": self._id("TND"), "type": "CARD", "amount_money": dict(order["total_money"])}]
        order.update({"net_amount_due_money": _money(0, currency), "state": "COMPLETED", "updated_at": _now()})
        order["version"] += 1

    # -- payment links --------------------------------------------------------------------------

    def create_payment_link(self, body: dict[str, Any]) -> dict[str, Any]:
        quick = body.get("quick_pay")
        if not quick:
            # unconfirmed: only quick_pay links are emulated (the connector sends no `order`).
            raise _bad("MISSING_REQUIRED_PARAMETER", "Field must be set: quick_pay.", "quick_pay")
        price = quick.get("price_money") or {}
        if not quick.get("name"):
            raise _bad("MISSING_REQUIRED_PARAMETER", "Field must be set: quick_pay.name.", "quick_pay.name")
        if int(price.get("amount") or 0) <= 0:
            raise _bad("INVALID_VALUE", "price_money.amount must be positive.", "quick_pay.price_money.amount")
        self._location(quick.get("location_id"), "quick_pay.location_id")
        order = self.create_order(
            {
                "location_id": quick["location_id"],
                "line_items": [{"name": quick["name"], "quantity": "1", "base_price_money": price}],
            },
            source="Payment Links",
        )["order"]
        link_id = self._id("PL")
        link: dict[str, Any] = {
            "id": link_id,
            "version": 1,
            "order_id": order["id"],
            "url": f"https://square.link/u/{link_id[-8:]}",
            "long_url": f"https://checkout.square.site/merchant/{SANDBOX_LOCATION_ID}/checkout/{link_id}",
            "created_at": _now(),
        }
        for name in ("description", "pre_populated_data", "payment_note", "checkout_options"):
            if body.get(name):
                link[name] = body[name]
        self.payment_links[link_id] = link
        return {"payment_link": copy.deepcopy(link), "related_resources": {"orders": [order]}}

    def get_payment_link(self, link_id: str) -> dict[str, Any]:
        with self._lock:
            if link_id not in self.payment_links:
                raise _not_found("PaymentLink", link_id)
            return {"payment_link": copy.deepcopy(self.payment_links[link_id])}

    def pay_payment_link(self, link_id: str) -> None:
        """The payer completes checkout on the link."""
        with self._lock:
            if link_id not in self.payment_links:
                raise _not_found("PaymentLink", link_id)
            self._pay_order(self.payment_links[link_id]["order_id"])
