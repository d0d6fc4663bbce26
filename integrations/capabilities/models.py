"""Shared models every provider maps its own payloads to.

Each normalized model keeps `provider` and the provider's raw payload, so that nothing the
vendor returned is lost on the way through the tool server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "AccountCustomer",
    "Appointment",
    "AppointmentStatus",
    "BookingRequest",
    "Contact",
    "ContactDraft",
    "CustomerDraft",
    "EmailRequest",
    "Invoice",
    "InvoiceLine",
    "InvoiceRequest",
    "InvoiceStatus",
    "Message",
    "Note",
    "PaymentLink",
    "PaymentLinkRequest",
    "TeamMessage",
    "TeamPost",
    "TimeSlot",
    "WhatsAppTemplate",
    "WorkflowRun",
    "elapsed",
]


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two aware instants.

    Python subtracts datetimes that share one tzinfo on the wall clock, which is an hour off
    across a DST change; going through UTC gives the real duration.
    """
    return end.astimezone(UTC) - start.astimezone(UTC)


class _Shared(BaseModel):
    model_config = ConfigDict(frozen=True)


class TimeSlot(_Shared):
    """A bookable interval. Both ends are timezone-aware; `end` is exclusive."""

    start: AwareDatetime
    end: AwareDatetime

    @property
    def duration(self) -> timedelta:
        return elapsed(self.start, self.end)


AppointmentStatus = Literal["booked", "cancelled"]


class Appointment(_Shared):
    """An appointment as any calendar provider reports it."""

    id: str
    start: AwareDatetime
    end: AwareDatetime
    status: AppointmentStatus
    attendee_name: str | None = None
    attendee_phone: str | None = None
    attendee_email: str | None = None
    notes: str | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class BookingRequest(_Shared):
    """What a caller asks a calendar to book.

    `idempotency_key` lets providers that support it (client-chosen event ids, extended
    properties, Idempotency-Key headers) make a retried booking land on the same record.
    """

    start: AwareDatetime
    end: AwareDatetime
    attendee_name: str
    attendee_phone: str | None = None
    attendee_email: str | None = None
    # Where the work happens, as the caller said it (field-service calendars book jobs there).
    attendee_address: str | None = None
    notes: str | None = None
    idempotency_key: str | None = None


class Contact(_Shared):
    """A person in a CRM or contact book. Phones are E.164, emails lower-cased."""

    id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    created_at: datetime | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class ContactDraft(_Shared):
    """The fields a caller can give for a new contact, or to fill in an existing one."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None


class Note(_Shared):
    """A free-text note attached to a contact."""

    id: str
    contact_id: str
    body: str
    created_at: datetime
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class CallActivity(_Shared):
    """A finished phone call, to log on a contact's timeline where the CRM has call activities."""

    title: str
    body: str = Field(description="What happened: outcome, summary, the tools used.")
    started_at: AwareDatetime
    duration_seconds: float | None = None
    direction: Literal["inbound", "outbound"] | None = None
    caller_phone: str | None = None
    recording_url: str | None = None


class LoggedCall(_Shared):
    """A call activity as the CRM stored it."""

    id: str
    contact_id: str
    provider: str
    created: bool = Field(description="False when the same call was already on the contact's timeline.")
    raw: dict[str, Any] = Field(default_factory=dict)


class PaymentLinkRequest(_Shared):
    """A request for a hosted payment page. Money is integer minor units plus ISO currency."""

    amount_minor: int = Field(gt=0)
    currency: str = Field(min_length=3, max_length=3)
    description: str
    customer_name: str | None = None
    customer_phone: str | None = None
    customer_email: str | None = None
    idempotency_key: str | None = None


class PaymentLink(_Shared):
    """A hosted payment page the caller can open. `status` is "open", "paid" or "expired"."""

    id: str
    url: str
    amount_minor: int
    currency: str
    description: str
    status: str
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class Message(_Shared):
    """A message handed to a provider: a text (SMS or WhatsApp) to a phone, or an email to an address.

    `to` is E.164 for texts and an email address for email. `body` is what was sent: the text,
    or for a template the template's name and variables as the provider was given them.
    """

    id: str
    to: str
    body: str
    channel: Literal["sms", "whatsapp", "email"] = "sms"
    status: str
    created_at: datetime
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class WhatsAppTemplate(_Shared):
    """An approved WhatsApp template to send (the only thing allowed outside the 24-hour window).

    `name` is the template's name in the connection's settings; the connector resolves it to the
    provider's id (Twilio's `ContentSid`, HX…). `variables` fill its placeholders by position:
    `{"1": "Ann", "2": "Mon 10 AM"}`.
    """

    name: str = Field(min_length=1, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict)


class EmailRequest(_Shared):
    """One email: plain text with a subject, or a provider-side dynamic template filled with `template_data`."""

    to: str
    to_name: str | None = None
    subject: str | None = None
    text: str | None = None
    template_id: str | None = None
    template_data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None


class TeamMessage(_Shared):
    """A short message for the business's team channel, in vendor-neutral parts.

    `text` is the whole message as plain text (also the notification fallback); `title` and
    `fields` (label -> value, in order) let a provider lay it out (Slack renders Block Kit).
    """

    text: str
    title: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = None


class TeamPost(_Shared):
    """A message posted to the team channel. `id` is the provider's id (Slack's `ts`)."""

    id: str
    channel: str
    text: str
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class WorkflowRun(_Shared):
    """An automation accepted an event (Zapier's catch hook answered 2xx). `id` is its id, if it gave one."""

    id: str
    event: str
    status: str
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class AccountCustomer(_Shared):
    """A customer in the books. `balance_minor` is what they owe now (0 when nothing), in `currency`."""

    id: str
    name: str
    phone: str | None = None
    email: str | None = None
    balance_minor: int = 0
    currency: str = "USD"
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)


class CustomerDraft(_Shared):
    """A customer to create; phone in E.164, email lower-cased."""

    name: str
    phone: str | None = None
    email: str | None = None
    idempotency_key: str | None = None


InvoiceStatus = Literal["draft", "open", "paid", "void"]


class InvoiceLine(_Shared):
    """One line: `quantity` × `unit_amount_minor`."""

    description: str
    quantity: int = Field(ge=1)
    unit_amount_minor: int = Field(ge=0)


class InvoiceRequest(_Shared):
    """An invoice to create for `customer_id`, due on `due_date` (the provider's default terms when None)."""

    customer_id: str
    lines: list[InvoiceLine] = Field(min_length=1)
    currency: str = Field(min_length=3, max_length=3)
    due_date: date | None = None
    memo: str | None = None
    idempotency_key: str | None = None


class Invoice(_Shared):
    """An invoice as it stands. `balance_minor` is what is left to pay; `pay_url` a page the customer can pay on."""

    id: str
    number: str | None = None
    customer_id: str
    status: InvoiceStatus
    total_minor: int
    balance_minor: int
    currency: str
    due_date: date | None = None
    pay_url: str | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict)
