"""Argument types shared by tools. Phones and emails are normalized while they are validated.

Phone validation reads the agent's region from the validation context
(`{"phone_region": "US"}`), so "(212) 555-0142" becomes "+12125550142" before a tool runs and
before dispatch derives an idempotency key from the arguments.
"""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from integrations.common.zones import UnknownZoneError, canonical_zone_name
from tool_server.errors import ToolError
from tool_server.phones import normalize_phone

__all__ = ["DateText", "DateTimeText", "Email", "Phone", "TimeZoneName"]


def _phone(value: str, info: ValidationInfo) -> str:
    region = (info.context or {}).get("phone_region", "US")
    try:
        return normalize_phone(value, region, info.field_name or "phone")
    except ToolError as error:
        raise PydanticCustomError("invalid_phone", error.message.split(": ", 1)[-1]) from None


def _email(value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise PydanticCustomError("invalid_email", f"{value!r} is not a valid email address: {error}") from None
    return checked.normalized.lower()


def _zone(value: str) -> str:
    try:
        return canonical_zone_name(value)
    except UnknownZoneError as error:
        raise PydanticCustomError("invalid_timezone", str(error)) from None


Phone = Annotated[
    str,
    Field(
        min_length=3,
        max_length=40,
        description=("Phone number in any common format; without a country code it is read in the business's region."),
        examples=["+12125550142", "(212) 555-0142"],
    ),
    AfterValidator(_phone),
]
Email = Annotated[
    str,
    Field(min_length=3, max_length=320, description="Email address.", examples=["jane@example.com"]),
    AfterValidator(_email),
]
TimeZoneName = Annotated[
    str,
    Field(
        max_length=64,
        description="IANA timezone name, e.g. America/Los_Angeles for a caller who says 'Pacific', "
        "America/New_York for 'Eastern'. Defaults to the business's timezone.",
        examples=["America/New_York", "Europe/London"],
    ),
    AfterValidator(_zone),
]
# A day as a tool takes it: YYYY-MM-DD, 'today', 'tomorrow' or a weekday name.
DateText = Annotated[str, Field(max_length=32)]
# A date and time as ISO 8601, with or without an offset.
DateTimeText = Annotated[str, Field(max_length=64)]

# Flat objects only: a key is a short name and a value one line of text (or a number or yes/no).
# Dispatch checks their sizes before validation reads them (see `dispatch.guard`).
OBJECT_KEY_MAX = 64
TemplateVariables = Annotated[dict[str, Annotated[str, Field(max_length=1024)]] | None, Field(max_length=10)]
FlatData = Annotated[dict[str, Annotated[str, Field(max_length=2000)] | int | float | bool], Field(max_length=50)]
