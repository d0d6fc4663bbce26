"""HTTP statuses for error codes, and the JSON error body every HTTP route uses."""

from __future__ import annotations

from starlette.responses import JSONResponse

from tool_server.errors import ErrorCode, ErrorInfo

__all__ = ["STATUS", "error_response"]

STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_TOOL: 404,
    ErrorCode.UNKNOWN_ROUTE: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.SLOT_UNAVAILABLE: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.OPTED_OUT: 409,
    ErrorCode.WHATSAPP_WINDOW_CLOSED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.NOT_CONNECTED: 424,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.TIMEOUT: 504,
}


def error_response(error: ErrorInfo, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": {...}}` with the status its code maps to."""
    extra = dict(headers or {})
    if error.code is ErrorCode.UNAUTHORIZED:
        extra.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse({"error": error.model_dump(mode="json")}, status_code=STATUS[error.code], headers=extra)
