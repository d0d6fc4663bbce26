"""The emulator's in-memory Stripe account: customers, Checkout Sessions, invoices, payments, idempotency keys.

What a new object looks like is `sandbox_objects`'; what happens to it afterwards (expiry, payment,
idempotent replays) is here. https://docs.stripe.com/api/checkout/sessions
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from integrations.stripe.sandbox_events import StripeCallback, event, signed
from integrations.stripe.sandbox_invoices import InvoiceBook
from integrations.stripe.sandbox_objects import checkout_line_items, customer_object, session_object
from integrations.stripe.sandbox_wire import ApiError, integer, invalid, missing, new_id, no_such

__all__ = ["SNAPSHOT_VERSION", "Remembered", "StripeState"]

# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1

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


class _SavedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    fingerprint: str
    status: int
    body: dict[str, Any]
    request_id: str


class _Snapshot(BaseModel):
    """The account as `snapshot()` writes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    customers: dict[str, dict[str, Any]]
    sessions: dict[str, dict[str, Any]]
    line_items: dict[str, list[dict[str, Any]]]
    payment_intent_data: dict[str, dict[str, Any]]
    payments: list[dict[str, Any]]
    idempotency: dict[str, _SavedAnswer]
    # Added with invoicing; a snapshot from before has none.
    invoices: dict[str, dict[str, Any]] = {}
    invoice_items: dict[str, dict[str, Any]] = {}
    invoice_emails: list[dict[str, Any]] = []
    invoice_sequences: dict[str, int] = {}


# The API version the emulator's events say they were rendered in (the one its answers follow).
EVENT_API_VERSION = "2026-10-28.endive"


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
        self.books = InvoiceBook(self.customer, self.now)
        # The webhook endpoint the account delivers events to, and what it has not delivered yet.
        self.webhook_url: str | None = None
        self.pending: list[StripeCallback] = []

    def dump(self) -> dict[str, Any]:
        return {
            "customers": list(self.customers.values()),
            "checkout_sessions": [
                {**self.session(session_id), "line_items": self.line_items[session_id]} for session_id in self.sessions
            ],
            "payments": self.payments,
            "invoices": list(self.books.invoices.values()),
            "invoiceitems": list(self.books.items.values()),
            "invoice_emails": self.books.emails,
            "idempotency_keys": sorted(self.idempotency),
        }

    def snapshot(self) -> dict[str, Any]:
        saved = _Snapshot(
            version=SNAPSHOT_VERSION,
            customers=self.customers,
            sessions=self.sessions,
            line_items=self.line_items,
            payment_intent_data=self.payment_intent_data,
            payments=self.payments,
            idempotency={
                key: _SavedAnswer(
                    fingerprint=answer.fingerprint, status=answer.status, body=answer.body, request_id=answer.request_id
                )
                for key, answer in self.idempotency.items()
            },
            invoices=self.books.invoices,
            invoice_items=self.books.items,
            invoice_emails=self.books.emails,
            invoice_sequences=self.books.sequences,
        )
        # A JSON dump builds new containers all the way down: nothing is shared with the state.
        return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a stripe sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        # Every session has its line items and PaymentIntent data, and names its own id.
        sessions = set(saved.sessions)
        if sessions != set(saved.line_items) or sessions != set(saved.payment_intent_data):
            raise ValueError("saved sessions, line items and payment intent data name different sessions")
        for objects in (saved.customers, saved.sessions, saved.invoices, saved.invoice_items):
            for object_id, stripe_object in objects.items():
                if stripe_object.get("id") != object_id:
                    raise KeyError(f"saved object {object_id!r} does not carry its own id")
        self.customers = saved.customers
        self.sessions = saved.sessions
        self.line_items = saved.line_items
        self.payment_intent_data = saved.payment_intent_data
        self.payments = saved.payments
        self.idempotency = {
            key: Remembered(answer.fingerprint, answer.status, answer.body, answer.request_id)
            for key, answer in saved.idempotency.items()
        }
        self.books.invoices = saved.invoices
        self.books.items = saved.invoice_items
        self.books.emails = saved.invoice_emails
        self.books.sequences = saved.invoice_sequences

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
        customer = customer_object(params, self.now())
        self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def seed_customer(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A customer typed in on the Dashboard, fields verbatim (a phone as "(415) 555-0123"); its id."""
        params = {key: value for key, value in {"name": name, "phone": phone, "email": email}.items() if value}
        return str(self.create_customer(params)["id"])

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
        items = checkout_line_items(params.get("line_items"), created)
        session = session_object(
            session_id, params, items=items, created=created, expires_at=expires_at, customer_id=customer_id
        )
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
        completed = self.session(session_id)
        if self.webhook_url is not None:
            payload = event("checkout.session.completed", completed, EVENT_API_VERSION, self.now())
            self.pending.append(signed(self.webhook_url, payload))
        return completed

    # -- invoices --------------------------------------------------------------------------------

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The customer pays the hosted invoice page in full: the invoice is paid, and an `invoice.paid`
        event, signed with the sandbox endpoint secret, is queued for the webhook endpoint (if one is set).

        https://docs.stripe.com/api/events/types#event_types-invoice.paid
        """
        paid = self.books.pay_on_hosted_page(invoice_id)
        if self.webhook_url is not None:
            self.pending.append(signed(self.webhook_url, event("invoice.paid", paid, EVENT_API_VERSION, self.now())))
        return paid

    def take_callbacks(self) -> list[StripeCallback]:
        """The signed webhook deliveries not yet taken, oldest first; they leave the queue."""
        taken, self.pending = self.pending, []
        return taken

    def requeue(self, callbacks: list[StripeCallback]) -> None:
        self.pending[:0] = callbacks

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _close(session: dict[str, Any], status: str) -> None:
        session["status"] = status
        # Stripe clears the URL once the hosted page can no longer be paid.
        session["url"] = None
