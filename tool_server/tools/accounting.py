"""find_customer_account, create_invoice, send_invoice and get_invoice_status: what a caller owes, and invoices."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

from integrations.capabilities import AccountCustomer, CustomerDraft, Invoice, InvoiceLine, InvoiceRequest
from tool_server.errors import ErrorCode, ToolError
from tool_server.payment_log import PaymentRecord
from tool_server.spoken import said_money, spoken_day
from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.fields import DateText, Email, Phone
from tool_server.tools.messaging import record_message

__all__ = ["CREATE_INVOICE", "FIND_CUSTOMER_ACCOUNT", "GET_INVOICE_STATUS", "SEND_INVOICE"]


class InvoiceView(BaseModel):
    invoice_id: str
    number: str | None
    customer_id: str
    status: str = Field(description="'draft', 'open', 'paid' or 'void'.")
    total_minor: int
    balance_minor: int = Field(description="What is left to pay, in minor units.")
    currency: str
    due_date: str | None = Field(description="YYYY-MM-DD.")
    pay_url: str | None = Field(description="A page where the customer can pay, when the provider has one.")
    balance_spoken: str = Field(description="e.g. '$240'.")


class CustomerView(BaseModel):
    customer_id: str
    name: str
    phone: str | None
    email: str | None


def _invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView(
        invoice_id=invoice.id,
        number=invoice.number,
        customer_id=invoice.customer_id,
        status=invoice.status,
        total_minor=invoice.total_minor,
        balance_minor=invoice.balance_minor,
        currency=invoice.currency,
        due_date=invoice.due_date.isoformat() if invoice.due_date else None,
        pay_url=invoice.pay_url,
        balance_spoken=said_money(invoice.balance_minor, invoice.currency),
    )


async def _remember(ctx: ToolContext, invoice: Invoice, phone: str | None, email: str | None) -> None:
    """Keep who the invoice is for, so a verified payment webhook can thank them (and answer status)."""
    connection = ctx.providers.connection("accounting")
    if ctx.payments is None or connection is None:
        return
    await ctx.payments.expect(
        ctx.agent.id,
        connection.provider,
        invoice.id,
        "invoice",
        contact_phone=phone,
        contact_email=email,
        amount_minor=invoice.total_minor,
        currency=invoice.currency,
        snapshot=_invoice_view(invoice).model_dump(mode="json"),
        call_id=ctx.call_id,
    )


async def _known_paid(ctx: ToolContext, invoice_id: str) -> PaymentRecord | None:
    """The invoice's record, when a verified payment webhook has marked it paid."""
    connection = ctx.providers.connection("accounting")
    if ctx.payments is None or connection is None:
        return None
    record = await ctx.payments.get(ctx.agent.id, connection.provider, invoice_id)
    return record if record is not None and record.status == "paid" else None


def _customer_view(customer: AccountCustomer) -> CustomerView:
    return CustomerView(customer_id=customer.id, name=customer.name, phone=customer.phone, email=customer.email)


def _due(invoice: Invoice, today: date) -> str:
    return f", due {spoken_day(invoice.due_date, today)}" if invoice.due_date else ""


def _owed_speech(invoices: list[Invoice], today: date) -> str:
    if not invoices:
        return "You don't owe anything right now."
    if len(invoices) == 1:
        first = invoices[0]
        return f"You have one open invoice of {said_money(first.balance_minor, first.currency)}{_due(first, today)}."
    currencies = {invoice.currency for invoice in invoices}
    first = invoices[0]
    if len(currencies) == 1:
        total = said_money(sum(invoice.balance_minor for invoice in invoices), first.currency)
        first_due = _due(first, today).replace("due", "the first due")
        return f"You have {len(invoices)} open invoices, {total} in all{first_due}."
    return f"You have {len(invoices)} open invoices."


