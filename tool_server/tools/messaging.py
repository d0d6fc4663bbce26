"""send_sms."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Phone

__all__ = ["SEND_SMS"]


class SendSmsInput(ToolInput):
    to: Phone = Field(description="The recipient's phone number.")
    body: str = Field(min_length=1, max_length=1600, description="The text to send; plain text, no markdown.")


class MessageView(BaseModel):
    message_id: str
    to: str = Field(description="E.164.")
    status: str = Field(description="Provider status, e.g. 'queued', 'sent' or 'recorded' (outbox).")


class SendSmsResult(ToolResult):
    message: MessageView


async def send_sms(ctx: ToolContext, args: SendSmsInput) -> SendSmsResult:
    message = await ctx.providers.messaging().send_sms(args.to, args.body, idempotency_key=ctx.idempotency_key)
    return SendSmsResult(
        message=MessageView(message_id=message.id, to=message.to, status=message.status),
        speech=f"I've sent a text to the number ending in {message.to[-2:]}.",
    )


SEND_SMS = ToolSpec(
    name="send_sms",
    title="Send a text message",
    description=(
        "Send an SMS to the caller, e.g. a confirmation or a payment link. Retrying the same message never "
        "sends it twice. Answers NOT_CONNECTED when the business has no messaging provider connected."
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
)
