"""What each provider folder exports: one `IntegrationSpec`, the only thing the registry needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from integrations.common.sandbox import Sandbox
from integrations.common.send_records import MemorySendRecords, SendRecords
from integrations.common.vault import CredentialVault

__all__ = [
    "CAPABILITIES",
    "Capability",
    "Checkable",
    "ConnectorEnv",
    "InboundMessageEvent",
    "IntegrationSpec",
    "InvoiceChangedEvent",
    "MessageStatusEvent",
    "OptOutEvent",
    "PaymentEvent",
    "RequestBudget",
    "SandboxConnection",
    "WebhookEvent",
    "WebhookHandler",
    "WebhookRejectedError",
    "WebhookReply",
    "WebhookRequest",
]

Capability = Literal["calendar", "crm", "payments", "messaging", "email", "team", "automation", "accounting"]
CAPABILITIES: tuple[Capability, ...] = (
    "calendar",
    "crm",
    "payments",
    "messaging",
    "email",
    "team",
    "automation",
    "accounting",
)


@dataclass(frozen=True)
class ConnectorEnv:
    """What the server hands a connector when it builds one for a connection."""

    clock: Callable[[], datetime]
    connection_id: str
    # This server's public base URL (no trailing slash), for callbacks such as Twilio's StatusCallback.
    public_url: str
    # The agent's business timezone (IANA), for providers that need one (e.g. calendar rules).
    timezone: str = "UTC"
    # The capability this connection serves, for a provider serving several (its errors name it).
    capability: Capability | None = None
    # Where sends are remembered per idempotency key: the server's database, so a retry in any
    # process finds the first attempt; process memory outside the server.
    send_records: SendRecords = field(default_factory=MemorySendRecords)


@dataclass(frozen=True)
class SandboxConnection:
    """Settings and secrets that connect a provider to its sandbox emulator at `base_url`."""

    settings: dict[str, Any]
    secrets: dict[str, str]


@runtime_checkable
class Checkable(Protocol):
    """A connector that can check its own connection (`tool-server connections test`)."""

    async def check_connection(self) -> str:
        """One short line on what was reached, e.g. "calendar primary (America/New_York)".

        Raises an `IntegrationError` when the connection does not work.
        """
        ...


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's callback as the server received it. `url` is the public URL the provider called."""

    kind: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    form: Mapping[str, str]


@dataclass(frozen=True)
class MessageStatusEvent:
    """A sent message's delivery status changed.

    `status` is the provider's word mapped to the shared ones where they differ: queued, sent,
    delivered, read, failed, undelivered (plus any other the provider has, kept as it said it).
    `error_code` is a numeric vendor code (Twilio's 63016); `error_detail` the vendor's own words
    or a non-numeric code (an SMTP reply such as "5.1.1"). `occurred_at` is when the provider says
    it happened, when it says.
    """

    provider_message_id: str
    status: str
    error_code: int | None = None
    error_detail: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class InboundMessageEvent:
    """Someone messaged the business: on WhatsApp this opens the 24-hour customer-service window.

    `phone` is E.164 without any channel prefix.
    """

    phone: str
    channel: Literal["sms", "whatsapp"]
    received_at: datetime | None = None


@dataclass(frozen=True)
class OptOutEvent:
    """A number opted out of (or back into) messages, e.g. by texting STOP or START."""

    phone: str
    opted_out: bool


@dataclass(frozen=True)
class PaymentEvent:
    """Money arrived: a payment link or an invoice was paid (the provider's webhook said so, signed).

    `object_id` is the provider's id of what was paid: the payment link (a Checkout Session for
    Stripe) or the invoice. `event_id` is the provider's own id of the notification.
    """

    object_id: str
    kind: Literal["payment_link", "invoice"]
    event_id: str
    amount_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class InvoiceChangedEvent:
    """An invoice changed at the provider, and the notification says no more than which one.

    QuickBooks and Xero notify ids only (an `Invoice` was updated); whether it is now paid is
    learnt by reading the invoice back through the connection. The server does that read and, if
    the invoice is paid, treats it exactly as a `PaymentEvent` for the invoice.
    """

    invoice_id: str
    event_id: str


WebhookEvent = MessageStatusEvent | OptOutEvent | InboundMessageEvent | PaymentEvent | InvoiceChangedEvent


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the provider."""

    status: int = 204
    body: bytes = b""
    media_type: str = "text/plain"


class WebhookRejectedError(Exception):
    """The callback failed verification (401) or is not one this provider sends (400)."""

    def __init__(self, reason: str, *, status: int = 401) -> None:
        super().__init__(reason)
        self.status = status


# (request, the connection's secrets) -> (events for the server to apply, the reply to send).
WebhookHandler = Callable[[WebhookRequest, Mapping[str, str]], tuple[list[WebhookEvent], WebhookReply]]


@dataclass(frozen=True)
class RequestBudget:
    """The provider's documented request limit for one account: `requests` per rolling `seconds`.

    The post-call workers spend a share of it per connection, counted in the database, so any
    number of workers together stay inside it and leave the rest to the live calls.
    """

    requests: int
    seconds: float
    # Where the limit is documented.
    source: str


@dataclass(frozen=True)
class IntegrationSpec:
    """A provider as the registry sees it. Each `integrations/<provider>/__init__.py` exports `SPEC`."""

    name: str
    capabilities: frozenset[Capability]
    description: str
    docs_url: str
    settings_model: type[BaseModel]
    # Secret names the connection must hold (API keys, OAuth client secret and tokens).
    required_secrets: tuple[str, ...]
    build: Callable[[BaseModel, CredentialVault, ConnectorEnv], object]
    sandbox: Callable[[], Sandbox]
    sandbox_connection: Callable[[str], SandboxConnection]
    optional_secrets: tuple[str, ...] = field(default_factory=tuple)
    auth: Literal["oauth", "api_key"] = "api_key"
    # Served at POST /webhooks/<name>/<connection_id>/<kind> when the provider calls back.
    webhook: WebhookHandler | None = None
    # The account's request limit, where the provider documents one (None: none published).
    request_budget: RequestBudget | None = None
