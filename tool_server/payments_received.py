"""What a verified payment webhook does: the object is marked paid, `payment.completed` goes to the
agent's hook subscribers, and whoever paid gets a receipt when the agent asks for one.

QuickBooks and Xero only say which invoice changed; it is read back through the connection that
received the notification, and counts only if the provider itself now says `paid`.
"""

from __future__ import annotations

import asyncio
import logging

from integrations.capabilities.errors import NotFoundError
from integrations.common.spec import InvoiceChangedEvent, PaymentEvent
from tool_server.services import Services

__all__ = ["apply_payment", "paid_invoice"]

logger = logging.getLogger(__name__)


async def paid_invoice(
    services: Services, agent_id: str, connection_id: str, event: InvoiceChangedEvent
) -> PaymentEvent | None:
    """The changed invoice as a `PaymentEvent` when the provider says it is paid, else None.

    Raises (a provider error or the read deadline) so the route can answer 503 and the provider
    delivers again later.
    """
    agent = await services.agents.get(agent_id)
    connection = agent.connections.get("accounting") if agent is not None else None
    if agent is None or connection is None or connection.id != connection_id:
        return None  # the connection no longer keeps this agent's books
    books = services.providers.for_agent(agent).accounting()
    try:
        async with asyncio.timeout(services.dispatcher.deadlines.read_seconds):
            invoice = await books.get_invoice(event.invoice_id)
    except NotFoundError:
        # Not in these books: one app's webhooks cover every company connected to it.
        return None
    if invoice.status != "paid":
        return None
    return PaymentEvent(invoice.id, "invoice", event.event_id, invoice.total_minor, invoice.currency)


async def apply_payment(services: Services, agent_id: str, provider: str, event: PaymentEvent) -> None:
    """Mark it paid, tell the subscribers, and start the receipt. Each is once per paid object, however
    often the provider re-delivers (the hook event and the receipt have ids of their own)."""
    currency = event.currency.upper() if event.currency else None
    await services.payments.mark_paid(
        agent_id,
        provider,
        event.object_id,
        event.kind,
        event_id=event.event_id,
        amount_minor=event.amount_minor,
        currency=currency,
    )
    if services.hook_events is not None:
        await services.hook_events.emit(
            agent_id,
            "payment.completed",
            f"payment.completed:{provider}:{event.object_id}",
            {
                "provider": provider,
                "kind": event.kind,
                "payment_id": event.object_id,
                "amount_minor": event.amount_minor,
                "currency": currency,
                "provider_event_id": event.event_id,
            },
        )
    if not (await services.followups.get(agent_id)).payment_receipt:
        return
    if services.sync is None:
        logger.warning("payment %s: no post-call engine here to text the receipt", event.object_id)
        return
    await services.sync.send_receipt(agent_id, provider, event.object_id)
