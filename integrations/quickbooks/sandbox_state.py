"""The emulator's in-memory QuickBooks company: customers, invoices, payments, OAuth tokens, requestids.

Records are kept as QuickBooks' own JSON (`Id`, `SyncToken`, `MetaData`, `DisplayName`,
`PrimaryPhone.FreeFormNumber`, `TotalAmt`, `Balance`, …), so the routes answer them as they are.

Webhooks: once a notification URL is subscribed (`webhook_url`), paying an invoice queues one
signed notification naming the Payment that was created and the Invoice whose Balance it changed,
in the format `webhook_format` says (Intuit's CloudEvents array by default, or the legacy
`eventNotifications` object). Tests `take_callbacks()` and post them into the server themselves.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

__all__ = [
    "REALM_ID",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "SANDBOX_VERIFIER_TOKEN",
    "WEBHOOK_FORMATS",
    "QuickBooksCallback",
    "QuickBooksFaultError",
    "QuickBooksState",
    "TokenError",
    "WebhookFormat",
    "notification",
    "signed",
]

REALM_ID = "9341453050298765"
SANDBOX_CLIENT_ID = "ABsandboxQuickBooksClientId0000000000000000000"
SANDBOX_CLIENT_SECRET = "sandbox-qbo-client-secret-7d41"
# The emulator always accepts this refresh token (every sandbox connection starts from it);
# the tokens it rotates to on each refresh are accepted too, until revoked.
SANDBOX_REFRESH_TOKEN = "AB11sandbox-quickbooks-refresh-token-0001"
# Intuit access tokens live an hour; refresh tokens 100 days (x_refresh_token_expires_in).
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8726400
SNAPSHOT_VERSION = 1
# unconfirmed: the default terms of a new company (Net 30).
DEFAULT_TERMS_DAYS = 30
HOME_CURRENCY = "USD"
# The app's webhook Verifier Token the emulator signs notifications with (sandbox only; the
# sandbox connection stores the same value as its `verifier_token` secret).
SANDBOX_VERIFIER_TOKEN = "sandbox-qbo-webhook-verifier-token-5c2e"
WebhookFormat = Literal["legacy", "cloudevents"]
WEBHOOK_FORMATS: tuple[str, ...] = get_args(WebhookFormat)
# unconfirmed: what Intuit's CloudEvents `source` encodes (its sample shows "intuit.<base64>").
_CLOUDEVENTS_SOURCE = "intuit." + base64.b64encode(b"sandbox-quickbooks-emulator").decode()
# Legacy operation names → the verb in a CloudEvents type (qbo.<entity>.<verb>.v1).
# unconfirmed: Intuit's samples show only "created"; "updated" is inferred from the pattern.
_CLOUDEVENTS_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided"}


@dataclass(frozen=True)
class QuickBooksCallback:
    """One signed webhook delivery: where, its headers, its raw JSON body."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def notification(
    webhook_format: WebhookFormat, realm_id: str, entities: list[tuple[str, str, str]], at: datetime
) -> Any:
    """A webhook payload naming `entities` ((name, id, operation), e.g. ("Invoice", "130", "Update")).

    Both shapes carry ids only, never the changed fields: the receiver reads the records back.
    """
    when = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if webhook_format == "legacy":
        # https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/managing-webhooks-notifications
        changed = [{"name": name, "id": ident, "operation": op, "lastUpdated": when} for name, ident, op in entities]
        return {"eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": changed}}]}
    # https://blogs.intuit.com/2025/11/12/upcoming-change-to-webhooks-payload-structure/
    return [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": _CLOUDEVENTS_SOURCE,
            "type": f"qbo.{name.lower()}.{_CLOUDEVENTS_VERBS[op]}.v1",
            "datacontenttype": "application/json",
            "time": when,
            "intuitentityid": ident,
            "intuitaccountid": realm_id,
            "data": {},
        }
        for name, ident, op in entities
    ]


