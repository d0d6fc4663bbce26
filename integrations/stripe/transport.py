"""The HTTP client under the Stripe SDK: every attempt's timeout fits the tool call's deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
import stripe

__all__ = ["stripe_client"]


class _DeadlineSession(requests.Session):
    """A requests session whose timeout is computed per request, not fixed at construction.

    The SDK's `RequestsClient` passes one timeout it was built with. The blocking SDK call runs on
    a worker thread that inherits the tool call's context, so asking `timeout()` there yields what
    this call's deadline still allows.

    One session serves every worker thread (the SDK keeps a given session rather than one per
    thread): its urllib3 connection pool and its cookie jar both lock.
    """

    def __init__(self, timeout: Callable[[], float]) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout()
        return super().send(request, **kwargs)


def stripe_client(api_key: str, base_url: str, timeout: Callable[[], float]) -> stripe.StripeClient:
    """A StripeClient aimed at `base_url`, with the SDK's own retries off (Resilience retries)."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(session=_DeadlineSession(timeout)),
    )
