"""Xero as an `AccountingProvider`: contacts as customers, ACCREC invoices, invoice emails and online links.

Every request goes through xero-python (`client.XeroClient`) on a worker thread inside one
`Resilience`, with the connection's tenant in `xero-tenant-id` and a token from the shared
`TokenManager` (Xero rotates refresh tokens: each refresh's new one is saved to the vault).
Writes carry the caller's idempotency key as Xero's `Idempotency-Key`, so a retried create
answers the first one's records instead of making new ones.

Caller text never reaches a `where` filter: emails are looked up with `searchTerm` (a plain
query parameter Xero matches as text) and then compared exactly, and phones (which neither
`searchTerm` nor `where` can search) by reading the contact list and comparing digits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from xero_python.accounting import Contact, Contacts, RequestEmpty

from integrations.capabilities.errors import RateLimitedError, UpstreamError
from integrations.capabilities.models import AccountCustomer, CustomerDraft, Invoice, InvoiceRequest
from integrations.common.oauth import TokenManager
from integrations.common.phones import same_number
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.xero import mappers
from integrations.xero.client import PROVIDER, XeroAnswer, XeroClient, wait_for
from integrations.xero.settings import XeroSettings

__all__ = ["XeroConnector"]

# Contacts per page when reading the list for a phone match, and the most pages read: 50,000
# contacts, far beyond a small business's book. Xero pages by 100 unless `pageSize` (in the spec)
# says otherwise; unconfirmed: that Xero honours a pageSize as large as 1000.
_PAGE_SIZE = 1000
_MAX_PAGES = 50
# Xero's Idempotency-Key holds at most 128 characters (spec: idempotencyKey parameter).
_KEY_CHARS = 128


class XeroConnector:
    """The accounting capability over one Xero organisation (tenant)."""

    name = PROVIDER

    def __init__(self, settings: XeroSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._client = XeroClient(settings.base_url, settings.tenant_id)
        self._resilience = Resilience(PROVIDER)
        # https://developer.xero.com/documentation/guides/oauth2/auth-flow (refreshing access tokens)
        # The form carries client_id and client_secret, as xero-python's own TokenApi.refresh_token
        # sends them; each answer's new refresh token is saved (Xero rotates them on every refresh).
        self._tokens = TokenManager(
            PROVIDER, "accounting", vault, f"{settings.identity_url.rstrip('/')}/connect/token", clock=env.clock
        )
        # Monotonic time before which Xero said a limit is used up (X-MinLimit/X-DayLimit-Remaining: 0).
        self._hold_until = 0.0
        # The latest rate-limit headers Xero sent, for logs and tests.
        self.limits: dict[str, str] = {}

    # -- AccountingProvider ------------------------------------------------------------------------

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Every contact whose phone (any stored format, parts joined) or email (exact, any case) matches."""
        found: dict[str, dict[str, Any]] = {}
        if email:
            wanted = email.strip().lower()
            for contact in await self._contacts(search_term=wanted):
                if str(contact.get("EmailAddress") or "").strip().lower() == wanted:
                    found.setdefault(str(contact["ContactID"]), contact)
        if phone:
            for contact in await self._contacts(search_term=None):
                if any(same_number(stored, phone) for stored in mappers.joined_phones(contact)):
                    found.setdefault(str(contact["ContactID"]), contact)
        return [mappers.customer(contact) for contact in found.values()]

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        """PUT /Contacts with the draft's key as Idempotency-Key: a retry answers the first contact."""
        # https://developer.xero.com/documentation/api/accounting/contacts#put-contacts
        answer = await self._call("create_contacts", mappers.contact_body(draft), **self._key(draft.idempotency_key))
        return mappers.customer(_first(answer, "Contacts"))

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's AUTHORISED invoices with an amount still due, oldest due first."""
        # https://developer.xero.com/documentation/api/accounting/invoices#get-invoices
        invoices: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._call(
                "get_invoices",
                contact_i_ds=[customer_id],
                statuses=["AUTHORISED"],
                page=page,
                page_size=_PAGE_SIZE,
            )
            batch = [i for i in answer.body.get("Invoices") or [] if isinstance(i, dict)]
            invoices.extend(i for i in batch if i.get("Type", "ACCREC") == "ACCREC")
            if len(batch) < _PAGE_SIZE:
                break
        mapped = [mappers.invoice(raw) for raw in invoices]
        open_ones = [i for i in mapped if i.status == "open" and i.balance_minor > 0]
        return sorted(open_ones, key=lambda i: (i.due_date or date.max, i.number or ""))

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """PUT /Invoices (AUTHORISED ACCREC) with the request's key as Idempotency-Key, then its online link."""
        # https://developer.xero.com/documentation/api/accounting/invoices#put-invoices
        answer = await self._call(
            "create_invoices",
            mappers.invoice_body(request, self._settings.sales_account_code),
            **self._key(request.idempotency_key),
        )
        raw = _first(answer, "Invoices")
        return mappers.invoice(raw, pay_url=await self._online_url(raw))

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """POST /Invoices/{id}/Email (Xero emails the contact's address on file, answering 204).

        Xero has no "send to" parameter: when `email` differs from the contact's address, the
        contact's EmailAddress is updated first, so the invoice goes where the caller asked.
        """
        current = await self._invoice(invoice_id)
        contact_id = str((current.get("Contact") or {}).get("ContactID") or "")
        if email and contact_id:
            contact = _first(await self._call("get_contact", contact_id, record=("customer", contact_id)), "Contacts")
            if str(contact.get("EmailAddress") or "").lower() != email.lower():
                # https://developer.xero.com/documentation/api/accounting/contacts#post-contacts
                body = Contacts(contacts=[Contact(contact_id=contact_id, email_address=email)])
                await self._call(
                    "update_contact",
                    contact_id,
                    body,
                    record=("customer", contact_id),
                    **self._key(f"{idempotency_key}:email" if idempotency_key else None),
                )
        # https://developer.xero.com/documentation/api/accounting/invoices#emailing-an-invoice
        await self._call(
            "email_invoice", invoice_id, RequestEmpty(), record=("invoice", invoice_id), **self._key(idempotency_key)
        )
        return await self.get_invoice(invoice_id)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """GET /Invoices/{id}, with its online invoice link once it is approved."""
        raw = await self._invoice(invoice_id)
        return mappers.invoice(raw, pay_url=await self._online_url(raw))

    async def check_connection(self) -> str:
        """One cheap authenticated read in the tenant: the first page of one contact."""
        await self._call("get_contacts", page=1, page_size=1)
        return f"xero organisation {self._settings.tenant_id} reachable"

    # -- requests ------------------------------------------------------------------------------------

    async def _contacts(self, *, search_term: str | None) -> list[dict[str, Any]]:
        # https://developer.xero.com/documentation/api/accounting/contacts#get-contacts
        contacts: list[dict[str, Any]] = []
        extra: dict[str, Any] = {"search_term": search_term} if search_term else {}
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._call("get_contacts", page=page, page_size=_PAGE_SIZE, **extra)
            batch = [c for c in answer.body.get("Contacts") or [] if isinstance(c, dict)]
            contacts.extend(batch)
            if len(batch) < _PAGE_SIZE:
                break
        return contacts

    async def _invoice(self, invoice_id: str) -> dict[str, Any]:
        # https://developer.xero.com/documentation/api/accounting/invoices#get-invoices
        return _first(await self._call("get_invoice", invoice_id, record=("invoice", invoice_id)), "Invoices")

    async def _online_url(self, raw: dict[str, Any]) -> str | None:
        """The online invoice page (where the customer can pay); Xero has none for drafts or voided ones."""
        if raw.get("Status") not in ("AUTHORISED", "PAID"):
            return None
        invoice_id = str(raw["InvoiceID"])
        # https://developer.xero.com/documentation/api/accounting/invoices#retrieving-the-online-invoice-url
        answer = await self._call("get_online_invoice", invoice_id, record=("invoice", invoice_id))
        links = answer.body.get("OnlineInvoices") or []
        url = links[0].get("OnlineInvoiceUrl") if links and isinstance(links[0], dict) else None
        return str(url) if url else None

    @staticmethod
    def _key(key: str | None) -> dict[str, Any]:
        return {"idempotency_key": key[:_KEY_CHARS]} if key else {}

    async def _call(
        self, operation: str, *args: Any, record: tuple[str, str] | None = None, **kwargs: Any
    ) -> XeroAnswer:
        """One SDK call with a valid token, retried by `Resilience`; a 401 refreshes once and retries."""
        token = await self._tokens.token()
        try:
            return await self._resilience.run_sync(self._attempt(operation, token, args, kwargs, record))
        except UpstreamError as error:
            if error.status != 401:
                raise
        token = await self._tokens.refresh(stale=token)
        return await self._resilience.run_sync(self._attempt(operation, token, args, kwargs, record))

    def _attempt(
        self,
        operation: str,
        token: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        record: tuple[str, str] | None,
    ) -> Callable[[], XeroAnswer]:
        def attempt() -> XeroAnswer:
            # A limit Xero said is used up: wait (or give up) without spending a request on a 429.
            held = self._hold_until - time.monotonic()
            if held > 0:
                raise RateLimitedError(PROVIDER, held)
            answer = self._client.call(
                operation, token, self._resilience.attempt_timeout(), *args, record=record, **kwargs
            )
            self._note(answer)
            return answer

        return attempt

    def _note(self, answer: XeroAnswer) -> None:
        if answer.limits:
            self.limits = dict(answer.limits)
        wait = wait_for(answer.limits)
        if wait is not None:
            self._hold_until = max(self._hold_until, time.monotonic() + wait)


def _first(answer: XeroAnswer, collection: str) -> dict[str, Any]:
    items = answer.body.get(collection) or []
    if not items or not isinstance(items[0], dict):
        raise UpstreamError(PROVIDER, f"answer without {collection}", status=answer.status, retryable=False)
    return dict(items[0])
