"""Capability protocols and the shared models providers map to."""

from integrations.capabilities.calendar import CalendarProvider, SlotReservations
from integrations.capabilities.crm import CallActivityLog, CrmProvider
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
from integrations.capabilities.messaging import MessagingProvider
from integrations.capabilities.models import (
    Appointment,
    BookingRequest,
    CallActivity,
    Contact,
    ContactDraft,
    LoggedCall,
    Message,
    Note,
    PaymentLink,
    PaymentLinkRequest,
    TimeSlot,
)
from integrations.capabilities.payments import PaymentsProvider
from integrations.capabilities.scheduling import BookingRules, candidate_slots, rule_violation

__all__ = [
    "Appointment",
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
    "IntegrationError",
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
    "TimeSlot",
    "UpstreamError",
    "candidate_slots",
    "rule_violation",
]
