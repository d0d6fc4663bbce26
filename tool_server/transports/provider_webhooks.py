"""Provider callbacks (delivery receipts, inbound texts, STOP, payments).

Served at POST /webhooks/{provider}/{connection_id}/{kind}.

The integration verifies the request (signature on the raw body, against the connection's
secrets) and turns it into vendor-neutral events; this route applies them: a delivery update
joins the message's history (and a failed WhatsApp follow-up falls back to SMS), an inbound
WhatsApp message opens the caller's 24-hour window, STOP and START change the opt-out list for
every channel, a verified payment marks its link or invoice paid (an invoice a notification only
names is read back first). Nothing here knows a vendor.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from integrations.common.spec import (
    InboundMessageEvent,
    InvoiceChangedEvent,
    MessageStatusEvent,
    OptOutEvent,
    PaymentEvent,
    WebhookRejectedError,
    WebhookRequest,
)
from tool_server.dispatch.translate import from_exception
from tool_server.errors import ErrorCode, ToolError
from tool_server.payments_received import apply_payment, paid_invoice
from tool_server.services import Services
from tool_server.transports.http_errors import error_response

__all__ = ["build_webhooks_router"]

logger = logging.getLogger(__name__)


def build_webhooks_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])

    @router.post("/{provider}/{connection_id}/{kind}", summary="A provider's callback for one connection")
    async def receive(provider: str, connection_id: str, kind: str, request: Request) -> Response:
        spec = services.providers.specs.get(provider)
        integration = spec.integration if spec is not None else None
        if integration is None or len(connection_id) > 64 or len(kind) > 32:
            # Refused before any query: no connection id or callback kind is that long.
            return error_response(ToolError(ErrorCode.NOT_FOUND, "no such webhook").info())
        stored = await services.agents.connection(connection_id)
        handler = integration.webhook if integration is not None else None
        if handler is None or stored is None or stored.connection.provider != provider:
            return error_response(ToolError(ErrorCode.NOT_FOUND, "no such webhook").info())
        body = await request.body()
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {key: str(value) for key, value in (await request.form()).items()}
        # Providers sign the public URL they called, which a proxy in front may have rewritten.
        url = services.settings.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        incoming = WebhookRequest(kind=kind, url=url, headers=dict(request.headers), body=body, form=form)
        secrets = await services.agents.connection_secrets(connection_id)
        try:
            events, reply = handler(incoming, secrets)
        except WebhookRejectedError as rejected:
            logger.warning("rejected %s webhook for %s: %s", provider, connection_id, rejected)
            if rejected.status == 400:
                return error_response(ToolError.invalid("body", f"not a {provider} {kind} callback").info())
            return error_response(ToolError(ErrorCode.UNAUTHORIZED, "webhook verification failed").info())
        for event in events:
            if isinstance(event, MessageStatusEvent):
                change = await services.messages.update_status(
                    provider,
                    event.provider_message_id,
                    event.status,
                    event.error_code,
                    event.error_detail,
                    event.occurred_at,
                )
                if change is not None and change.newly_failed and change.channel == "whatsapp":
                    await _fall_back(services, change.message_id)
            elif isinstance(event, OptOutEvent):
                await services.messages.set_opt_out(stored.agent_id, event.phone, event.opted_out)
            elif isinstance(event, InboundMessageEvent):
                await services.messages.record_inbound(stored.agent_id, event.phone, event.channel, event.received_at)
            elif isinstance(event, PaymentEvent):
                await apply_payment(services, stored.agent_id, provider, event)
            elif isinstance(event, InvoiceChangedEvent):
                try:
                    paid = await paid_invoice(services, stored.agent_id, connection_id, event)
                except Exception as error:
                    # Answered 503 so the provider delivers it again; nothing was marked.
                    logger.warning("%s invoice %s could not be read back: %r", provider, event.invoice_id, error)
                    return error_response(from_exception(error, f"{provider} invoice read-back").info())
                if paid is not None:
                    await apply_payment(services, stored.agent_id, provider, paid)
        return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type)

    return router


async def _fall_back(services: Services, message_id: str) -> None:
    """A WhatsApp follow-up failed (63016, say): its call texts the caller by SMS instead, once."""
    if services.sync is None:
        logger.warning("WhatsApp message %s failed; no post-call engine here to fall back to SMS", message_id)
        return
    await services.sync.fall_back_to_sms(message_id)
