"""The tables. Every datetime is stored as UTC and read back timezone-aware."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AgentRow",
    "ApiKeyRow",
    "AppointmentRow",
    "Base",
    "CallEventRow",
    "CallRecordRow",
    "ConnectionRow",
    "ContactClaimRow",
    "ContactRow",
    "HookSubscriptionRow",
    "IdempotencyRow",
    "LedgerCustomerRow",
    "LedgerInvoiceRow",
    "MessageEventRow",
    "NoteRow",
    "OptOutRow",
    "OutboxMessageRow",
    "PaymentRow",
    "PlatformSecretRow",
    "PostCallExecutorRow",
    "PostCallSettingsRow",
    "SendRecordRow",
    "SentMessageRow",
    "SlotHoldRow",
    "SyncStepRow",
    "ToolCallRow",
    "WhatsAppSessionRow",
    "new_id",
]


def new_id(prefix: str) -> str:
    """A short random id with a readable type prefix, e.g. `apt_3kq9…`."""
    return f"{prefix}_{secrets.token_hex(10)}"


def _unique_per_agent_when_set(name: str, column: str) -> Index:
    """Unique per agent among rows where `column` is set (a partial index on both databases)."""
    when = text(f"{column} IS NOT NULL")
    return Index(name, "agent_id", column, unique=True, sqlite_where=when, postgresql_where=when)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no zones) and returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class BoundedString(TypeDecorator[str]):
    """A VARCHAR(length) that keeps the first `length` characters of a longer value.

    SQLite ignores VARCHAR lengths but PostgreSQL refuses longer values, so free-form ids from
    outside are cut here the same way on both, rather than failing only on PostgreSQL.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value[: self.length]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    phone_region: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime]
    # Bumped at the start of every built-in booking transaction: the row lock it takes
    # serializes bookings per agent on PostgreSQL and claims the write lock on SQLite.
    booking_seq: Mapped[int] = mapped_column(Integer, default=0)
    # How long hold_slot keeps a slot for a caller.
    hold_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ConnectionRow(Base):
    """A provider connected to an agent for one capability.

    Each capability has one primary connection (the live tools use it); a CRM may have
    secondary ones, which the post-call sync writes to as well.
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("agent_id", "capability", "provider", name="uq_connections_agent_capability_provider"),
        Index(
            "uq_connections_agent_primary",
            "agent_id",
            "capability",
            unique=True,
            sqlite_where=text("role = 'primary'"),
            postgresql_where=text("role = 'primary'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    capability: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The connection's secrets as one encrypted token (tool_server.secret_box); never plaintext.
    credentials: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    status_detail: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="primary", server_default="primary")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContactClaimRow(Base):
    """Who is creating the contact for one phone or email in one CRM connection, and what it became.

    Every server process and post-call worker claims the row before it looks for or creates the
    contact, so two calls from one new caller never create two contacts, whichever processes run
    them. `holder` and `held_until` are the claim (a lease, so a dead process's claim lapses);
    `contact_id` is the contact the identity resolved to, kept for the next claimant.
    """

    __tablename__ = "contact_claims"

    connection_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    identity: Mapped[str] = mapped_column(String(340), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(40))
    held_until: Mapped[datetime | None]
    contact_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class AppointmentRow(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_agent_start", "agent_id", "start_at"),
        Index("ix_appointments_agent_phone", "agent_id", "attendee_phone"),
        Index("ix_appointments_agent_email", "agent_id", "attendee_email"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    attendee_name: Mapped[str | None] = mapped_column(String(200))
    attendee_phone: Mapped[str | None] = mapped_column(String(32))
    attendee_email: Mapped[str | None] = mapped_column(String(320))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SlotHoldRow(Base):
    """A slot kept for one caller: a hold (hold_slot, minutes) or a booking in flight (seconds).

    Active while `released_at` is unset and `expires_at` is ahead. Rows are written only inside
    the agent's booking lock, so two active rows of different callers never overlap, whichever
    server process wrote them.
    """

    __tablename__ = "slot_holds"
    __table_args__ = (Index("ix_slot_holds_agent_start", "agent_id", "start_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    call_id: Mapped[str | None] = mapped_column(String(255))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    reservation_id: Mapped[str | None] = mapped_column(String(255))
    appointment_id: Mapped[str | None] = mapped_column(String(255))
    released_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ContactRow(Base):
    __tablename__ = "contacts"
    # Partial unique indexes make "one contact per phone, one per email" hold under concurrency.
    __table_args__ = (
        _unique_per_agent_when_set("uq_contacts_agent_phone", "phone"),
        _unique_per_agent_when_set("uq_contacts_agent_email", "email"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NoteRow(Base):
    __tablename__ = "notes"
    __table_args__ = (
        # A note written again under the same key (a retried or resumed write) is the same note.
        _unique_per_agent_when_set("uq_notes_agent_idempotency", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class OutboxMessageRow(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (_unique_per_agent_when_set("uq_outbox_agent_idempotency", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    # A phone for texts, an address for email, a channel for team posts, an event for automations.
    to_number: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


class SentMessageRow(Base):
    """A message a provider accepted, kept so delivery callbacks can update it."""

    __tablename__ = "sent_messages"
    __table_args__ = (UniqueConstraint("provider", "provider_message_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[str | None] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(64))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    # E.164 for texts, the address for email.
    to_number: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What caused it: the tool, the voice platform's call id, and the call record for post-call sends.
    tool: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(255))
    record_id: Mapped[str | None] = mapped_column(String(40))
    error_detail: Mapped[str | None] = mapped_column(String(255))


class MessageEventRow(Base):
    """One step of a message's delivery history (queued, sent, delivered, failed…), in arrival order."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("sent_messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_detail: Mapped[str | None] = mapped_column(String(255))
    # When the provider says it happened (when it says), and when we heard.
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime]


