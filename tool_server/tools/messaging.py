"""send_sms and send_whatsapp: texts to a caller, with the business's opt-out list and WhatsApp's 24-hour window."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field, model_validator

from integrations.capabilities import Message, RecipientOptedOutError, WhatsAppTemplate
from tool_server.errors import ErrorCode, ToolError
from tool_server.message_log import MessageOrigin
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Phone, TemplateVariables

__all__ = ["SEND_SMS", "SEND_WHATSAPP", "MessageView", "record_message"]


class SendSmsInput(ToolInput):
    free_text_fields = frozenset({"body"})

    to: Phone = Field(description="The recipient's phone number.")
    body: str = Field(min_length=1, max_length=1600, description="The text to send; plain text, no markdown.")


class MessageView(BaseModel):
    message_id: str = Field(description="The provider's message id; GET /v1/messages/{id} shows its delivery.")
    to: str = Field(description="E.164 for texts, the address for email.")
    status: str = Field(description="Provider status, e.g. 'queued', 'sent' or 'recorded' (outbox).")
    channel: str = Field(default="sms", description="sms, whatsapp or email.")


class SendSmsResult(ToolResult):
    message: MessageView


def _opted_out(to: str) -> ToolError:
    return ToolError(ErrorCode.OPTED_OUT, f"the number ending in {to[-2:]} opted out of text messages (replied STOP)")


async def record_message(ctx: ToolContext, capability: str, tool: str, message: Message) -> None:
    """Keep what a provider accepted, with the call that caused it, so delivery callbacks can update it."""
    if ctx.messages is None:
        return
    connection = ctx.providers.connection(capability)  # type: ignore[arg-type]
    origin = MessageOrigin(tool=tool, call_id=ctx.call_id, record_id=ctx.record_id)
    await ctx.messages.record_sent(ctx.agent.id, connection.id if connection else None, message, origin)


async def _send_text(ctx: ToolContext, to: str, tool: str, send: Callable[[], Awaitable[Message]]) -> Message:
    """Send one text under the business's opt-out list (checked before any provider call, whatever sends)."""
    if ctx.messages is not None and await ctx.messages.is_opted_out(ctx.agent.id, to):
        raise _opted_out(to)
    try:
        message = await send()
    except RecipientOptedOutError:
        if ctx.messages is not None:
            await ctx.messages.set_opt_out(ctx.agent.id, to, True)
        raise _opted_out(to) from None
    await record_message(ctx, "messaging", tool, message)
    return message


def _view(message: Message) -> MessageView:
    return MessageView(message_id=message.id, to=message.to, status=message.status, channel=message.channel)


async def send_sms(ctx: ToolContext, args: SendSmsInput) -> SendSmsResult:
    messaging = ctx.providers.messaging()
    message = await _send_text(
        ctx,
        args.to,
        "send_sms",
        lambda: messaging.send_sms(
            args.to, args.body, idempotency_key=ctx.idempotency_key, earlier_attempt_at=ctx.earlier_attempt_at
        ),
    )
    return SendSmsResult(message=_view(message), speech=f"I've sent a text to the number ending in {message.to[-2:]}.")


SEND_SMS = ToolSpec(
    name="send_sms",
    title="Send a text message",
    description=(
        "Send an SMS to the caller, e.g. a confirmation or a payment link. Retrying the same message never "
        "sends it twice. Answers OPTED_OUT when the number replied STOP, and NOT_CONNECTED when the business "
        "has no messaging provider connected."
    ),
    input_model=SendSmsInput,
    output_model=SendSmsResult,
    run=send_sms,
    capability="messaging",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="to",
    examples=[{"to": "+12125550142", "body": "You're booked for Mon Mar 9 at 10:00 AM. Reply STOP to opt out."}],
    wait_message="Sending that text now.",
)


class SendWhatsAppInput(ToolInput):
    free_text_fields = frozenset({"body"})

    to: Phone = Field(description="The recipient's phone number (their WhatsApp number).")
    body: str | None = Field(
        default=None,
        min_length=1,
        max_length=1600,
        description="Free text. WhatsApp allows it only within 24 hours of the person's last WhatsApp message.",
    )
    template: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The name of an approved template (allowed at any time), e.g. 'booking_confirmation'.",
    )
    variables: TemplateVariables = Field(
        default=None, description="The template's placeholders by position, e.g. {'1': 'Ann', '2': 'Mon 10 AM'}."
    )

    @model_validator(mode="after")
    def _something_to_send(self) -> SendWhatsAppInput:
        if self.body is None and self.template is None:
            raise ValueError("give body (free text) or template (an approved template's name)")
        return self


class SendWhatsAppResult(ToolResult):
    message: MessageView
    sent_as: str = Field(description="'text' (free text inside the 24-hour window) or 'template'.")


def _window_closed(to: str, templates: list[str]) -> ToolError:
    named = f" Approved templates: {', '.join(templates)}." if templates else ""
    return ToolError(
        ErrorCode.WHATSAPP_WINDOW_CLOSED,
        f"the number ending in {to[-2:]} has not messaged on WhatsApp in the last 24 hours, so WhatsApp allows "
        f"only an approved template; call again with template (and variables), or use send_sms.{named}",
        details={"templates": templates},
    )


async def send_whatsapp(ctx: ToolContext, args: SendWhatsAppInput) -> SendWhatsAppResult:
    sender = ctx.providers.whatsapp()
    window_open = ctx.messages is not None and await ctx.messages.whatsapp_window_open(ctx.agent.id, args.to, ctx.now)
    # Free text where WhatsApp allows it; otherwise the template, when one was named.
    use_text = args.body is not None and (window_open or args.template is None)
    if use_text and not window_open:
        raise _window_closed(args.to, sender.whatsapp_templates())
    template = None if use_text else WhatsAppTemplate(name=args.template or "", variables=dict(args.variables or {}))
    message = await _send_text(
        ctx,
        args.to,
        "send_whatsapp",
        lambda: sender.send_whatsapp(
            args.to,
            body=args.body if use_text else None,
            template=template,
            idempotency_key=ctx.idempotency_key,
            earlier_attempt_at=ctx.earlier_attempt_at,
        ),
    )
    return SendWhatsAppResult(
        message=_view(message),
        sent_as="text" if use_text else "template",
        speech=f"I've sent a WhatsApp message to the number ending in {message.to[-2:]}.",
    )


SEND_WHATSAPP = ToolSpec(
    name="send_whatsapp",
    title="Send a WhatsApp message",
    description=(
        "Send a WhatsApp message to the caller. Free text (body) goes only within 24 hours of the caller's last "
        "WhatsApp message; otherwise name an approved template (template + variables), which WhatsApp allows at "
        "any time. Give both to let the server pick: the text inside the window, the template outside it. "
        "Answers WHATSAPP_WINDOW_CLOSED when only free text was given outside the window (details.templates "
        "lists the approved ones), OPTED_OUT when the number replied STOP on WhatsApp or SMS, NOT_CONNECTED when "
        "the messaging provider has no WhatsApp sender. Retrying the same message never sends it twice."
    ),
    input_model=SendWhatsAppInput,
    output_model=SendWhatsAppResult,
    run=send_whatsapp,
    capability="messaging",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="to",
    examples=[
        {"to": "+447911123456", "body": "Here's the address: 12 High St. See you at 3 PM."},
        {"to": "+447911123456", "template": "booking_confirmation", "variables": {"1": "Ann", "2": "Mon 3 PM"}},
    ],
    wait_message="Sending that on WhatsApp now.",
)
