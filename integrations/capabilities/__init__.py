"""Capability protocols and the shared models providers map to."""

from integrations.capabilities.accounting import AccountingProvider
from integrations.capabilities.automation import AutomationProvider
from integrations.capabilities.calendar import CalendarProvider, SlotReservations
from integrations.capabilities.crm import CallActivityLog, CrmProvider
from integrations.capabilities.email import EmailProvider
from integrations.capabilities.errors import (
    BookingLinkOnlyError,
    ConfigurationError,
    IntegrationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    RecipientOptedOutError,
    SlotUnavailableError,
    UpstreamError,
)
from integrations.capabilities.messaging import MessagingProvider, WhatsAppSender
from integrations.capabilities.models import (
    AccountCustomer,
    Appointment,
    BookingRequest,
    CallActivity,
    Contact,
    ContactDraft,
    CustomerDraft,
    EmailRequest,
    Invoice,
    InvoiceLine,
    InvoiceRequest,
    LoggedCall,
    Message,
    Note,
    PaymentLink,
    PaymentLinkRequest,
    TeamMessage,
    TeamPost,
    TimeSlot,
    WhatsAppTemplate,
    WorkflowRun,
)
from integrations.capabilities.payments import PaymentsProvider
from integrations.capabilities.scheduling import BookingRules, candidate_slots, rule_violation
from integrations.capabilities.team import TeamNotifier

__all__ = [
    "AccountCustomer",
    "AccountingProvider",
    "Appointment",
    "AutomationProvider",
    "BookingLinkOnlyError",
    "BookingRequest",
    "BookingRules",
    "CalendarProvider",
    "CallActivity",
    "CallActivityLog",
    "ConfigurationError",
    "Contact",
    "ContactDraft",
    "CrmProvider",
    "CustomerDraft",
    "EmailProvider",
    "EmailRequest",
    "IntegrationError",
    "Invoice",
    "InvoiceLine",
    "InvoiceRequest",
    "LoggedCall",
    "Message",
    "MessagingProvider",
    "NotFoundError",
    "Note",
    "PaymentLink",
    "PaymentLinkRequest",
    "PaymentsProvider",
    "ProviderNotConnectedError",
    "RateLimitedError",
    "RecipientOptedOutError",
    "SlotReservations",
    "SlotUnavailableError",
    "TeamMessage",
    "TeamNotifier",
    "TeamPost",
    "TimeSlot",
    "UpstreamError",
    "WhatsAppSender",
    "WhatsAppTemplate",
    "WorkflowRun",
    "candidate_slots",
    "rule_violation",
]
