"""The payments capability: hosted payment links."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from integrations.capabilities.models import PaymentLink, PaymentLinkRequest

__all__ = ["PaymentsProvider"]


@runtime_checkable
class PaymentsProvider(Protocol):
    """A payment processor that can mint a link a caller pays through."""

    name: str

    async def create_payment_link(self, request: PaymentLinkRequest) -> PaymentLink:
        """Create a payment link; the same `idempotency_key` never creates a second one."""
        ...

    async def payment_status(self, payment_link_id: str) -> PaymentLink:
        """The link as it stands now; `status` is "open", "paid" or "expired"."""
        ...