async def _match(ctx: ToolContext, phone: str | None, email: str | None) -> list[AccountCustomer]:
    """Phone first, then email (both normalized by the tool's fields): every match, never a guess."""
    books = ctx.providers.accounting()
    found = await books.find_customers(phone=phone) if phone else []
    if not found and email:
        found = await books.find_customers(email=email)
    return found


# -- find_customer_account ---------------------------------------------------------------------------


class FindCustomerAccountInput(ToolInput):
    contact_phone: Phone | None = Field(default=None, description="The caller's phone number.")
    contact_email: Email | None = Field(default=None, description="The caller's email address.")

    @model_validator(mode="after")
    def _one_of(self) -> FindCustomerAccountInput:
        if not self.contact_phone and not self.contact_email:
            raise ValueError("give contact_phone or contact_email")
        return self


class FindCustomerAccountResult(ToolResult):
    customer: CustomerView | None = Field(description="The one matching account, or null (none, or several).")
    matches: int = Field(description="How many accounts matched; more than one is never guessed between.")
    balance_minor: int = Field(description="What the customer owes now, across open invoices.")
    open_invoices: list[InvoiceView]


async def find_customer_account(ctx: ToolContext, args: FindCustomerAccountInput) -> FindCustomerAccountResult:
    found = await _match(ctx, args.contact_phone, args.contact_email)
    if len(found) != 1:
        speech = (
            "I couldn't find an account under those details."
            if not found
            else "I found more than one account with those details. What's the name on the account?"
        )
        return FindCustomerAccountResult(
            customer=None, matches=len(found), balance_minor=0, open_invoices=[], speech=speech
        )
    customer = found[0]
    invoices = await ctx.providers.accounting().open_invoices(customer.id)
    today = ctx.now.astimezone(ctx.zone).date()
    return FindCustomerAccountResult(
        customer=_customer_view(customer),
        matches=1,
        balance_minor=sum(invoice.balance_minor for invoice in invoices),
        open_invoices=[_invoice_view(invoice) for invoice in invoices],
        speech=_owed_speech(invoices, today),
    )


FIND_CUSTOMER_ACCOUNT = ToolSpec(
    name="find_customer_account",
    title="Find a customer's account",
    description=(
        "Look up the caller's account in the business's books (by phone first, then email): their open "
        "invoices (number, amount, due date) and what they owe, with a spoken summary. When several accounts "
        "match, none is chosen (matches > 1): ask for the name on the account."
    ),
    input_model=FindCustomerAccountInput,
    output_model=FindCustomerAccountResult,
    run=find_customer_account,
    capability="accounting",
    read_only=True,
    caller_phone_field="contact_phone",
    examples=[{"contact_phone": "+14155550123"}],
    wait_message="Let me pull up your account.",
)


# -- create_invoice ------------------------------------------------------------------------------------


class LineInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=200, description="What is charged for.")
    quantity: int = Field(default=1, ge=1, le=10_000)
    unit_amount: int = Field(ge=0, le=100_000_000, description="Price of one, in minor units (4900 = $49.00).")


class CreateInvoiceInput(ToolInput):
    contact_name: str | None = Field(
        default=None, max_length=200, description="The customer's name (for a new account)."
    )
    contact_phone: Phone | None = Field(default=None, description="The customer's phone number.")
    contact_email: Email | None = Field(default=None, description="The customer's email address.")
    lines: list[LineInput] = Field(min_length=1, max_length=20, description="The invoice lines.")
    currency: str = Field(
        default="USD", min_length=3, max_length=3, pattern="^[A-Za-z]{3}$", description="ISO 4217, e.g. USD."
    )
    due_date: DateText | None = Field(default=None, description="YYYY-MM-DD; the provider's terms when left out.")
    send_via: str | None = Field(
        default=None, pattern="^(email|sms)$", description="Also send it: 'email' (the provider's) or 'sms' (pay link)."
    )

    @model_validator(mode="after")
    def _someone(self) -> CreateInvoiceInput:
        if not self.contact_phone and not self.contact_email:
            raise ValueError("give contact_phone or contact_email")
        return self


