"""The Xero emulator's in-memory organisation: contacts, invoices, OAuth tokens, idempotency answers and
the signed webhook deliveries Xero would make (`take_callbacks`)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import string
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from integrations.common.linear_regex import compile_linear

__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_TENANT_ID",
    "SANDBOX_WEBHOOK_KEY",
    "TokenError",
    "XeroCallback",
    "XeroError",
    "XeroState",
    "signed",
    "xero_date",
]

SANDBOX_CLIENT_ID = "sandbox-xero-client"
SANDBOX_CLIENT_SECRET = "sandbox-xero-secret"
SANDBOX_REFRESH_TOKEN = "sandbox-xero-refresh-0"
SANDBOX_TENANT_ID = "a3b5c7d9-0000-4000-8000-00000000e001"
# The app's webhook key the emulator signs deliveries with (sandbox only; Xero shows the real one
# on the app's Webhooks page).
SANDBOX_WEBHOOK_KEY = "sandbox-xero-webhook-key"
# Xero access tokens last 30 minutes (developer.xero.com/documentation/guides/oauth2/token-types).
ACCESS_TOKEN_SECONDS = 1800
# Per-tenant limits (developer.xero.com/documentation/guides/oauth2/limits).
DAY_LIMIT, MINUTE_LIMIT, APP_MINUTE_LIMIT = 5000, 60, 10000
_SNAPSHOT_VERSION = 1
_EMAIL = compile_linear(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class XeroError(Exception):
    """An answer in Xero's error format: a ValidationException body, or the problem body of 401/403/404."""

    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body

    @classmethod
    def validation(cls, message: str, element: dict[str, Any] | None = None) -> XeroError:
        # https://developer.xero.com/documentation/api/accounting/responsecodes (ValidationException, ErrorNumber 10)
        item = {**(element or {}), "ValidationErrors": [{"Message": message}]}
        return cls(
            400,
            {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": [item],
            },
        )

    @classmethod
    def problem(cls, status: int, title: str, detail: str) -> XeroError:
        # unconfirmed: the 401/403 problem body shape, as seen in Xero community threads.
        return cls(
            status,
            {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4())},
        )


class TokenError(Exception):
    """A refused grant at /connect/token (OAuth 2 error body, HTTP 400)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.body = {"error": error}


def xero_date(day: date) -> str:
    """A date the way Xero's JSON writes it: `/Date(<ms since epoch>+0000)/`."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _parse_xero_date(raw: Any) -> date | None:
    """`/Date(ms…)/` (what xero-python sends) or ISO `YYYY-MM-DD…` into a date."""
    if not isinstance(raw, str) or not raw:
        return None
    if raw.startswith("/Date("):
        digits = raw[len("/Date(") :].split(")", 1)[0]
        millis = digits.split("+", 1)[0].split("-", 1)[0] if not digits.startswith("-") else digits
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC).date()
    return date.fromisoformat(raw[:10])


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01")))


