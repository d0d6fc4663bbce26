"""Turning any failure into a ToolError: the one place exceptions become codes and speech."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from integrations.capabilities import (
    BookingLinkOnlyError,
    ConfigurationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    RecipientOptedOutError,
    SlotUnavailableError,
    UpstreamError,
)
from tool_server.errors import ErrorCode, ToolError

__all__ = ["Problem", "from_exception", "from_problems", "from_validation_error", "problems_of"]

logger = logging.getLogger(__name__)

_NOT_CONNECTED_SPEECH = {
    "calendar": "I can't book appointments on this line right now, but I can take your details for a call back.",
    "crm": "I can't look up records on this line right now, but I can take your details.",
    "payments": "I can't take payments on this call, but someone can send you a payment link.",
    "messaging": "I can't send texts from this line right now.",
    "email": "I can't send emails from this line right now.",
    "team": "I can't reach the team from this line right now, but I'll make a note for them.",
    "automation": "I can't pass that on automatically right now, but I'll make a note of it.",
    "accounting": "I can't look at accounts or invoices on this line, but someone can follow up with you.",
}

_FIELD_SPEECH = {
    "invalid_phone": "Sorry, I didn't get that number. Could you say it again with the area code?",
    "invalid_email": "Sorry, I didn't get that email address. Could you spell it for me?",
    "invalid_timezone": "Which timezone are you in?",
}


Problem = dict[str, str]
"""One argument at fault: `{"field", "type", "message"}`."""


def problems_of(error: ValidationError) -> list[Problem]:
    """Each argument pydantic refused, as a problem."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "missing":
            message = f"{field} is required"
        elif item["type"] == "extra_forbidden":
            message = f"{field} is not an argument of this tool"
        else:
            message = f"{field}: {item['msg']}"
        problems.append({"field": field, "type": item["type"], "message": message})
    return problems


def from_problems(problems: list[Problem]) -> ToolError:
    """VALIDATION_ERROR naming the first argument at fault, listing all of them in details."""
    first = problems[0]
    return ToolError(
        ErrorCode.VALIDATION_ERROR,
        "; ".join(problem["message"] for problem in problems),
        field=first["field"],
        speech=_FIELD_SPEECH.get(first["type"]),
        details={"errors": problems},
    )


def from_validation_error(error: ValidationError) -> ToolError:
    """VALIDATION_ERROR naming the first argument at fault, listing all of them in details."""
    return from_problems(problems_of(error))


def from_exception(error: BaseException, tool: str) -> ToolError:
    """The ToolError for anything a tool or provider raised."""
    if isinstance(error, ToolError):
        return error
    if isinstance(error, ValidationError):
        return from_validation_error(error)
    if isinstance(error, SlotUnavailableError):
        return ToolError(ErrorCode.SLOT_UNAVAILABLE, f"that time cannot be booked: {error.reason}")
    if isinstance(error, NotFoundError):
        return ToolError(
            ErrorCode.NOT_FOUND,
            f"{error.kind} {error.identifier!r} was not found",
            speech=f"I couldn't find that {error.kind.split()[-1]}.",
        )
    if isinstance(error, RecipientOptedOutError):
        return ToolError(ErrorCode.OPTED_OUT, "the recipient opted out of text messages (replied STOP)")
    if isinstance(error, ProviderNotConnectedError):
        return ToolError(
            ErrorCode.NOT_CONNECTED,
            f"{tool} needs a {error.capability} provider and this agent has none connected ({error})",
            speech=_NOT_CONNECTED_SPEECH.get(error.capability),
        )
    if isinstance(error, ConfigurationError):
        logger.warning("configuration error in %s: %s", tool, error)
        return ToolError(ErrorCode.NOT_CONNECTED, f"the connection for {tool} is misconfigured ({error.setting})")
    if isinstance(error, RateLimitedError):
        details = {"retry_after": error.retry_after} if error.retry_after is not None else {}
        return ToolError(
            ErrorCode.RATE_LIMITED, f"{error.provider} is rate limiting requests; retry shortly", details=details
        )
    if isinstance(error, BookingLinkOnlyError):
        return ToolError(
            ErrorCode.PROVIDER_ERROR,
            f"{error.provider} cannot book through its API; offer the caller details.booking_url (text it to them)",
            speech="I can't book that for you directly, but I can text you a link to book it yourself.",
            details={"booking_url": error.booking_url},
        )
    if isinstance(error, UpstreamError):
        return ToolError(ErrorCode.PROVIDER_ERROR, f"{error.provider} failed: {error}")
    logger.error("unexpected failure in tool %s", tool, exc_info=error)
    return ToolError(ErrorCode.INTERNAL_ERROR, f"{tool} failed unexpectedly; the error was logged on the server")
