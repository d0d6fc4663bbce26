"""Stripe as a payments provider, through stripe-python pointed at `settings.base_url`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe

from integrations.capabilities.errors import ProviderNotConnectedError
from integrations.capabilities.models import PaymentLink, PaymentLinkRequest
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.stripe.errors import PROVIDER, translate
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
    """

    name = PROVIDER

    def __init__(self, settings: StripeSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._client: stripe.StripeClient | None = None
        self._test_mode = True

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

    async def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            api_key = (await self._vault.load()).get("api_key")
            if not api_key:
                raise ProviderNotConnectedError("payments", "the stripe connection has no API key")
            self._test_mode = not api_key.startswith(("sk_live_", "rk_live_"))
            self._client = stripe_client(api_key, self._settings.base_url, self._resilience.attempt_timeout)
        return self._client

    async def _call(self, request: Callable[[], T], *, missing: tuple[str, str] | None = None) -> T:
        """One vendor request under Resilience, with SDK errors translated on the worker thread."""

        def attempt() -> T:
            try:
                return request()
            except stripe.StripeError as error:
                raise translate(error, missing=missing) from None

        try:
            return await self._resilience.run_sync(attempt)
        except ProviderNotConnectedError as error:
            # The key was rolled or deleted: the connection must be redone, and a new key in the
            # vault must be read again rather than the cached client reused.
            self._client = None
            await self._vault.mark_expired(str(error))
            raise