def signed(url: str, payload: Any, token: str = SANDBOX_VERIFIER_TOKEN) -> QuickBooksCallback:
    """A delivery to `url` signed as Intuit signs: `intuit-signature` = base64(HMAC-SHA256(token, body))."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    signature = base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()
    # unconfirmed: Intuit may send CloudEvents as application/cloudevents+json (its migration guide
    # warns of it); the emulator does, so a receiver that insists on application/json is caught.
    media = "application/json" if isinstance(payload, dict) else "application/cloudevents+json"
    return QuickBooksCallback(url, body, {"content-type": media, "intuit-signature": signature})


class QuickBooksFaultError(Exception):
    """A QuickBooks error answer: `{"Fault": {"Error": [{Message, Detail, code}], "type"}, "time"}`."""

    def __init__(self, status: int, code: str, message: str, detail: str = "", kind: str = "ValidationFault") -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
            "time": stamp(),
        }


class TokenError(Exception):
    """An OAuth error from Intuit's token endpoint (`{"error": "invalid_grant"}`)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error}


def stamp() -> str:
    """QuickBooks' timestamp format (ISO 8601 with milliseconds and the company's offset)."""
    # unconfirmed: the company's offset; the emulator's company keeps Pacific time as -08:00.
    now = datetime.now(UTC).astimezone(timezone(timedelta(hours=-8)))
    return now.isoformat(timespec="milliseconds")


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _number(value: Decimal) -> float:
    return float(value)


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    next_id: int
    next_doc: int
    customers: dict[str, dict[str, Any]]
    invoices: dict[str, dict[str, Any]]
    payments: list[dict[str, Any]]
    sent: list[dict[str, Any]]
    access_tokens: dict[str, float]
    refresh_tokens: list[str]
    requestids: dict[str, list[Any]]
    # Absent from snapshots written before webhooks were emulated.
    webhook_url: str | None = None
    webhook_format: WebhookFormat = "cloudevents"
    pending: list[dict[str, Any]] = []