@dataclass(frozen=True)
class XeroCallback:
    """One webhook delivery Xero would make: where, its headers, its raw JSON body."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def signed(url: str, payload: dict[str, Any], key: str = SANDBOX_WEBHOOK_KEY) -> XeroCallback:
    """A delivery to `url` signed as Xero signs: `x-xero-signature` = base64(HMAC-SHA256(key, body))."""
    # https://developer.xero.com/documentation/guides/webhooks/configuring-your-server (intent to receive)
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    headers = {"content-type": "application/json; charset=utf-8", "x-xero-signature": base64.b64encode(digest).decode()}
    return XeroCallback(url, body, headers)


def _entropy() -> str:
    # The docs' samples show 20 upper-case letters ("LUWDSUDGSWNZVALZXBEV").
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


@dataclass
class _Tokens:
    refresh: set[str] = field(default_factory=lambda: {SANDBOX_REFRESH_TOKEN})
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch seconds)


class XeroState:
    """One Xero organisation (tenant) with the sandbox OAuth app connected to it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    # -- SandboxState ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.contacts: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.emails: list[dict[str, str]] = []
            self.idempotent: dict[str, dict[str, Any]] = {}
            self.tokens = _Tokens()
            self.invoice_counter = 0
            self.day_used = 0
            self.minute_used: dict[str, int] = {}
            # The app's webhook delivery URL, the deliveries not yet made, the last event sequence.
            self.webhook_url: str | None = None
            self.pending: list[XeroCallback] = []
            self.event_sequence = 0

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tenant_id": SANDBOX_TENANT_ID,
                "customers": copy.deepcopy(list(self.contacts.values())),
                "invoices": copy.deepcopy(list(self.invoices.values())),
                "emails_sent": copy.deepcopy(self.emails),
            }

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.tokens.access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.tokens.refresh.clear()
            self.tokens.access.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "version": _SNAPSHOT_VERSION,
                    "contacts": self.contacts,
                    "invoices": self.invoices,
                    "emails": self.emails,
                    "idempotent": self.idempotent,
                    "refresh_tokens": sorted(self.tokens.refresh),
                    "access_tokens": self.tokens.access,
                    "invoice_counter": self.invoice_counter,
                    "day_used": self.day_used,
                    "webhook_url": self.webhook_url,
                    "pending": [{"url": c.url, "body": c.body.decode(), "headers": c.headers} for c in self.pending],
                    "event_sequence": self.event_sequence,
                }
            )

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"not a Xero sandbox snapshot (version {snapshot.get('version')!r})")
        data = copy.deepcopy(snapshot)
        for name in ("contacts", "invoices", "idempotent", "access_tokens"):
            if not isinstance(data[name], dict):
                raise TypeError(f"{name} must be an object")
        with self._lock:
            self.contacts = data["contacts"]
            self.invoices = data["invoices"]
            self.emails = list(data["emails"])
            self.idempotent = data["idempotent"]
            self.tokens = _Tokens(refresh=set(data["refresh_tokens"]), access=dict(data["access_tokens"]))
            self.invoice_counter = int(data["invoice_counter"])
            self.day_used = int(data["day_used"])
            self.minute_used = {}
            # Snapshots saved before webhooks were emulated have none of these.
            self.webhook_url = data.get("webhook_url")
            pending = data.get("pending", [])
            self.pending = [XeroCallback(c["url"], c["body"].encode(), dict(c["headers"])) for c in pending]
            self.event_sequence = int(data.get("event_sequence", 0))

    # -- OAuth (identity.xero.com/connect/token) ------------------------------------------------------

    def refresh(self, form: dict[str, str], basic: tuple[str, str] | None, now: float) -> dict[str, Any]:
        """Swap a refresh token for a new access token and a NEW refresh token (the old one dies)."""
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if (client_id, client_secret) != (SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET):
            raise TokenError("invalid_client")
        if form.get("grant_type") != "refresh_token":
            raise TokenError("unsupported_grant_type")
        with self._lock:
            used = form.get("refresh_token", "")
            if used not in self.tokens.refresh:
                raise TokenError("invalid_grant")
            # Xero lets the previous refresh token be retried for a 30-minute grace period (a Xero
            # engineer in XeroAPI/Xero-NetStandard#271); the emulator is stricter and kills it at
            # once, so a connector that fails to save each new refresh token fails here, visibly.
            self.tokens.refresh.discard(used)
            new_refresh = f"sandbox-xero-refresh-{secrets.token_hex(12)}"
            access = f"sandbox-xero-access-{secrets.token_hex(16)}"
            self.tokens.refresh.add(new_refresh)
            self.tokens.access[access] = now + ACCESS_TOKEN_SECONDS
        return {
            "id_token": None,
            "access_token": access,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
            "refresh_token": new_refresh,
            "scope": "offline_access accounting.contacts accounting.transactions",
        }

    def authenticate(self, authorization: str | None, tenant: str | None, now: float) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            expiry = self.tokens.access.get(token) if scheme.lower() == "bearer" else None
        if expiry is None:
            raise XeroError.problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        if expiry <= now:
            raise XeroError.problem(401, "Unauthorized", "TokenExpired: token expired")
        if tenant != SANDBOX_TENANT_ID:
            raise XeroError.problem(403, "Forbidden", "AuthenticationUnsuccessful")

    def count_call(self, now: float) -> dict[str, str]:
        """Count one API call against the tenant's limits; the X-*Limit-Remaining headers to answer."""
        minute = str(int(now // 60))
        with self._lock:
            self.day_used += 1
            self.minute_used = {minute: self.minute_used.get(minute, 0) + 1}
            used_minute = self.minute_used[minute]
            return {
                "X-DayLimit-Remaining": str(max(DAY_LIMIT - self.day_used, 0)),
                "X-MinLimit-Remaining": str(max(MINUTE_LIMIT - used_minute, 0)),
                "X-AppMinLimit-Remaining": str(max(APP_MINUTE_LIMIT - used_minute, 0)),
            }

    # -- idempotency ----------------------------------------------------------------------------------

    def remembered(self, key: str | None, operation: str) -> dict[str, Any] | None:
        """The answer an earlier request with this Idempotency-Key got, if any."""
        if not key:
            return None
        with self._lock:
            entry = self.idempotent.get(key)
        if entry is None:
            return None
        if entry["operation"] != operation:
            # unconfirmed: Xero's answer when a key is reused for a different operation.
            raise XeroError.validation("Idempotency-Key was already used for a different request")
        answer: dict[str, Any] = copy.deepcopy(entry["answer"])
        return answer

    def remember(self, key: str | None, operation: str, answer: dict[str, Any]) -> None:
        if key:
            with self._lock:
                self.idempotent[key] = {"operation": operation, "answer": copy.deepcopy(answer)}

    # -- contacts --------------------------------------------------------------------------------------

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A contact typed in by hand: the phone kept verbatim in the DEFAULT phone's PhoneNumber."""
        body: dict[str, Any] = {"Name": name}
        if phone:
            body["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": phone}]
        if email:
            body["EmailAddress"] = email
        return str(self.create_contact(body)["ContactID"])

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("Name") or "").strip()
        if not name:
            raise XeroError.validation("The contact name must be specified.")
        email = body.get("EmailAddress")
        if email and not _EMAIL.search(str(email)):
            raise XeroError.validation("Email address must be valid.")
        with self._lock:
            if any(c["Name"].lower() == name.lower() for c in self.contacts.values()):
                # https://developer.xero.com/documentation/api/accounting/contacts (names are unique)
                raise XeroError.validation(f"The contact name {name} is already assigned to another contact.")
            contact_id = str(uuid.uuid4())
            phones = {p.get("PhoneType", "DEFAULT"): dict(p) for p in body.get("Phones") or []}
            contact = {
                "ContactID": contact_id,
                "ContactStatus": "ACTIVE",
                "Name": name,
                "FirstName": body.get("FirstName", ""),
                "LastName": body.get("LastName", ""),
                "EmailAddress": email or "",
                "Addresses": [],
                "Phones": [{"PhoneType": kind, **phones.get(kind, {})} for kind in ("DEFAULT", "DDI", "MOBILE", "FAX")],
                "UpdatedDateUTC": xero_date(datetime.now(UTC).date()),
                "IsSupplier": False,
                "IsCustomer": False,
                "HasAttachments": False,
            }
            self.contacts[contact_id] = contact
            return copy.deepcopy(contact)

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            contact = self.contact(contact_id)
            if "EmailAddress" in body:
                contact["EmailAddress"] = body["EmailAddress"] or ""
            if body.get("Name"):
                contact["Name"] = body["Name"]
            self.contacts[contact_id] = contact
            return copy.deepcopy(contact)

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.contacts.get(contact_id)
            if found is None:
                raise XeroError(404, "The resource you're looking for cannot be found")
            return self._with_balances(found)

    def _with_balances(self, contact: dict[str, Any]) -> dict[str, Any]:
        """A copy of the contact with Xero's computed Balances (what it owes on approved invoices)."""
        owed = sum(
            (
                Decimal(str(i["AmountDue"]))
                for i in self.invoices.values()
                if i["Contact"]["ContactID"] == contact["ContactID"] and i["Status"] == "AUTHORISED"
            ),
            Decimal(0),
        )
        shown = copy.deepcopy(contact)
        shown["Balances"] = {
            "AccountsReceivable": {"Outstanding": _money(owed), "Overdue": 0.0},
            "AccountsPayable": {"Outstanding": 0.0, "Overdue": 0.0},
        }
        return shown

    def search_contacts(self, term: str | None) -> list[dict[str, Any]]:
        """Xero's `searchTerm`: case-insensitive text search over Name, FirstName, LastName,
        ContactNumber and EmailAddress (never phones), in name order."""
        wanted = (term or "").lower()
        with self._lock:
            found = [
                self._with_balances(c)
                for c in self.contacts.values()
                if not wanted
                or any(
                    wanted in str(c.get(name) or "").lower()
                    for name in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
                )
            ]
        return sorted(found, key=lambda c: str(c["Name"]).lower())

    # -- invoices --------------------------------------------------------------------------------------

    def create_invoice(self, body: dict[str, Any], today: date) -> dict[str, Any]:
        if body.get("Type") != "ACCREC":
            raise XeroError.validation("Only ACCREC invoices are served by the sandbox.")
        contact_id = str((body.get("Contact") or {}).get("ContactID") or "")
        with self._lock:
            if contact_id not in self.contacts:
                raise XeroError.validation("The contact could not be found.")
            lines = body.get("LineItems") or []
            if not lines:
                raise XeroError.validation("At least one line item is required.")
            total = sum(
                (Decimal(str(line.get("Quantity") or 0)) * Decimal(str(line.get("UnitAmount") or 0)) for line in lines),
                Decimal(0),
            )
            issued = _parse_xero_date(body.get("Date")) or today
            # unconfirmed: with no DueDate the organisation's default terms apply; the sandbox's are 30 days.
            due = _parse_xero_date(body.get("DueDate")) or issued + timedelta(days=30)
            status = str(body.get("Status") or "DRAFT")
            if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
                raise XeroError.validation(f"Invoice status {status} cannot be set on create.")
            if status == "AUTHORISED" and any(not line.get("AccountCode") for line in lines):
                # unconfirmed: the exact message; an approved invoice's lines need a revenue account.
                raise XeroError.validation("Account code must be specified")
            self.invoice_counter += 1
            invoice_id = str(uuid.uuid4())
            contact = self.contacts[contact_id]
            contact["IsCustomer"] = True
            invoice = {
                "Type": "ACCREC",
                "InvoiceID": invoice_id,
                "InvoiceNumber": f"INV-{self.invoice_counter:04d}",
                "Reference": body.get("Reference") or "",
                "Contact": {"ContactID": contact_id, "Name": contact["Name"]},
                "Date": xero_date(issued),
                "DateString": f"{issued.isoformat()}T00:00:00",
                "DueDate": xero_date(due),
                "DueDateString": f"{due.isoformat()}T00:00:00",
                "Status": status,
                "LineAmountTypes": "Exclusive",
                "LineItems": [
                    {
                        "LineItemID": str(uuid.uuid4()),
                        "Description": line.get("Description", ""),
                        "Quantity": line.get("Quantity"),
                        "UnitAmount": line.get("UnitAmount"),
                        "LineAmount": _money(
                            Decimal(str(line.get("Quantity") or 0)) * Decimal(str(line.get("UnitAmount") or 0))
                        ),
                    }
                    for line in lines
                ],
                "SubTotal": _money(total),
                "TotalTax": 0.0,
                "Total": _money(total),
                "AmountDue": _money(total),
                "AmountPaid": 0.0,
                "CurrencyCode": body.get("CurrencyCode") or "USD",
                "SentToContact": False,
                "HasAttachments": False,
                "UpdatedDateUTC": xero_date(today),
            }
            self.invoices[invoice_id] = invoice
            return copy.deepcopy(invoice)

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.invoices.get(invoice_id)
            if found is None:
                raise XeroError(404, "The resource you're looking for cannot be found")
            return copy.deepcopy(found)

    def list_invoices(self, contact_ids: set[str], statuses: set[str]) -> list[dict[str, Any]]:
        with self._lock:
            found = [
                copy.deepcopy(i)
                for i in self.invoices.values()
                if (not contact_ids or i["Contact"]["ContactID"] in contact_ids)
                and (not statuses or i["Status"] in statuses)
            ]
        return sorted(found, key=lambda i: str(i["InvoiceNumber"]))

    def email_invoice(self, invoice_id: str) -> None:
        with self._lock:
            invoice = self.invoice(invoice_id)
            if invoice["Status"] not in ("AUTHORISED", "PAID"):
                raise XeroError.validation("Only AUTHORISED or PAID invoices can be emailed.")
            contact = self.contacts[invoice["Contact"]["ContactID"]]
            if not contact.get("EmailAddress"):
                raise XeroError.validation("The contact does not have an email address.")
            self.emails.append({"InvoiceID": invoice_id, "To": contact["EmailAddress"]})
            self.invoices[invoice_id]["SentToContact"] = True

    def online_invoice_url(self, invoice_id: str) -> str:
        invoice = self.invoice(invoice_id)
        if invoice["Status"] == "DRAFT":
            raise XeroError.validation("Online invoices are not available for draft invoices.")
        return f"https://in.xero.com/sandbox/{invoice_id}"

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Mark an invoice paid in full, as a payment recorded in Xero would."""
        with self._lock:
            invoice = self.invoices.get(invoice_id)
            if invoice is None:
                raise KeyError(invoice_id)
            invoice["AmountPaid"] = invoice["Total"]
            invoice["AmountDue"] = 0.0
            invoice["Status"] = "PAID"
            # A payment updates the invoice, which Xero notifies as an INVOICE UPDATE.
            self.queue_event("INVOICE", invoice_id, "UPDATE")
            return copy.deepcopy(invoice)

    # -- webhooks ---------------------------------------------------------------------------------------

    def subscribe(self, url: str) -> None:
        """Set the app's delivery URL; as in Xero's portal, intent to receive is then sent to it."""
        with self._lock:
            self.webhook_url = url
            self.send_intent_to_receive()

    def send_intent_to_receive(self) -> None:
        """Queue an intent-to-receive pair: an empty payload signed correctly, another signed wrongly.

        Xero wants 200 (no body) for the first and 401 for the second before it sends events.
        unconfirmed: how many of each Xero sends; its docs say "a series", one of each is queued.
        """
        with self._lock:
            if self.webhook_url is None:
                return
            for key in (SANDBOX_WEBHOOK_KEY, f"not-{SANDBOX_WEBHOOK_KEY}"):
                # The docs' sample: sequences 0 (below the OpenAPI schema's minimum of 1).
                payload = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": _entropy()}
                self.pending.append(signed(self.webhook_url, payload, key))

    def queue_event(self, category: str, resource_id: str, event_type: str = "UPDATE") -> None:
        """Queue one signed delivery of one event (`INVOICE` or `CONTACT`), if a URL is subscribed."""
        # https://developer.xero.com/documentation/guides/webhooks/overview (the payload)
        with self._lock:
            if self.webhook_url is None:
                return
            self.event_sequence += 1
            collection = {"INVOICE": "Invoices", "CONTACT": "Contacts"}.get(category, category.title())
            moment = datetime.now(UTC)
            event = {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/{collection}/{resource_id}",
                "resourceId": resource_id,
                # As in the schema's example: UTC, milliseconds, no offset.
                "eventDateUtc": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}",
                "eventType": event_type,
                "eventCategory": category,
                "tenantId": SANDBOX_TENANT_ID,
                "tenantType": "ORGANISATION",
            }
            payload = {
                "events": [event],
                "firstEventSequence": self.event_sequence,
                "lastEventSequence": self.event_sequence,
                "entropy": _entropy(),
            }
            self.pending.append(signed(self.webhook_url, payload))

    def take_callbacks(self) -> list[XeroCallback]:
        """The deliveries not yet taken, oldest first; they leave the queue."""
        with self._lock:
            taken, self.pending = self.pending, []
            return taken

    def requeue(self, callbacks: list[XeroCallback]) -> None:
        """Put back, first in line, deliveries whose receiver did not answer."""
        with self._lock:
            self.pending[:0] = callbacks