class WhatsAppSessionRow(Base):
    """The caller's last inbound WhatsApp message: it opens the 24-hour customer-service window."""

    __tablename__ = "whatsapp_sessions"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_inbound_at: Mapped[datetime]


class HookSubscriptionRow(Base):
    """A REST-hook subscriber (Zapier, Make, n8n): `event` is POSTed to the sealed `target_url`, signed."""

    __tablename__ = "hook_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    # Sealed like connection secrets: a hook URL is a credential.
    target_url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class OptOutRow(Base):
    """A number that texted STOP to one of the agent's senders: nothing may be sent to it."""

    __tablename__ = "sms_opt_outs"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    opted_out_at: Mapped[datetime]


class PlatformSecretRow(Base):
    """A voice platform's signing secret for one agent, sealed like connection credentials."""

    __tablename__ = "platform_secrets"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CallRecordRow(Base):
    """One finished call, normalized from whichever platform reported it."""

    __tablename__ = "call_records"
    __table_args__ = (UniqueConstraint("agent_id", "platform", "call_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[str] = mapped_column(String(128))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    payloads: Mapped[dict[str, Any]] = mapped_column(JSON)
    sync_status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CallEventRow(Base):
    """A delivered call event; the unique index turns a replayed delivery into a no-op."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("agent_id", "platform", "call_id", "event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]


class SyncStepRow(Base):
    """One integration's post-call work for one call: its status, attempts and last error."""

    __tablename__ = "sync_steps"
    __table_args__ = (UniqueConstraint("record_id", "job"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(String(40))
    job: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    workflow_id: Mapped[str | None] = mapped_column(String(160))
    retries: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class PostCallSettingsRow(Base):
    """Which post-call follow-ups an agent turned on, and their settings."""

    __tablename__ = "postcall_settings"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class IdempotencyRow(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("agent_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # A running claim older than this is presumed abandoned (its process died) and may be taken over.
    stale_after: Mapped[datetime]


class ToolCallRow(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (Index("ix_tool_calls_agent_created", "agent_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(40))
    # Transports accept call ids up to 255 characters; one longer than the column made PostgreSQL
    # refuse the whole audit batch it was in.
    call_id: Mapped[str | None] = mapped_column(BoundedString(128), index=True)
    tool: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str] = mapped_column(String(32))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32))
    latency_ms: Mapped[float] = mapped_column(Float)
    replayed: Mapped[bool] = mapped_column(Boolean, default=False)
    # A write's result, redacted: what the post-call sync links (bookings, contacts, links, texts).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]


class LedgerCustomerRow(Base):
    """A customer of the built-in ledger (the accounting capability without an accounting product)."""

    __tablename__ = "ledger_customers"
    __table_args__ = (_unique_per_agent_when_set("uq_ledger_customers_agent_idempotency", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class LedgerInvoiceRow(Base):
    """An invoice of the built-in ledger; `paid_minor` of `total_minor` is paid."""

    __tablename__ = "ledger_invoices"
    __table_args__ = (_unique_per_agent_when_set("uq_ledger_invoices_agent_idempotency", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("ledger_customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    total_minor: Mapped[int] = mapped_column(Integer)
    paid_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[str | None] = mapped_column(String(10))
    lines: Mapped[dict[str, Any]]
    memo: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class PaymentRow(Base):
    """A payment link or invoice this server made or heard paid: who to thank, and whether money arrived.

    `status` turns `paid` only on a verified provider webhook. `snapshot` is the tool's last view of
    the object, so a status question after payment needs no provider round trip.
    """

    __tablename__ = "payments"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    amount_minor: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    snapshot: Mapped[dict[str, Any] | None]
    call_id: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]


class PostCallExecutorRow(Base):
    """One post-call executor's heartbeat, so a live worker can take over the workflows of a dead one.

    `state` is `alive` while the executor heartbeats (`last_seen_ms`, its own clock in epoch
    milliseconds), `taking` while `taken_by` recovers its workflows, and `taken` once they are
    back on their queues. Every change is a compare-and-set on (`state`, `last_seen_ms`,
    `taken_by`), so one taker wins and a worker restarted with the same id waits for it.
    """

    __tablename__ = "postcall_executors"

    executor_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    taken_by: Mapped[str | None] = mapped_column(String(255))
    taken_at_ms: Mapped[int | None] = mapped_column(BigInteger)


class SendRecordRow(Base):
    """A connector's record of a send under one idempotency key, or of which key a vendor object is.

    Texts, mails, posts and hooks have no vendor-side idempotency key, so each connection keeps
    here what it sent under each key (`name` = "key:…") and which key each message it adopted
    belongs to (`name` = "object:…"), where any server process or post-call worker that retries
    the send finds it. `record` is the connector's own JSON.
    """

    __tablename__ = "send_records"

    connection_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(index=True)
