"""Every provider in `integrations/`, by name. Adding a provider adds one line here."""

from __future__ import annotations

from integrations.calcom import SPEC as CALCOM
from integrations.calendly import SPEC as CALENDLY
from integrations.common.spec import IntegrationSpec
from integrations.gohighlevel import SPEC as GOHIGHLEVEL
from integrations.google_calendar import SPEC as GOOGLE_CALENDAR
from integrations.housecall_pro import SPEC as HOUSECALL_PRO
from integrations.hubspot import SPEC as HUBSPOT
from integrations.outlook_calendar import SPEC as OUTLOOK_CALENDAR
from integrations.quickbooks import SPEC as QUICKBOOKS
from integrations.salesforce import SPEC as SALESFORCE
from integrations.sendgrid import SPEC as SENDGRID
from integrations.slack import SPEC as SLACK
from integrations.square import SPEC as SQUARE
from integrations.stripe import SPEC as STRIPE
from integrations.twilio import SPEC as TWILIO
from integrations.xero import SPEC as XERO
from integrations.zapier import SPEC as ZAPIER

__all__ = ["INTEGRATIONS"]

# The first provider of each capability is the one `agents create --sandbox` connects.
_SPECS: tuple[IntegrationSpec, ...] = (
    GOOGLE_CALENDAR,
    HUBSPOT,
    STRIPE,
    TWILIO,
    OUTLOOK_CALENDAR,
    CALCOM,
    CALENDLY,
    GOHIGHLEVEL,
    HOUSECALL_PRO,
    SALESFORCE,
    SENDGRID,
    ZAPIER,
    SLACK,
    QUICKBOOKS,
    XERO,
    SQUARE,
)

INTEGRATIONS: dict[str, IntegrationSpec] = {spec.name: spec for spec in _SPECS}
