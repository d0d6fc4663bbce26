"""Stable error codes and the one exception tools raise.

Every failure a caller can see is a `ToolError`: a stable `code` for programs, a `message`
for developers and LLMs (what went wrong and how to fix the call), and `speech`, one short
sentence a voice agent can say to the caller. Messages never carry stack traces, credentials
or provider URLs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ErrorCode", "ErrorInfo", "ToolError", "default_speech"]


class ErrorCode(StrEnum):
    """The codes a caller may receive. They never change meaning once published."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    SLOT_UNAVAILABLE = "SLOT_UNAVAILABLE"
    NOT_CONNECTED = "NOT_CONNECTED"
    OPTED_OUT = "OPTED_OUT"
    WHATSAPP_WINDOW_CLOSED = "WHATSAPP_WINDOW_CLOSED"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    UNAUTHORIZED = "UNAUTHORIZED"
    UNKNOWN_TOOL = "UNKNOWN_TOOL"
    UNKNOWN_ROUTE = "UNKNOWN_ROUTE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


_SPEECH: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_ERROR: "Sorry, I didn't get that quite right. Could you repeat it?",
    ErrorCode.NOT_FOUND: "I couldn't find that in our records.",
    ErrorCode.SLOT_UNAVAILABLE: "Sorry, that time isn't available.",
    ErrorCode.NOT_CONNECTED: "I'm not able to do that on this line, but I can have someone follow up.",
    ErrorCode.OPTED_OUT: (
        "That number has opted out of our text messages, so I can't text it. I can tell you the details now instead."
    ),
    ErrorCode.WHATSAPP_WINDOW_CLOSED: (
        "I can't send you a free-form WhatsApp message right now, since WhatsApp only allows that within a day of "
        "your last message to us. I can send it as a text message instead."
    ),
    ErrorCode.PROVIDER_ERROR: "Our system isn't responding right now. I can have someone follow up with you.",
    ErrorCode.RATE_LIMITED: "Our system is busy at the moment. Let me try that again shortly.",
    ErrorCode.TIMEOUT: "That's taking longer than it should. Let me try that again in a moment.",
    ErrorCode.UNAUTHORIZED: "I'm not able to access that right now.",
    ErrorCode.UNKNOWN_TOOL: "I'm not able to do that on this line.",
    ErrorCode.UNKNOWN_ROUTE: "I'm not able to do that on this line.",
    ErrorCode.METHOD_NOT_ALLOWED: "I'm not able to do that on this line.",
    ErrorCode.IDEMPOTENCY_CONFLICT: "Something went wrong on my side. Let me try that again.",
    ErrorCode.PAYLOAD_TOO_LARGE: "Something went wrong on my side. Let me try that again.",
    ErrorCode.INTERNAL_ERROR: "Something went wrong on my side. I can have someone follow up with you.",
}


def default_speech(code: ErrorCode) -> str:
    """The sentence an agent says for `code` when the tool gives no better one."""
    return _SPEECH[code]


class ErrorInfo(BaseModel):
    """An error as every transport serializes it."""

    code: ErrorCode = Field(description="Stable machine-readable code.")
    message: str = Field(description="What went wrong and how to fix the call.")
    speech: str = Field(description="One short sentence the agent can say to the caller.")
    field: str | None = Field(default=None, description="The argument at fault, for VALIDATION_ERROR.")
    retryable: bool = Field(default=False, description="True when the same call may succeed later.")
    details: dict[str, Any] = Field(default_factory=dict, description="Structured extras, e.g. alternatives.")


_RETRYABLE = {ErrorCode.PROVIDER_ERROR, ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT}


class ToolError(Exception):
    """A failure with a stable code. Raise it from tools; transports serialize it."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        speech: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.speech = speech or default_speech(code)
        self.field = field
        self.details = details or {}

    @classmethod
    def invalid(cls, field: str, message: str, *, speech: str | None = None) -> ToolError:
        """A VALIDATION_ERROR naming the argument at fault."""
        return cls(ErrorCode.VALIDATION_ERROR, f"{field}: {message}", field=field, speech=speech)

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            code=self.code,
            message=self.message,
            speech=self.speech,
            field=self.field,
            retryable=self.code in _RETRYABLE,
            details=self.details,
        )