class InvoiceResult(ToolResult):
    invoice: InvoiceView


async def _customer_for(ctx: ToolContext, args: CreateInvoiceInput) -> AccountCustomer:
    found = await _match(ctx, args.contact_phone, args.contact_email)
    if len(found) > 1:
        raise ToolError(
            ErrorCode.VALIDATION_ERROR,
            "more than one account matches this caller; none was chosen",
            field="contact_phone",
            speech="I found more than one account with those details, so I can't add the invoice yet.",
        )
    if found:
        return found[0]
    draft = CustomerDraft(
        name=args.contact_name or args.contact_email or args.contact_phone or "Customer",
        phone=args.contact_phone,
        email=args.contact_email,
        idempotency_key=f"{ctx.idempotency_key}:customer" if ctx.idempotency_key else None,
    )
    return await ctx.providers.accounting().create_customer(draft)


async def create_invoice(ctx: ToolContext, args: CreateInvoiceInput) -> InvoiceResult:
    due = None
    if args.due_date:
        try:
            due = date.fromisoformat(args.due_date)
        except ValueError:
            raise ToolError.invalid("due_date", "must be a date as YYYY-MM-DD") from None
    customer = await _customer_for(ctx, args)
    request = InvoiceRequest(
        customer_id=customer.id,
        lines=[
            InvoiceLine(description=line.description, quantity=line.quantity, unit_amount_minor=line.unit_amount)
            for line in args.lines
        ],
        currency=args.currency.upper(),
        due_date=due,
        idempotency_key=ctx.idempotency_key,
    )
    invoice = await ctx.providers.accounting().create_invoice(request)
    await _remember(ctx, invoice, args.contact_phone or customer.phone, args.contact_email or customer.email)
    if args.send_via:
        invoice = await _send(ctx, invoice, args.send_via, customer.email, customer.phone)
    today = ctx.now.astimezone(ctx.zone).date()
    sent = {"email": " and emailed it to you", "sms": " and texted you the link"}.get(args.send_via or "", "")
    speech = (
        f"I've created an invoice for {said_money(invoice.total_minor, invoice.currency)}{_due(invoice, today)}{sent}."
    )
    return InvoiceResult(invoice=_invoice_view(invoice), speech=speech)


CREATE_INVOICE = ToolSpec(
    name="create_invoice",
    title="Create an invoice",
    description=(
        "Invoice the caller in the business's books: their account is found by phone, then email (or created), "
        "then one invoice with the given lines (quantity × unit_amount in minor units). Optionally send it right "
        "away (send_via). Retrying never makes a second invoice. Several matching accounts are refused, never "
        "guessed."
    ),
    input_model=CreateInvoiceInput,
    output_model=InvoiceResult,
    run=create_invoice,
    capability="accounting",
    read_only=False,
    idempotent=True,
    caller_phone_field="contact_phone",
    examples=[
        {
            "contact_name": "Ann O'Brien",
            "contact_phone": "+14155550123",
            "lines": [{"description": "Boiler service", "quantity": 1, "unit_amount": 24000}],
            "due_date": "2026-12-15",
        }
    ],
    wait_message="Creating that invoice now.",
)


# -- send_invoice ------------------------------------------------------------------------------------------


async def _send(ctx: ToolContext, invoice: Invoice, via: str, email: str | None, phone: str | None) -> Invoice:
    key = f"{ctx.idempotency_key}:send" if ctx.idempotency_key else None
    if via == "email":
        return await ctx.providers.accounting().send_invoice(invoice.id, email=email, idempotency_key=key)
    if not invoice.pay_url:
        raise ToolError(
            ErrorCode.NOT_CONNECTED,
            "this invoice has no pay link to text; send it by email",
            speech="I can't text a payment link for that invoice, but I can email it to you.",
        )
    if not phone:
        raise ToolError.invalid("to", "no phone number to text the link to")
    body = (
        f"Invoice {invoice.number or ''} for {said_money(invoice.balance_minor, invoice.currency)}: {invoice.pay_url}"
    )
    message = await ctx.providers.messaging().send_sms(phone, body, idempotency_key=key)
    await record_message(ctx, "messaging", "send_invoice", message)
    return invoice


