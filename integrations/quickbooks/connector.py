"""QuickBooks Online as an accounting provider, over httpx against `settings.base_url`.

Why httpx and not python-quickbooks + intuit-oauth: python-quickbooks is synchronous (requests),
builds its OAuth client by fetching Intuit's OpenID discovery document in the constructor (a
network call per connection), needs the process-wide `OAUTHLIB_INSECURE_TRANSPORT=1` to reach a
plain-http emulator, and reports a `Fault` in an HTTP 200 only for some calls. The REST API is
small and plain JSON, so one async client with the shared `TokenManager` covers it exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

import httpx

from integrations.capabilities.errors import NotFoundError, ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import AccountCustomer, CustomerDraft, Invoice, InvoiceRequest
from integrations.common import phones
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.quickbooks import mappers
from integrations.quickbooks.errors import PROVIDER, DuplicateNameError, StaleObjectError, translate
from integrations.quickbooks.settings import QuickBooksSettings
from integrations.quickbooks.tokens import token_manager

__all__ = ["QuickBooksConnector", "request_id"]

# QuickBooks' most rows per query page, and how many pages a lookup reads (10,000 records).
_PAGE_SIZE = 1000
_MAX_PAGES = 10
_JSON = "application/json"


def request_id(operation: str, key: str | None) -> str:
    """The `requestid` for one logical write: derived from the caller's key, else random.

    QuickBooks answers a repeated requestid with the first answer instead of writing again,
    so the same key always yields the same id (hashed: ids are at most 50 characters and unique
    per company, and the same key may arrive for a customer and for an invoice).
    """
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{operation}\n{key}".encode()).hexdigest()[:40]


class QuickBooksConnector:
    """Customers and invoices in one QuickBooks Online company (`settings.realm_id`).

    Every request carries `minorversion`; every write carries a `requestid`, so a retry after a
    timeout or a 5xx returns the first answer rather than booking twice. Phones are matched on
    digits after reading the customers (QuickBooks' query language cannot filter on phone), and
    caller text reaches a query only as an escaped string literal (`mappers.quote`).
    """

    name = PROVIDER

    def __init__(self, settings: QuickBooksSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._vault = vault
        self._env = env
        self._api = f"{settings.base_url.rstrip('/')}/v3/company/{settings.realm_id}"
        self._realm = settings.realm_id
        self._minor = str(settings.minor_version)
        self._item = settings.item_id
        self._tokens = token_manager(settings.token_url, vault, env.clock)
        self._resilience = Resilience(PROVIDER)
        self._writing = KeyLocks()

    # -- the capability ---------------------------------------------------------------------------

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Every customer with this phone (any stored format) or email (any case); phone matches first."""
        found: dict[str, dict[str, Any]] = {}
        region = phones.region_of(phone)
        if phone:
            # unconfirmed: PrimaryPhone is not a filterable field in QuickBooks queries, so active
            # customers are read and compared on digits here.
            for obj in await self._query("select * from Customer where Active = true", "Customer"):
                if any(phones.same_number(typed, phone) for typed in _phones_of(obj)):
                    found.setdefault(str(obj.get("Id")), obj)
        if email:
            wanted = email.strip().lower()
            sql = f"select * from Customer where PrimaryEmailAddr = {mappers.quote(wanted)}"
            for obj in await self._query(sql, "Customer"):
                address = (obj.get("PrimaryEmailAddr") or {}).get("Address")
                if isinstance(address, str) and address.strip().lower() == wanted:
                    found.setdefault(str(obj.get("Id")), obj)
        return [mappers.to_customer(obj, region=region) for obj in found.values()]

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        """A new customer; the same `draft.idempotency_key` answers the first one (QuickBooks `requestid`).

        QuickBooks refuses a second customer with the same DisplayName (error 6240); two callers
        can share a name, so the new one is then named with its phone or email added.
        """
        body = mappers.customer_request(draft)
        rid = request_id("customer", draft.idempotency_key)
        async with self._writing.hold(rid):
            try:
                answer = await self._request("POST", "/customer", json=body, write=rid)
            except DuplicateNameError:
                if not (draft.phone or draft.email):
                    raise
                body["DisplayName"] = f"{draft.name} ({draft.phone or draft.email})"
                answer = await self._request("POST", "/customer", json=body, write=f"{rid[:38]}-2")
        return mappers.to_customer(_entity(answer, "Customer"), region=phones.region_of(draft.phone))

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's invoices with a balance left, the oldest due date first.

        Read with one query, whose rows carry no `InvoiceLink` (only a read with
        `include=invoiceLink` does), so `pay_url` is None here; `get_invoice` has it.
        """
        sql = f"select * from Invoice where CustomerRef = {mappers.quote(customer_id)}"
        invoices = [mappers.to_invoice(obj) for obj in await self._query(sql, "Invoice")]
        unpaid = [invoice for invoice in invoices if invoice.balance_minor > 0]
        return sorted(unpaid, key=lambda invoice: (invoice.due_date or date.max, _numeric(invoice.id)))

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """A new invoice on `settings.item_id`; the same `request.idempotency_key` answers the first one."""
        body = mappers.invoice_request(request, item_id=self._item)
        rid = request_id("invoice", request.idempotency_key)
        async with self._writing.hold(rid):
            answer = await self._request("POST", "/invoice", json=body, write=rid)
        created = _entity(answer, "Invoice")
        # The pay link comes only on a read with include=invoiceLink.
        return await self.get_invoice(str(created.get("Id", "")))

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Have QuickBooks email the invoice (to `email`, else its BillEmail / the customer's address).

        A customer with no email on file keeps the address the invoice went to (a sparse update).
        """
        _check_id(invoice_id, "invoice")
        params = {"sendTo": email} if email else {}
        rid = request_id("send", idempotency_key)
        async with self._writing.hold(rid):
            # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice#send-an-invoice
            answer = await self._request(
                "POST",
                f"/invoice/{invoice_id}/send",
                params=params,
                write=rid,
                content=b"",
                content_type="application/octet-stream",
                record=("invoice", invoice_id),
            )
        sent = _entity(answer, "Invoice")
        if email:
            await self._keep_email(str((sent.get("CustomerRef") or {}).get("value", "")), email, rid)
        return await self.get_invoice(invoice_id)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice with its pay link; `NotFoundError` for an unknown id."""
        _check_id(invoice_id, "invoice")
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice#read-an-invoice
        answer = await self._request(
            "GET", f"/invoice/{invoice_id}", params={"include": "invoiceLink"}, record=("invoice", invoice_id)
        )
        return mappers.to_invoice(_entity(answer, "Invoice"))

    async def check_connection(self) -> str:
        """The company's name, read from CompanyInfo."""
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companyinfo
        answer = await self._request("GET", f"/companyinfo/{self._realm}")
        info = _entity(answer, "CompanyInfo")
        return f"QuickBooks company {info.get('CompanyName') or self._realm}"

    # -- helpers ----------------------------------------------------------------------------------

    async def _keep_email(self, customer_id: str, email: str, rid: str) -> None:
        """Store `email` on a customer who has none, re-reading once on a stale SyncToken (5010)."""
        if not customer_id.isdigit():
            return
        for attempt in range(2):
            # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer#sparse-update-a-customer
            current = _entity(
                await self._request("GET", f"/customer/{customer_id}", record=("customer", customer_id)), "Customer"
            )
            if (current.get("PrimaryEmailAddr") or {}).get("Address"):
                return
            body = {
                "Id": customer_id,
                "SyncToken": current.get("SyncToken", "0"),
                "sparse": True,
                "PrimaryEmailAddr": {"Address": email},
            }
            try:
                await self._request("POST", "/customer", json=body, write=f"{rid[:36]}-e{attempt}")
                return
            except StaleObjectError:
                # Someone changed the customer between our read and write: read again, once.
                if attempt:
                    raise

    async def _query(self, select: str, entity: str) -> list[dict[str, Any]]:
        """Every row of a query, page by page (STARTPOSITION is 1-based)."""
        rows: list[dict[str, Any]] = []
        start = 1
        for _ in range(_MAX_PAGES):
            # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
            sql = f"{select} STARTPOSITION {start} MAXRESULTS {_PAGE_SIZE}"
            answer = await self._request("POST", "/query", content=sql.encode(), content_type="application/text")
            page = (answer.get("QueryResponse") or {}).get(entity) or []
            rows.extend(row for row in page if isinstance(row, dict))
            if len(page) < _PAGE_SIZE:
                break
            start += _PAGE_SIZE
        return rows

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str = _JSON,
        write: str | None = None,
        record: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API call with retries; `write` is the requestid that makes a retried write safe."""
        query = {**(params or {}), "minorversion": self._minor}
        if write is not None:
            query["requestid"] = write

        async def attempt() -> dict[str, Any]:
            token = await self._tokens.token()
            response = await self._send(method, path, query, json, content, content_type, token)
            if response.status_code == 401:
                token = await self._tokens.refresh(stale=token)
                response = await self._send(method, path, query, json, content, content_type, token)
                if response.status_code == 401:
                    await self._vault.mark_expired("QuickBooks refused a freshly refreshed token")
                    raise ProviderNotConnectedError("accounting", "QuickBooks refused the access token")
            try:
                body: Any = response.json()
            except ValueError:
                body = {}
            error = translate(response, body, record=record)
            if error is not None:
                raise error
            return body if isinstance(body, dict) else {}

        return await self._resilience.call(attempt)

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        json: dict[str, Any] | None,
        content: bytes | None,
        content_type: str,
        token: str,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": _JSON}
        if json is not None or content is not None:
            headers["Content-Type"] = content_type
        timeout = self._resilience.attempt_timeout()
        try:
            async with httpx.AsyncClient(timeout=timeout, verify=tls_context()) as client:
                return await client.request(
                    method, f"{self._api}{path}", params=query, json=json, content=content, headers=headers
                )
        except httpx.TimeoutException:
            # Writes carry a requestid, so a retry after a timeout cannot book twice.
            raise UpstreamError(PROVIDER, "QuickBooks timed out", retryable=True) from None
        except httpx.HTTPError as error:
            raise UpstreamError(PROVIDER, f"QuickBooks unreachable ({type(error).__name__})", retryable=True) from None


def _entity(answer: Mapping[str, Any], name: str) -> dict[str, Any]:
    obj = answer.get(name)
    if not isinstance(obj, dict):
        raise UpstreamError(PROVIDER, f"QuickBooks answered without a {name}", retryable=False)
    return obj


def _phones_of(obj: Mapping[str, Any]) -> list[str]:
    typed: list[str] = []
    for field in ("PrimaryPhone", "Mobile", "AlternatePhone"):
        value = obj.get(field)
        if isinstance(value, dict) and isinstance(value.get("FreeFormNumber"), str):
            typed.append(value["FreeFormNumber"])
    return typed


def _check_id(record_id: str, kind: str) -> None:
    # QuickBooks ids are decimal digits; anything else is no record, and never reaches a URL path.
    if not record_id.isdigit() or not record_id.isascii():
        raise NotFoundError(kind, record_id)


def _numeric(record_id: str) -> int:
    return int(record_id) if record_id.isdigit() else 0