class QuickBooksState:
    """One emulated QuickBooks company. Safe to seed from a test thread while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    # -- the SandboxState protocol ---------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.next_id = 1
            self.next_doc = 1001
            self.customers: dict[str, dict[str, Any]] = {}
            self.invoices: dict[str, dict[str, Any]] = {}
            self.payments: list[dict[str, Any]] = []
            self.sent: list[dict[str, Any]] = []
            self.access_tokens: dict[str, float] = {}
            self.refresh_tokens: set[str] = {SANDBOX_REFRESH_TOKEN}
            self.requestids: dict[str, tuple[int, dict[str, Any]]] = {}
            # Test hooks: answer the next API requests with a Fault inside an HTTP 200, or as if
            # someone else changed the record just before an update (error 5010).
            self.faults_in_200: list[dict[str, Any]] = []
            self.stale_updates = 0
            # The app's webhook endpoint, the payload format it asked for, and what is not delivered yet.
            self.webhook_url: str | None = None
            self.webhook_format: WebhookFormat = "cloudevents"
            self.pending: list[QuickBooksCallback] = []

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "realm_id": REALM_ID,
                "customers": copy.deepcopy(list(self.customers.values())),
                "invoices": copy.deepcopy(list(self.invoices.values())),
                "payments": copy.deepcopy(self.payments),
                "sent_invoices": copy.deepcopy(self.sent),
            }

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "version": SNAPSHOT_VERSION,
                    "next_id": self.next_id,
                    "next_doc": self.next_doc,
                    "customers": self.customers,
                    "invoices": self.invoices,
                    "payments": self.payments,
                    "sent": self.sent,
                    "access_tokens": self.access_tokens,
                    "refresh_tokens": sorted(self.refresh_tokens),
                    "requestids": {rid: [status, body] for rid, (status, body) in self.requestids.items()},
                    "webhook_url": self.webhook_url,
                    "webhook_format": self.webhook_format,
                    "pending": [{"url": c.url, "body": c.body.decode(), "headers": c.headers} for c in self.pending],
                }
            )

    def restore(self, snapshot: dict[str, Any]) -> None:
        saved = _Snapshot.model_validate(snapshot)
        if saved.version != SNAPSHOT_VERSION:
            raise ValueError(f"quickbooks snapshot version {saved.version}, expected {SNAPSHOT_VERSION}")
        requestids: dict[str, tuple[int, dict[str, Any]]] = {}
        for rid, pair in saved.requestids.items():
            if len(pair) != 2 or not isinstance(pair[0], int) or not isinstance(pair[1], dict):
                raise TypeError(f"requestid {rid!r} is not [status, body]")
            requestids[rid] = (pair[0], copy.deepcopy(pair[1]))
        with self._lock:
            self.reset()
            self.next_id = saved.next_id
            self.next_doc = saved.next_doc
            self.customers = copy.deepcopy(saved.customers)
            self.invoices = copy.deepcopy(saved.invoices)
            self.payments = copy.deepcopy(saved.payments)
            self.sent = copy.deepcopy(saved.sent)
            self.access_tokens = dict(saved.access_tokens)
            self.refresh_tokens = set(saved.refresh_tokens)
            self.requestids = requestids
            self.webhook_url = saved.webhook_url
            self.webhook_format = saved.webhook_format
            self.pending = [
                QuickBooksCallback(str(c["url"]), str(c["body"]).encode(), dict(c["headers"])) for c in saved.pending
            ]

    # -- OAuth ------------------------------------------------------------------------------------

    def refresh(self, authorization: str | None, form: dict[str, str]) -> dict[str, Any]:
        """Intuit's refresh grant: Basic client credentials, a known refresh token; a new pair back."""
        # https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0#refresh-the-token
        expected = base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            raise TokenError(401, "invalid_client")
        if form.get("grant_type") != "refresh_token":
            raise TokenError(400, "unsupported_grant_type")
        with self._lock:
            if form.get("refresh_token") not in self.refresh_tokens:
                raise TokenError(400, "invalid_grant")
            access = "eyJsandbox." + secrets.token_urlsafe(24)
            rotated = "AB11" + secrets.token_urlsafe(24)
            self.access_tokens[access] = time.time() + ACCESS_TOKEN_SECONDS
            # unconfirmed: how long Intuit keeps honouring the refresh token it just replaced.
            self.refresh_tokens.add(rotated)
        return {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": rotated,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "x_refresh_token_expires_in": REFRESH_TOKEN_SECONDS,
        }

    def authenticated(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self.access_tokens.get(authorization.removeprefix("Bearer "))
        return expiry is not None and expiry > time.time()

    # -- requestids and test hooks -----------------------------------------------------------------

    def remembered(self, rid: str | None) -> tuple[int, dict[str, Any]] | None:
        if rid is None:
            return None
        with self._lock:
            found = self.requestids.get(rid)
        return (found[0], copy.deepcopy(found[1])) if found else None

    def remember(self, rid: str | None, status: int, body: dict[str, Any]) -> None:
        if rid is None:
            return
        with self._lock:
            self.requestids.setdefault(rid, (status, copy.deepcopy(body)))

    def fault_next_in_200(self, code: str, message: str) -> None:
        """Answer the next API request with HTTP 200 carrying a Fault (QuickBooks does this)."""
        with self._lock:
            self.faults_in_200.append(QuickBooksFaultError(200, code, message).body)

    def take_fault_in_200(self) -> dict[str, Any] | None:
        with self._lock:
            return self.faults_in_200.pop(0) if self.faults_in_200 else None

    # -- records -----------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id - 1)

    @staticmethod
    def _meta() -> dict[str, str]:
        now = stamp()
        return {"CreateTime": now, "LastUpdatedTime": now}

    def seed_customer(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """A customer with these fields stored verbatim (as staff typed them); its id."""
        body: dict[str, Any] = {"DisplayName": name}
        if phone is not None:
            body["PrimaryPhone"] = {"FreeFormNumber": phone}
        if email is not None:
            body["PrimaryEmailAddr"] = {"Address": email}
        return str(self.create_customer(body, check_names=False)["Id"])

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """`ContactSeeding`, for suites that seed people the same way in every emulator."""
        return self.seed_customer(name=name, phone=phone, email=email)

    def create_customer(self, body: Any, *, check_names: bool = True) -> dict[str, Any]:
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer#create-a-customer
        if not isinstance(body, dict):
            raise QuickBooksFaultError(400, "2500", "Invalid Request", "Request body is not a Customer object")
        name = body.get("DisplayName") or " ".join(
            str(body[part]) for part in ("GivenName", "MiddleName", "FamilyName") if body.get(part)
        )
        if not isinstance(name, str) or not name.strip():
            raise QuickBooksFaultError(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Name (DisplayName or a name part) is missing in the request",
            )
        with self._lock:
            if check_names and any(
                c.get("Active", True) and str(c.get("DisplayName", "")).lower() == name.lower()
                for c in self.customers.values()
            ):
                raise QuickBooksFaultError(
                    400,
                    "6240",
                    "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer, vendor or employee is already "
                    "using this name. Please use a different name.",
                )
            record: dict[str, Any] = {
                key: copy.deepcopy(value)
                for key, value in body.items()
                if key
                in {"GivenName", "MiddleName", "FamilyName", "CompanyName", "PrimaryPhone", "Mobile"}
                | {"AlternatePhone", "PrimaryEmailAddr", "BillAddr", "Notes", "Title", "Suffix"}
            }
            customer_id = self._new_id()
            record.update(
                {
                    "Id": customer_id,
                    "SyncToken": "0",
                    "domain": "QBO",
                    "sparse": False,
                    "DisplayName": name,
                    "FullyQualifiedName": name,
                    "PrintOnCheckName": name,
                    "Active": True,
                    "Job": False,
                    "BillWithParent": False,
                    "Taxable": False,
                    "Balance": 0.0,
                    "BalanceWithJobs": 0.0,
                    "CurrencyRef": {"value": HOME_CURRENCY, "name": "United States Dollar"},
                    "PreferredDeliveryMethod": "Print",
                    "MetaData": self._meta(),
                }
            )
            self.customers[customer_id] = record
            return copy.deepcopy(record)

    def customer(self, customer_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.customers.get(customer_id)
            if found is None:
                raise _not_found("Customer", customer_id)
            return copy.deepcopy(found)

    def update_customer(self, body: Any) -> dict[str, Any]:
        """A sparse (or full) update: `Id` and the current `SyncToken` required, else 5010."""
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer#sparse-update-a-customer
        with self._lock:
            customer_id = str(body.get("Id"))
            record = self.customers.get(customer_id)
            if record is None:
                raise _not_found("Customer", customer_id)
            if self.stale_updates > 0:
                # As if another app saved the customer a moment before this request.
                self.stale_updates -= 1
                record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            if str(body.get("SyncToken")) != record["SyncToken"]:
                raise QuickBooksFaultError(
                    400,
                    "5010",
                    "Stale Object Error",
                    f"Stale Object Error : You and root were working on this at the same time. "
                    f"root finished before you did, so your work was not saved. "
                    f"Object Id {customer_id}, SyncToken {body.get('SyncToken')}",
                )
            for key in ("PrimaryEmailAddr", "PrimaryPhone", "Mobile", "GivenName", "FamilyName", "CompanyName"):
                if key in body:
                    record[key] = copy.deepcopy(body[key])
            record["SyncToken"] = str(int(record["SyncToken"]) + 1)
            record["MetaData"]["LastUpdatedTime"] = stamp()
            return copy.deepcopy(record)

    def create_invoice(self, body: Any) -> dict[str, Any]:
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice#create-an-invoice
        if not isinstance(body, dict):
            raise QuickBooksFaultError(400, "2500", "Invalid Request", "Request body is not an Invoice object")
        ref = body.get("CustomerRef")
        customer_id = str(ref.get("value")) if isinstance(ref, dict) else ""
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise QuickBooksFaultError(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line is missing in the request",
            )
        with self._lock:
            customer = self.customers.get(customer_id)
            if customer is None:
                raise QuickBooksFaultError(
                    400,
                    "2500",
                    "Invalid Reference Id",
                    f"Invalid Reference Id : Customer assigned to this transaction has been "
                    f"deleted. Before you can modify this transaction, you must restore "
                    f"{customer_id} (deleted).",
                )
            stored_lines: list[dict[str, Any]] = []
            total = Decimal("0.00")
            for number, line in enumerate(lines, start=1):
                stored_lines.append(self._line(line, number))
                total += _money(line.get("Amount", 0))
            currency = str((body.get("CurrencyRef") or {}).get("value") or HOME_CURRENCY)
            if currency != HOME_CURRENCY:
                raise QuickBooksFaultError(
                    400,
                    "6000",
                    "A business validation error has occurred while processing your request",
                    "Business Validation Error: Multicurrency is not turned on for this company.",
                )
            txn_date = date.today()
            due = body.get("DueDate") or (txn_date + timedelta(days=DEFAULT_TERMS_DAYS)).isoformat()
            invoice_id = self._new_id()
            doc = str(self.next_doc)
            self.next_doc += 1
            stored_lines.append(
                {"Amount": _number(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
            )
            invoice: dict[str, Any] = {
                "Id": invoice_id,
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "DocNumber": doc,
                "TxnDate": txn_date.isoformat(),
                "DueDate": due,
                "CustomerRef": {"value": customer_id, "name": customer["DisplayName"]},
                "CurrencyRef": {"value": currency, "name": "United States Dollar"},
                "Line": stored_lines,
                "TotalAmt": _number(total),
                "Balance": _number(total),
                "EmailStatus": "NotSet",
                "PrintStatus": "NeedToPrint",
                "AllowOnlineCreditCardPayment": True,
                "AllowOnlineACHPayment": True,
                "MetaData": self._meta(),
            }
            if isinstance(body.get("CustomerMemo"), dict):
                invoice["CustomerMemo"] = copy.deepcopy(body["CustomerMemo"])
            bill_email = body.get("BillEmail") or customer.get("PrimaryEmailAddr")
            if isinstance(bill_email, dict) and bill_email.get("Address"):
                invoice["BillEmail"] = {"Address": bill_email["Address"]}
            self.invoices[invoice_id] = invoice
            customer["Balance"] = _number(_money(customer["Balance"]) + total)
            customer["BalanceWithJobs"] = customer["Balance"]
            return copy.deepcopy(invoice)

    @staticmethod
    def _line(line: Any, number: int) -> dict[str, Any]:
        if not isinstance(line, dict) or line.get("DetailType") != "SalesItemLineDetail":
            raise QuickBooksFaultError(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line.DetailType is missing in the request",
            )
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict) or not isinstance(detail.get("ItemRef"), dict):
            raise QuickBooksFaultError(
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line.SalesItemLineDetail.ItemRef is missing in the request",
            )
        amount = _money(line.get("Amount", 0))
        if (
            "Qty" in detail
            and "UnitPrice" in detail
            and _money(Decimal(str(detail["Qty"])) * _money(detail["UnitPrice"])) != amount
        ):
            # unconfirmed: QuickBooks' code for Amount ≠ Qty × UnitPrice (6070 per community reports).
            raise QuickBooksFaultError(
                400,
                "6070",
                "Amount is not equal to UnitPrice * Qty",
                f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
            )
        return {
            "Id": str(number),
            "LineNum": number,
            "Description": line.get("Description"),
            "Amount": _number(amount),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": copy.deepcopy(detail),
        }

    def invoice(self, invoice_id: str, *, with_link: bool = False) -> dict[str, Any]:
        with self._lock:
            found = self.invoices.get(invoice_id)
            if found is None:
                raise _not_found("Invoice", invoice_id)
            answer = copy.deepcopy(found)
        if with_link:
            # unconfirmed: the exact shape of Intuit's customer payment links.
            answer["InvoiceLink"] = (
                f"https://connect.intuit.com/portal/app/CommerceNetwork/view/scs-v1-{REALM_ID}-{invoice_id}"
            )
        return answer

    def send_invoice(self, invoice_id: str, send_to: str | None) -> dict[str, Any]:
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice#send-an-invoice
        with self._lock:
            found = self.invoices.get(invoice_id)
            if found is None:
                raise _not_found("Invoice", invoice_id)
            if send_to:
                found["BillEmail"] = {"Address": send_to}
            address = (found.get("BillEmail") or {}).get("Address")
            if not address:
                # unconfirmed: the code QuickBooks answers for an invoice with nowhere to send it.
                raise QuickBooksFaultError(
                    400,
                    "2020",
                    "Required param missing, need to supply the required value for the API",
                    "Required parameter BillEmail is missing in the request",
                )
            found["EmailStatus"] = "EmailSent"
            found["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": stamp()}
            found["SyncToken"] = str(int(found["SyncToken"]) + 1)
            self.sent.append({"invoice_id": invoice_id, "to": address, "at": found["DeliveryInfo"]["DeliveryTime"]})
            return copy.deepcopy(found)

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Record a payment of the invoice's whole balance (as a customer paying online would); the Payment.

        With a webhook endpoint subscribed, one signed notification is queued naming both records.
        """
        with self._lock:
            found = self.invoices.get(invoice_id)
            if found is None:
                raise KeyError(invoice_id)
            amount = _money(found["Balance"])
            found["Balance"] = 0.0
            found["SyncToken"] = str(int(found["SyncToken"]) + 1)
            found["MetaData"]["LastUpdatedTime"] = stamp()
            customer_id = found["CustomerRef"]["value"]
            customer = self.customers.get(customer_id)
            if customer is not None:
                customer["Balance"] = _number(_money(customer["Balance"]) - amount)
                customer["BalanceWithJobs"] = customer["Balance"]
            payment = {
                "Id": self._new_id(),
                "SyncToken": "0",
                "TxnDate": date.today().isoformat(),
                "CustomerRef": copy.deepcopy(found["CustomerRef"]),
                "TotalAmt": _number(amount),
                "UnappliedAmt": 0.0,
                "Line": [{"Amount": _number(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
                "MetaData": self._meta(),
            }
            self.payments.append(payment)
            if self.webhook_url is not None:
                # A Payment notification cannot say which invoice it paid, but applying it changes the
                # invoice's Balance, which QuickBooks notifies as an Invoice update.
                # unconfirmed: that both arrive in the same aggregated delivery (Intuit batches per
                # interval, so they usually do; a receiver must not rely on it).
                changed = [("Payment", payment["Id"], "Create"), ("Invoice", invoice_id, "Update")]
                payload = notification(self.webhook_format, REALM_ID, changed, datetime.now(UTC))
                self.pending.append(signed(self.webhook_url, payload))
            return copy.deepcopy(payment)

    def subscribe(self, url: str, webhook_format: WebhookFormat | None = None) -> None:
        """Point the app's webhook endpoint at `url` (and switch the payload format, if given)."""
        with self._lock:
            self.webhook_url = url
            if webhook_format is not None:
                self.webhook_format = webhook_format

    def take_callbacks(self) -> list[QuickBooksCallback]:
        """The signed notifications not yet taken, oldest first; they leave the queue."""
        with self._lock:
            taken, self.pending = self.pending, []
            return taken

    def requeue(self, callbacks: list[QuickBooksCallback]) -> None:
        """Put back the notifications a delivery could not hand over, ahead of newer ones."""
        with self._lock:
            self.pending[:0] = callbacks

    def rows(self, entity: str) -> list[dict[str, Any]]:
        with self._lock:
            store = self.customers if entity == "Customer" else self.invoices
            return copy.deepcopy(list(store.values()))


def _not_found(entity: str, record_id: str) -> QuickBooksFaultError:
    # unconfirmed: QuickBooks answers a read of an unknown id with HTTP 400 and code 610.
    return QuickBooksFaultError(
        400,
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {record_id})",
    )
