"""send_sms."""

from __future__ import annotations

from pydantic import BaseModel, Field

from integrations.capabilities import RecipientOptedOutError
from tool_server.errors import ErrorCode, ToolError
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Phone

__all__ = ["SEND_SMS"]


class SendSmsInput(ToolInput):
    free_text_fields = frozenset({"body"})

    to: Phone = Field(description="The recipient's phone number.")
    body: str = Field(min_length=1, max_length=1600, description="The text to send; plain text, no markdown.")


class MessageView(BaseModel):
    message_id: str
    to: str = Field(description="E.164.")
    status: str = Field(description="Provider status, e.g. 'queued', 'sent' or 'recorded' (outbox).")


class SendSmsResult(ToolResult):
    message: MessageView


def _opted_out(to: str) -> ToolError:
    return ToolError(ErrorCode.OPTED_OUT, f"the number ending in {to[-2:]} opted out of text messages (replied STOP)")


async def send_sms(ctx: ToolContext, args: SendSmsInput) -> SendSmsResult:
    messaging = ctx.providers.messaging()
    # The opt-out list is the business's, whatever provider sends: check it before any provider call.
    if ctx.messages is not None and await ctx.messages.is_opted_out(ctx.agent.id, args.to):
        raise _opted_out(args.to)
    try:
        message = await messaging.send_sms(
            args.to, args.body, idempotency_key=ctx.idempotency_key, earlier_attempt_at=ctx.earlier_attempt_at
        )
    except RecipientOptedOutError:
        if ctx.messages is not None:
            await ctx.messages.set_opt_out(ctx.agent.id, args.to, True)
        raise _opted_out(args.to) from None
    if ctx.messages is not None:
        connection = ctx.providers.connection("messaging")
        await ctx.messages.record_sent(ctx.agent.id, connection.id if connection else None, message)
    return SendSmsResult(
        message=MessageView(message_id=message.id, to=message.to, status=message.status),
        speech=f"I've sent a text to the number ending in {message.to[-2:]}.",
    )


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