class SendInvoiceInput(ToolInput):
    invoice_id: str = Field(min_length=1, max_length=64, description="From create_invoice or find_customer_account.")
    via: str = Field(pattern="^(email|sms)$", description="'email' (the provider emails it) or 'sms' (a pay link).")
    to: Phone | None = Field(default=None, description="For sms: the number to text (default: the customer's).")
    email: Email | None = Field(default=None, description="For email: the address (default: the customer's).")


async def send_invoice(ctx: ToolContext, args: SendInvoiceInput) -> InvoiceResult:
    invoice = await ctx.providers.accounting().get_invoice(args.invoice_id)
    sent = await _send(ctx, invoice, args.via, args.email, args.to)
    await _remember(ctx, sent, args.to, args.email)
    speech = "I've emailed you the invoice." if args.via == "email" else "I've texted you a link to pay the invoice."
    return InvoiceResult(invoice=_invoice_view(sent), speech=speech)


SEND_INVOICE = ToolSpec(
    name="send_invoice",
    title="Send an invoice",
    description=(
        "Send an existing invoice again: by the provider's own email (via='email'), or its pay link by SMS "
        "(via='sms', to the caller's number). Retrying never sends twice."
    ),
    input_model=SendInvoiceInput,
    output_model=InvoiceResult,
    run=send_invoice,
    capability="accounting",
    read_only=False,
    idempotent=True,
    caller_phone_field="to",
    examples=[{"invoice_id": "inv_3f9c2a7d1e0b4c5a6d7e", "via": "sms", "to": "+14155550123"}],
    wait_message="Sending that now.",
)


# -- get_invoice_status ----------------------------------------------------------------------------------


class GetInvoiceStatusInput(ToolInput):
    invoice_id: str = Field(min_length=1, max_length=64, description="From create_invoice or find_customer_account.")


_PAID_SPEECH = "That invoice is paid in full. Thank you!"


async def get_invoice_status(ctx: ToolContext, args: GetInvoiceStatusInput) -> InvoiceResult:
    paid = await _known_paid(ctx, args.invoice_id)
    if paid is not None and paid.snapshot is not None:
        # A verified webhook said so: answered at once, with no provider round trip.
        view = InvoiceView.model_validate(paid.snapshot)
        view = view.model_copy(
            update={"status": "paid", "balance_minor": 0, "balance_spoken": said_money(0, view.currency)}
        )
        return InvoiceResult(invoice=view, speech=_PAID_SPEECH)
    invoice = await ctx.providers.accounting().get_invoice(args.invoice_id)
    if paid is not None and invoice.status in ("draft", "open"):
        # The provider's read lags its own webhook now and then; the signed notification wins.
        invoice = invoice.model_copy(update={"status": "paid", "balance_minor": 0})
    view = _invoice_view(invoice)
    today = ctx.now.astimezone(ctx.zone).date()
    speech = {
        "paid": _PAID_SPEECH,
        "void": "That invoice was cancelled; nothing is owed on it.",
        "draft": "That invoice hasn't been sent yet.",
    }.get(invoice.status, f"There's {view.balance_spoken} left to pay on that invoice{_due(invoice, today)}.")
    return InvoiceResult(invoice=view, speech=speech)


GET_INVOICE_STATUS = ToolSpec(
    name="get_invoice_status",
    title="Check an invoice",
    description="Whether an invoice is open, paid or void, and what is left to pay, with its due date.",
    input_model=GetInvoiceStatusInput,
    output_model=InvoiceResult,
    run=get_invoice_status,
    capability="accounting",
    read_only=True,
    examples=[{"invoice_id": "inv_3f9c2a7d1e0b4c5a6d7e"}],
    wait_message="Let me check that invoice.",
)
