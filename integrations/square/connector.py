"""Square as an accounting provider (customers, invoices) and a payments provider (quick-pay links).

Through the official `squareup` SDK's `AsyncSquare` client pointed at `settings.base_url`. The
SDK's own retries are switched off (`max_retries: 0`): `Resilience` alone retries, within the
tool call's deadline.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

import httpx
from pydantic import BaseModel
from square import AsyncSquare
from square.core.api_error import ApiError
from square.core.request_options import RequestOptions

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
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.square.errors import PROVIDER, translate
from integrations.square.mappers import (
    account_customer,
    customer_create_body,
    derived_key,
    invoice,
    invoice_body,
    is_open,
    matches,
    order_body,
    payment_link,
    payment_link_body,
    phone_query_digits,
)
from integrations.square.settings import SquareSettings

__all__ = ["SquareConnector"]

# Square's search pages hold at most 100 customers / 200 invoices; a person has far fewer.
_PAGE = 100
# How many pages of candidates to read before giving up on a search (a fuzzy match can be broad).
_MAX_PAGES = 5
# Square's default terms when the request names no due date. unconfirmed: Square itself requires
# a due_date on a BALANCE request; 30 days matches the default in Square's invoice editor.
_DEFAULT_TERMS = timedelta(days=30)


def _dump(model: Any) -> dict[str, Any]:
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json", exclude_none=True)
    return {}


class SquareConnector:
    """Customers, invoices and balances in a Square seller account, plus quick-pay payment links.

    Invoices: Square bills an order, so `create_invoice` creates the order, then a draft invoice
    for its whole balance (`payment_requests: [BALANCE]`), then publishes it, which makes it
    UNPAID with a `public_url` the customer pays on. Each of the three writes carries a Square
    `idempotency_key` derived from the request's key, so a retry returns the same order, invoice
    and publication instead of new ones.

    Sending: Square's API has no "send this invoice" call; Square emails an invoice when it is
    published with `delivery_method: EMAIL`. So `create_invoice` publishes with EMAIL when the
    customer has an email address on file (Square emails it then) and SHARE_MANUALLY otherwise,
    and `send_invoice` confirms that Square emailed it, or says plainly that it cannot (no
    address at publication, or a different address asked for), rather than pretending.
    """

    name = PROVIDER

    def __init__(self, settings: SquareSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._access_token: str | None = None

    # -- accounting -----------------------------------------------------------------------------

    async def find_customers(self, *, phone: str | None = None, email: str | None = None) -> list[AccountCustomer]:
        """Every customer whose phone (any stored format) or email (any case) matches; candidates from
        Square's fuzzy search, then checked exactly here, so none a digit away is returned."""
        found: dict[str, dict[str, Any]] = {}
        if phone:
            # Fuzzy matching is token-wise partial, so the national digits find "(415) 555-0123" and
            # "+1 415-555-0123" alike; `matches` then drops any that are not this number.
            query = {"filter": {"phone_number": {"fuzzy": phone_query_digits(phone)}}}
            for customer in await self._search_customers(query):
                if matches(customer, phone=phone, email=None):
                    found[str(customer["id"])] = customer
        if email:
            # Square's email filter is case-insensitive; exact means the whole address.
            # https://developer.squareup.com/reference/square/objects/CustomerFilter
            query = {"filter": {"email_address": {"exact": email.strip().lower()}}}
            for customer in await self._search_customers(query):
                if matches(customer, phone=None, email=email):
                    found[str(customer["id"])] = customer
        results = []
        for customer in found.values():
            owed = [item for item in await self.open_invoices(str(customer["id"])) if item.currency]
            currency = owed[0].currency if owed else "USD"
            balance = sum(item.balance_minor for item in owed if item.currency == currency)
            results.append(account_customer(customer, balance_minor=balance, currency=currency))
        return results

    async def create_customer(self, draft: CustomerDraft) -> AccountCustomer:
        """A new Square customer; the same `idempotency_key` answers the first one again."""
        body = customer_create_body(draft)
        key = derived_key(draft.idempotency_key, "customer") if draft.idempotency_key else None
        # https://developer.squareup.com/reference/square/customers-api/create-customer
        response = await self._call(
            lambda client, options: client.customers.create(
                **body, **({"idempotency_key": key} if key else {}), request_options=options
            )
        )
        return account_customer(_dump(response)["customer"])

    async def open_invoices(self, customer_id: str) -> list[Invoice]:
        """The customer's invoices with something left to pay, oldest due first."""
        query: dict[str, Any] = {
            "filter": {"location_ids": [self._settings.location_id], "customer_ids": [customer_id]},
            "sort": {"field": "INVOICE_SORT_DATE", "order": "ASC"},
        }
        invoices: list[Invoice] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            # https://developer.squareup.com/reference/square/invoices-api/search-invoices
            page = await self._search_page(lambda client: client.invoices.search, query, cursor)
            invoices.extend(invoice(raw) for raw in page.get("invoices") or [])
            cursor = page.get("cursor")
            if not cursor:
                break
        open_ones = [item for item in invoices if is_open(item)]
        return sorted(open_ones, key=lambda item: (item.due_date is None, item.due_date or self._env.clock().date()))

    async def create_invoice(self, request: InvoiceRequest) -> Invoice:
        """Order → draft invoice → publish; every step keyed, so a retry makes nothing twice."""
        customer = await self._customer(request.customer_id)
        key = request.idempotency_key
        order = order_body(request, self._settings.location_id)
        # https://developer.squareup.com/reference/square/orders-api/create-order
        created_order = await self._call(
            lambda client, options: client.orders.create(
                order=cast(Any, order),
                **({"idempotency_key": derived_key(key, "order")} if key else {}),
                request_options=options,
            )
        )
        order_id = str(_dump(created_order)["order"]["id"])
        due = request.due_date or (self._env.clock() + _DEFAULT_TERMS).date()
        delivery = "EMAIL" if customer.get("email_address") else "SHARE_MANUALLY"
        body = invoice_body(
            request, location_id=self._settings.location_id, order_id=order_id, due=due, delivery_method=delivery
        )
        # https://developer.squareup.com/reference/square/invoices-api/create-invoice
        draft = await self._call(
            lambda client, options: client.invoices.create(
                invoice=cast(Any, body),
                **({"idempotency_key": derived_key(key, "invoice")} if key else {}),
                request_options=options,
            )
        )
        drafted = _dump(draft)["invoice"]
        if drafted.get("status") != "DRAFT":
            # A retry whose earlier attempt already published: Square answered the stored invoice.
            return await self.get_invoice(str(drafted["id"]))
        # https://developer.squareup.com/reference/square/invoices-api/publish-invoice
        published = await self._call(
            lambda client, options: client.invoices.publish(
                str(drafted["id"]),
                version=int(drafted.get("version") or 0),
                **({"idempotency_key": derived_key(key, "publish")} if key else {}),
                request_options=options,
            )
        )
        return invoice(_dump(published)["invoice"])

    async def send_invoice(
        self, invoice_id: str, *, email: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """The invoice as Square emailed it at publication.

        Square's API cannot email an already-published invoice again or to another address; for
        those this raises a non-retryable `UpstreamError` (give the caller `pay_url` instead).
        """
        found = await self.get_invoice(invoice_id)
        recipient = found.raw.get("primary_recipient") or {}
        on_file = str(recipient.get("email_address") or "").lower()
        emailed = found.raw.get("delivery_method") == "EMAIL" and bool(on_file)
        if emailed and (email is None or email.strip().lower() == on_file):
            return found
        raise UpstreamError(
            PROVIDER,
            "Square emails an invoice only when it is published to the customer's address on file; "
            "share the invoice's pay_url instead",
            status=None,
            retryable=False,
        )

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice as it stands now (`NotFoundError` for an unknown id)."""
        # https://developer.squareup.com/reference/square/invoices-api/get-invoice
        response = await self._call(
            lambda client, options: client.invoices.get(invoice_id, request_options=options),
            missing=("invoice", invoice_id),
        )
        return invoice(_dump(response)["invoice"])

    # -- payments -------------------------------------------------------------------------------

    async def create_payment_link(self, request: PaymentLinkRequest) -> PaymentLink:
        """A Square quick-pay link for the amount; the same `idempotency_key` answers the same link."""
        body = payment_link_body(request, self._settings.location_id)
        key = request.idempotency_key
        # https://developer.squareup.com/reference/square/checkout-api/create-payment-link
        response = await self._call(
            lambda client, options: client.checkout.payment_links.create(
                **body, **({"idempotency_key": derived_key(key, "link")} if key else {}), request_options=options
            )
        )
        created = _dump(response)
        link = created["payment_link"]
        orders = (created.get("related_resources") or {}).get("orders") or []
        order = orders[0] if orders else await self._order(str(link.get("order_id") or ""))
        return payment_link(link, order, description=request.description)

    async def payment_status(self, payment_link_id: str) -> PaymentLink:
        """The link and whether its order has been paid ("open", "paid" or "expired")."""
        # https://developer.squareup.com/reference/square/checkout-api/retrieve-payment-link
        response = await self._call(
            lambda client, options: client.checkout.payment_links.get(payment_link_id, request_options=options),
            missing=("payment_link", payment_link_id),
        )
        link = _dump(response)["payment_link"]
        return payment_link(link, await self._order(str(link.get("order_id") or "")))

    async def check_connection(self) -> str:
        """One authenticated read: the configured location."""
        location_id = self._settings.location_id
        # https://developer.squareup.com/reference/square/locations-api/retrieve-location
        response = await self._call(
            lambda client, options: client.locations.get(location_id, request_options=options),
            missing=("location", location_id),
        )
        location = _dump(response).get("location") or {}
        return f"square location {location.get('name') or location_id} reachable"

    # -- internals ------------------------------------------------------------------------------

    async def _search_customers(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        customers: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            # https://developer.squareup.com/reference/square/customers-api/search-customers
            page = await self._search_page(lambda client: client.customers.search, query, cursor)
            customers.extend(page.get("customers") or [])
            cursor = page.get("cursor")
            if not cursor:
                break
        return customers

    async def _search_page(
        self,
        search: Callable[[AsyncSquare], Callable[..., Awaitable[Any]]],
        query: dict[str, Any],
        cursor: str | None,
    ) -> dict[str, Any]:
        """One page of a Square search endpoint (`cursor` from the previous page)."""
        extra = {"cursor": cursor} if cursor else {}
        response = await self._call(
            lambda client, options: search(client)(
                query=cast(Any, query), limit=_PAGE, **extra, request_options=options
            )
        )
        return _dump(response)

    async def _customer(self, customer_id: str) -> dict[str, Any]:
        # https://developer.squareup.com/reference/square/customers-api/retrieve-customer
        response = await self._call(
            lambda client, options: client.customers.get(customer_id, request_options=options),
            missing=("customer", customer_id),
        )
        return dict(_dump(response)["customer"])

    async def _order(self, order_id: str) -> dict[str, Any] | None:
        if not order_id:
            return None
        # https://developer.squareup.com/reference/square/orders-api/retrieve-order
        response = await self._call(
            lambda client, options: client.orders.get(order_id, request_options=options), missing=("order", order_id)
        )
        return dict(_dump(response)["order"])

    async def _token(self) -> str:
        if self._access_token is None:
            token = (await self._vault.load()).get("access_token")
            if not token:
                raise ProviderNotConnectedError("accounting", "the square connection has no access token")
            self._access_token = token
        return self._access_token

    async def _call(
        self,
        request: Callable[[AsyncSquare, RequestOptions], Awaitable[Any]],
        *,
        missing: tuple[str, str] | None = None,
    ) -> Any:
        """One vendor request under Resilience, SDK retries off, errors translated.

        Each attempt has its own HTTP client, closed when it ends (as the other httpx-based
        connectors do), so nothing outlives the tool call.
        """
        token = await self._token()

        async def attempt() -> Any:
            timeout = max(1, math.ceil(self._resilience.attempt_timeout()))
            options: RequestOptions = {"max_retries": 0, "timeout_in_seconds": timeout}
            try:
                async with httpx.AsyncClient(timeout=timeout, verify=tls_context()) as http:
                    client = AsyncSquare(token=token, base_url=self._settings.base_url, httpx_client=http)
                    return await request(client, options)
            except (ApiError, httpx.HTTPError) as error:
                raise translate(error, missing=missing) from None

        try:
            return await self._resilience.call(attempt)
        except ProviderNotConnectedError as error:
            # A revoked or rotated token: read the vault again next time, and say the connection needs redoing.
            self._access_token = None
            await self._vault.mark_expired(str(error))
            raise
