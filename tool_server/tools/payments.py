"""create_payment_link."""

from __future__ import annotations

from pydantic import BaseModel, Field

from integrations.capabilities import PaymentLinkRequest
from tool_server.spoken import spoken_money
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Email, Phone

__all__ = ["CREATE_PAYMENT_LINK"]


class CreatePaymentLinkInput(ToolInput):
    amount_minor: int = Field(
        gt=0, le=100_000_000, description="Amount in the currency's minor units: 4900 means $49.00."
    )
    currency: str = Field(default="USD", pattern="^[A-Za-z]{3}$", description="ISO 4217 code.")
    description: str = Field(min_length=1, max_length=250, description="What the payment is for.")
    customer_name: str | None = Field(default=None, max_length=200, description="Who is paying, as they said it.")
    customer_phone: Phone | None = None
    customer_email: Email | None = None


class PaymentLinkView(BaseModel):
    payment_link_id: str
    url: str
    amount_minor: int
    currency: str
    amount_spoken: str = Field(description="e.g. '$49.00'.")
    description: str
    status: str


class CreatePaymentLinkResult(ToolResult):
    payment_link: PaymentLinkView


async def create_payment_link(ctx: ToolContext, args: CreatePaymentLinkInput) -> CreatePaymentLinkResult:
    payments = ctx.providers.payments()
    link = await payments.create_payment_link(
        PaymentLinkRequest(
            amount_minor=args.amount_minor,
            currency=args.currency.upper(),
            description=args.description,
            customer_name=args.customer_name,
            customer_phone=args.customer_phone,
            customer_email=args.customer_email,
            idempotency_key=ctx.idempotency_key,
        )
    )
    amount = spoken_money(link.amount_minor, link.currency)
    return CreatePaymentLinkResult(
        payment_link=PaymentLinkView(
            payment_link_id=link.id,
            url=link.url,
            amount_minor=link.amount_minor,
            currency=link.currency,
            amount_spoken=amount,
            description=link.description,
            status=link.status,
        ),
        speech=f"I've created a payment link for {amount}.",
    )


CREATE_PAYMENT_LINK = ToolSpec(
    name="create_payment_link",
    title="Create a payment link",
    description=(
        "Create a hosted payment link for an amount. Send it to the caller with send_sms. "
        "Answers NOT_CONNECTED when the business has no payment provider connected."
    ),
    input_model=CreatePaymentLinkInput,
    output_model=CreatePaymentLinkResult,
    run=create_payment_link,
    capability="payments",
    read_only=False,
    destructive=False,
    idempotent=True,
    caller_phone_field="customer_phone",
    examples=[{"amount_minor": 4900, "currency": "USD", "description": "Consultation deposit"}],
)
