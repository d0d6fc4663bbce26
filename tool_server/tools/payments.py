"""create_payment_link."""

from __future__ import annotations

from pydantic import BaseModel, Field

from integrations.capabilities import PaymentLink, PaymentLinkRequest
from tool_server.spoken import spoken_money
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import Email, Phone

__all__ = ["CREATE_PAYMENT_LINK", "GET_PAYMENT_STATUS"]


class CreatePaymentLinkInput(ToolInput):
    free_text_fields = frozenset({"description"})

    amount_minor: int = Field(
        gt=0, le=100_000_000, description="Amount in the currency's minor units: 4900 means $49.00."
    )
    currency: str = Field(default="USD", max_length=3, pattern="^[A-Za-z]{3}$", description="ISO 4217 code.")
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
    status: str = Field(description="'open', 'paid' or 'expired'.")


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
    view = _view(link)
    connection = ctx.providers.connection("payments")
    if ctx.payments is not None and connection is not None:
        # Who the link is for, so a verified payment webhook can text them a receipt.
        await ctx.payments.expect(
            ctx.agent.id,
            connection.provider,
            link.id,
            "payment_link",
            contact_phone=args.customer_phone,
            contact_email=args.customer_email,
            amount_minor=link.amount_minor,
            currency=link.currency,
            snapshot=view.model_dump(mode="json"),
            call_id=ctx.call_id,
        )
    return CreatePaymentLinkResult(payment_link=view, speech=f"I've created a payment link for {view.amount_spoken}.")


class GetPaymentStatusInput(ToolInput):
    payment_link_id: str = Field(min_length=1, max_length=255, description="Id from create_payment_link.")


async def get_payment_status(ctx: ToolContext, args: GetPaymentStatusInput) -> CreatePaymentLinkResult:
    connection = ctx.providers.connection("payments")
    known = None
    if ctx.payments is not None and connection is not None:
        known = await ctx.payments.get(ctx.agent.id, connection.provider, args.payment_link_id)
    if known is not None and known.status == "paid" and known.snapshot is not None:
        # A verified webhook said so: answered at once, with no provider round trip.
        view = PaymentLinkView.model_validate({**known.snapshot, "status": "paid"})
        return CreatePaymentLinkResult(
            payment_link=view, speech=f"Thank you, your payment of {view.amount_spoken} has come through."
        )
    link = await ctx.providers.payments().payment_status(args.payment_link_id)
    if known is not None and known.status == "paid" and link.status == "open":
        link = link.model_copy(update={"status": "paid"})
    view = _view(link)
    speech = {
        "paid": f"Thank you, your payment of {view.amount_spoken} has come through.",
        "expired": f"That payment link for {view.amount_spoken} has expired. I can send you a new one.",
    }.get(link.status, f"I don't see the payment of {view.amount_spoken} yet.")
    return CreatePaymentLinkResult(payment_link=view, speech=speech)


def _view(link: PaymentLink) -> PaymentLinkView:
    return PaymentLinkView(
        payment_link_id=link.id,
        url=link.url,
        amount_minor=link.amount_minor,
        currency=link.currency,
        amount_spoken=spoken_money(link.amount_minor, link.currency),
        description=link.description,
        status=link.status,
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
    wait_message="I'm setting up that payment link now.",
)

GET_PAYMENT_STATUS = ToolSpec(
    name="get_payment_status",
    title="Check a payment",
    description=(
        "Whether a payment link from create_payment_link has been paid: status is 'open', 'paid' or 'expired'. "
        "Use it when the caller says they have paid."
    ),
    input_model=GetPaymentStatusInput,
    output_model=CreatePaymentLinkResult,
    run=get_payment_status,
    capability="payments",
    read_only=True,
    idempotent=True,
    examples=[{"payment_link_id": "cs_test_a1b2c3"}],
)
