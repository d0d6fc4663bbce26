"""send_email: one email to the caller, as text or the business's own email template."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from integrations.capabilities import EmailRequest
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Email, FlatData
from tool_server.tools.messaging import MessageView, record_message

__all__ = ["SEND_EMAIL"]


class SendEmailInput(ToolInput):
    free_text_fields = frozenset({"text"})

    to: Email = Field(description="The recipient's email address.")
    to_name: str | None = Field(default=None, max_length=200, description="The recipient's name, if known.")
    subject: str | None = Field(default=None, min_length=1, max_length=200, description="The subject line.")
    text: str | None = Field(
        default=None, min_length=1, max_length=20000, description="The message, as plain text (no markdown)."
    )
    template_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A dynamic template of the business's email provider (SendGrid's d-…), instead of subject+text.",
    )
    template_data: FlatData | None = Field(
        default=None, description="Values for the template's placeholders, e.g. {'first_name': 'Ann'}."
    )

    @model_validator(mode="after")
    def _text_or_template(self) -> SendEmailInput:
        if self.template_id is None and (self.subject is None or self.text is None):
            raise ValueError("give subject and text, or template_id (with template_data)")
        return self


class SendEmailResult(ToolResult):
    message: MessageView


async def send_email(ctx: ToolContext, args: SendEmailInput) -> SendEmailResult:
    data: dict[str, Any] = dict(args.template_data or {})
    request = EmailRequest(
        to=args.to,
        to_name=args.to_name,
        subject=args.subject,
        text=args.text,
        template_id=args.template_id,
        template_data=data,
        idempotency_key=ctx.idempotency_key,
    )
    message = await ctx.providers.email().send_email(request)
    await record_message(ctx, "email", "send_email", message)
    view = MessageView(message_id=message.id, to=message.to, status=message.status, channel="email")
    return SendEmailResult(message=view, speech="I've sent that to your email.")


SEND_EMAIL = ToolSpec(
    name="send_email",
    title="Send an email",
    description=(
        "Email the caller: a subject and plain text, or one of the business's email templates (template_id with "
        "template_data). Use it for confirmations, quotes or directions the caller asked to get in writing; spell "
        "the address back to the caller first. Retrying the same email never sends it twice. Answers "
        "NOT_CONNECTED when the business has no email provider connected."
    ),
    input_model=SendEmailInput,
    output_model=SendEmailResult,
    run=send_email,
    capability="email",
    read_only=False,
    destructive=False,
    idempotent=True,
    examples=[{"to": "jane@example.com", "subject": "Your appointment", "text": "You're booked for Monday at 10 AM."}],
    wait_message="Sending that email now.",
)
