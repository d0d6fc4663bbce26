"""Stripe as a payments provider (Checkout links) and a set of books (customers, invoices),
through stripe-python pointed at `settings.base_url`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import stripe
from stripe.params import CustomerSearchParams, InvoiceItemCreateParams, InvoiceListParams

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import (
    AccountCustomer,
    CustomerDraft,
    Invoice,
    InvoiceRequest,
    PaymentLink,
    PaymentLinkRequest,
)
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.stripe.errors import PROVIDER, translate
from integrations.stripe.invoice_mappers import (
    account_customer,
    customer_email_query,
    customer_params,
    customer_phone_query,
    derived_key,
    invoice,
    invoice_create_params,
    invoice_item_params,
    matches_email,
    matches_phone,
)
from integrations.stripe.mappers import (
    customer_create_params,
    idempotency_keys,
    normalized_email,
    payment_link,
    phone_search_query,
    pick_customer,
    session_create_params,
)
from integrations.stripe.settings import StripeSettings
from integrations.stripe.transport import stripe_client

__all__ = ["StripeConnector"]

T = TypeVar("T")
# How many matching customers to look at when reusing one; more than a person ever has.
_CUSTOMER_PAGE = 10
# Stripe's largest page (searches and lists alike), and how many pages a lookup reads at most:
# a phone's last four digits can match many customers in a large account before the exact check.
_MAX_PAGE = 100
_MAX_PAGES = 5


class StripeConnector:
    """Payment links as Stripe Checkout Sessions (mode=payment, one inline-priced line item).

    Why a Checkout Session rather than a Payment Link:

    - one session is one payment: "paid" describes this caller's payment, whereas a Payment Link is
      a reusable page anyone holding the URL can pay many times, whose status would have to be
      pieced together from its completed sessions;
    - a session takes `customer`, so the payment lands on the customer found or created from the
      caller's email or phone; a Payment Link cannot be tied to an existing customer;
    - a session expires (24 hours by default) and reports `status: expired`, and can be expired
      early; a Payment Link stays payable until someone deactivates it;
    - `payment_status` is on the session itself: one GET answers payment_status().

    The cost is a `success_url` (a required setting) and a URL that stops working after expiry,
    which suits a link sent during a call. Every POST carries an Idempotency-Key derived from the
    request's key, so a retried create_payment_link makes one customer and one session.

    As books (the "accounting" capability), customers are Stripe customers and invoices are
    Stripe invoices billed by email (`collection_method=send_invoice`), paid on Stripe's hosted
    invoice page (`pay_url`). A customer's balance is what their open invoices still ask for.
    """

    name = PROVIDER

    def __init__(self, settings: StripeSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._client: stripe.StripeClient | None = None
        self._test_mode = True
        # Errors name the capability this connection serves (one connector class serves two).
        self._capability = env.capability or "payments"

    async def create_payment_link(self, request: PaymentLinkRequest) -> PaymentLink:
        """Find or create the payer as a customer, then open a Checkout Session for the amount."""
        client = await self._stripe()
        keys = idempotency_keys(request, self._env.connection_id)
        customer_id = await self._find_customer(client, request)
        if customer_id is None and (request.customer_email or request.customer_phone):
            params = customer_create_params(request)
            # https://docs.stripe.com/api/customers/create
            customer = await self._call(
                lambda: client.v1.customers.create(params=params, options={"idempotency_key": keys.customer})
            )
            customer_id = customer.id
        session_params = session_create_params(request, self._settings, customer_id, self._env.connection_id)
        # https://docs.stripe.com/api/checkout/sessions/create
        session = await self._call(
            lambda: client.v1.checkout.sessions.create(params=session_params, options={"idempotency_key": keys.session})
        )
        return payment_link(session.to_dict(for_json=True), description=request.description)

    async def payment_status(self, payment_link_id: str) -> PaymentLink:
        """The session as it stands: "paid" once its payment succeeded, "expired" once it lapsed."""
        client = await self._stripe()
        # https://docs.stripe.com/api/checkout/sessions/retrieve (line_items expanded for the description)
        session = await self._call(
            lambda: client.v1.checkout.sessions.retrieve(payment_link_id, params={"expand": ["line_items"]}),
            missing=("payment_link", payment_link_id),
        )
        return payment_link(session.to_dict(for_json=True))

    # -- accounting ---------------------------------------------------------------------------

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Every customer whose phone (any stored format) or email (any case) is the one given.

        Candidates come from Stripe's search (phone: exact E.164 or containing its last four
        digits; email: exact, case-insensitive), plus the email list filter, which unlike search
        sees a customer created moments ago. Each candidate is then compared exactly here.
        """
        client = await self._stripe()
        found: dict[str, dict[str, Any]] = {}
        if phone:
            for customer in await self._search_customers(client, customer_phone_query(phone)):
                if matches_phone(customer, phone):
                    found.setdefault(str(customer["id"]), customer)
        if email:
            address = email.strip().lower()
            # https://docs.stripe.com/api/customers/list#list_customers-email (case-sensitive; kept lower-case here)
            listed = await self._call(lambda: client.v1.customers.list(params={"email": address, "limit": _MAX_PAGE}))
            searched = await self._search_customers(client, customer_email_query(address))
            for customer in [item.to_dict(for_json=True) for item in listed.data] + searched:
                if matches_email(customer, address):
                    found.setdefault(str(customer["id"]), customer)
        results = []
        for customer in found.values():
            owed = await self.open_invoices(str(customer["id"]))
            # One balance is one currency: that of the invoice due first (a business bills in one).
            currency = owed[0].currency if owed else None
            balance = sum(item.balance_minor for item in owed if item.currency == currency)
            results.append(account_customer(customer, balance_minor=balance, currency=currency))
        return results

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        """A new Stripe customer; the same `idempotency_key` answers the first one again."""
        client = await self._stripe()
        key = derived_key(draft.idempotency_key or _one_call_key(), "customer")
        params = customer_params(draft)
        # https://docs.stripe.com/api/customers/create
        created = await self._call(lambda: client.v1.customers.create(params=params, options={"idempotency_key": key}))
        return account_customer(created.to_dict(for_json=True))

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's open invoices (finalized, unpaid, not void), oldest due first.

        Stripe's `status=open` filter leaves out invoices written off as uncollectible: a balance
        the business has given up on is not read out to the caller as owed.
        """
        client = await self._stripe()
        invoices: list[Invoice] = []
        params: InvoiceListParams = {"customer": customer_id, "status": "open", "limit": _MAX_PAGE}
        for _ in range(_MAX_PAGES):
            # https://docs.stripe.com/api/invoices/list (newest first; cursor = the last id)
            page = await self._call(
                lambda: client.v1.invoices.list(params=params.copy()), missing=("customer", customer_id)
            )
            invoices.extend(invoice(item.to_dict(for_json=True)) for item in page.data)
            if not page.has_more or not page.data:
                break
            params["starting_after"] = page.data[-1].id
        owed = [item for item in invoices if item.balance_minor > 0]
        return sorted(owed, key=lambda item: (item.due_date is None, item.due_date, item.id))

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """Draft invoice → one invoice item per line → finalize (open, numbered, with its hosted page).

        Each of those POSTs has its own Idempotency-Key derived from the request's key, so a
        retried call replays every step Stripe already did and makes one invoice, not two.
        """
        client = await self._stripe()
        base = request.idempotency_key or _one_call_key()
        params = invoice_create_params(request)
        # https://docs.stripe.com/api/invoices/create
        draft = await self._call(
            lambda: client.v1.invoices.create(params=params, options={"idempotency_key": derived_key(base, "invoice")}),
            missing=("customer", request.customer_id),
        )
        invoice_id = str(draft.id)
        for number, line in enumerate(request.lines):
            item = invoice_item_params(request.customer_id, invoice_id, line)
            key = derived_key(base, f"line-{number}")
            # https://docs.stripe.com/api/invoiceitems/create
            await self._call(_create_item(client, item, key))
        # https://docs.stripe.com/api/invoices/finalize
        finalized = await self._call(
            lambda: client.v1.invoices.finalize_invoice(
                invoice_id, params={"auto_advance": False}, options={"idempotency_key": derived_key(base, "finalize")}
            ),
            missing=("invoice", invoice_id),
        )
        return invoice(finalized.to_dict(for_json=True))

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Stripe emails the invoice to the customer's address on file.

        Stripe's send takes no recipient: asked for another address, this raises a non-retryable
        `UpstreamError` rather than email someone else (give the caller `pay_url` instead).
        """
        client = await self._stripe()
        if email is not None:
            current = await self.get_invoice(invoice_id)
            on_file = str(current.raw.get("customer_email") or "").strip().lower()
            if email.strip().lower() != on_file:
                raise UpstreamError(
                    PROVIDER,
                    "Stripe emails an invoice only to the customer's address on file; "
                    "share the invoice's pay_url instead",
                    status=None,
                    retryable=False,
                )
        key = derived_key(idempotency_key or _one_call_key(), "send")
        # https://docs.stripe.com/api/invoices/send
        sent = await self._call(
            lambda: client.v1.invoices.send_invoice(invoice_id, options={"idempotency_key": key}),
            missing=("invoice", invoice_id),
        )
        return invoice(sent.to_dict(for_json=True))

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice as it stands now (`NotFoundError` for an unknown id)."""
        client = await self._stripe()
        # https://docs.stripe.com/api/invoices/retrieve
        found = await self._call(lambda: client.v1.invoices.retrieve(invoice_id), missing=("invoice", invoice_id))
        return invoice(found.to_dict(for_json=True))

    async def check_connection(self) -> str:
        """One authenticated read that touches no money: list at most one customer."""
        client = await self._stripe()
        # https://docs.stripe.com/api/customers/list
        await self._call(lambda: client.v1.customers.list(params={"limit": 1}))
        return f"stripe account reachable ({'test' if self._test_mode else 'live'} mode)"

    # -- internals ---------------------------------------------------------------------------

    async def _find_customer(self, client: stripe.StripeClient, request: PaymentLinkRequest) -> str | None:
        email = normalized_email(request)
        if email:
            # The list filter reads its own writes, unlike search (which lags up to a minute), so a
            # second link for the same caller minutes later still finds the customer just created.
            # https://docs.stripe.com/api/customers/list#list_customers-email
            by_email = await self._call(
                lambda: client.v1.customers.list(params={"email": email, "limit": _CUSTOMER_PAGE})
            )
            found = pick_customer([customer.to_dict(for_json=True) for customer in by_email.data])
            if found is not None:
                return found
        if request.customer_phone:
            query = phone_search_query(request.customer_phone)
            # Phone has no list filter, only search: https://docs.stripe.com/api/customers/search
            by_phone = await self._call(
                lambda: client.v1.customers.search(params={"query": query, "limit": _CUSTOMER_PAGE})
            )
            return pick_customer([customer.to_dict(for_json=True) for customer in by_phone.data])
        return None

    async def _search_customers(self, client: stripe.StripeClient, query: str) -> list[dict[str, Any]]:
        """Every page of one customer search (up to `_MAX_PAGES`)."""
        customers: list[dict[str, Any]] = []
        params: CustomerSearchParams = {"query": query, "limit": _MAX_PAGE}
        for _ in range(_MAX_PAGES):
            # https://docs.stripe.com/api/customers/search (pages by `next_page`)
            page = await self._call(lambda: client.v1.customers.search(params=params.copy()))
            customers.extend(customer.to_dict(for_json=True) for customer in page.data)
            if not page.has_more or not page.next_page:
                break
            params["page"] = page.next_page
        return customers

    async def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            api_key = (await self._vault.load()).get("api_key")
            if not api_key:
                raise ProviderNotConnectedError(self._capability, "the stripe connection has no API key")
            self._test_mode = not api_key.startswith(("sk_live_", "rk_live_"))
            self._client = stripe_client(api_key, self._settings.base_url, self._resilience.attempt_timeout)
        return self._client

    async def _call(self, request: Callable[[], T], *, missing: tuple[str, str] | None = None) -> T:
        """One vendor request under Resilience, with SDK errors translated on the worker thread."""

        def attempt() -> T:
            try:
                return request()
            except stripe.StripeError as error:
                raise translate(error, missing=missing, capability=self._capability) from None

        try:
            return await self._resilience.run_sync(attempt)
        except ProviderNotConnectedError as error:
            # The key was rolled or deleted: the connection must be redone, and a new key in the
            # vault must be read again rather than the cached client reused.
            self._client = None
            await self._vault.mark_expired(str(error))
            raise


def _one_call_key() -> str:
    """A key for a write the caller gave no key for: Resilience's retries of this one call stay safe."""
    return f"call-{uuid.uuid4().hex}"


def _create_item(
    client: stripe.StripeClient, params: InvoiceItemCreateParams, key: str
) -> Callable[[], stripe.InvoiceItem]:
    """One invoice-item POST, its parameters bound now (a lambda in the loop would see the last line's)."""
    return lambda: client.v1.invoice_items.create(params=params, options={"idempotency_key": key})
