"""Every provider in `integrations/`, by name. Adding a provider adds one line here."""

from __future__ import annotations

from integrations.common.spec import IntegrationSpec
from integrations.google_calendar import SPEC as GOOGLE_CALENDAR
from integrations.hubspot import SPEC as HUBSPOT
from integrations.stripe import SPEC as STRIPE
from integrations.twilio import SPEC as TWILIO

__all__ = ["INTEGRATIONS"]

_SPECS: tuple[IntegrationSpec, ...] = (GOOGLE_CALENDAR, HUBSPOT, STRIPE, TWILIO)

INTEGRATIONS: dict[str, IntegrationSpec] = {spec.name: spec for spec in _SPECS}
