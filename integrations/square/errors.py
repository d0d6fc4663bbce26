"""Square's error answers (`{"errors": [{category, code, detail, field}]}`) as capability errors, in one place."""

from __future__ import annotations

from typing import Any

import httpx
from square.core.api_error import ApiError

from integrations.capabilities.errors import (
    IntegrationError,
    NotFoundError,
    ProviderNotConnectedError,
    RateLimitedError,
    UpstreamError,
)

__all__ = ["PROVIDER", "translate"]

PROVIDER = "square"


def _first_error(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return errors[0]
    return {}


def _retry_after(headers: dict[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate(error: Exception, *, missing: tuple[str, str] | None = None) -> IntegrationError:
    """The capability error for an SDK or transport failure. Never includes the token or a URL.

    https://developer.squareup.com/docs/build-basics/handling-errors
    """
    if isinstance(error, httpx.TimeoutException | httpx.TransportError):
        return UpstreamError(PROVIDER, f"square unreachable: {type(error).__name__}", retryable=True)
    if not isinstance(error, ApiError):
        return UpstreamError(PROVIDER, f"unexpected {type(error).__name__}", retryable=False)
    status = error.status_code or 0
    first = _first_error(error.body)
    code = str(first.get("code") or "")
    detail = f"{first.get('category') or 'ERROR'} {code}: {first.get('detail') or ''}".strip()
    if status == 429 or code == "RATE_LIMITED":
        return RateLimitedError(PROVIDER, _retry_after(error.headers))
    if status == 401:
        return ProviderNotConnectedError("accounting", f"square refused the access token ({code or 'UNAUTHORIZED'})")
    if status == 404 and missing is not None:
        return NotFoundError(*missing)
    if status >= 500 or status == 0:
        return UpstreamError(PROVIDER, detail, status=status or None, retryable=True)
    return UpstreamError(PROVIDER, detail, status=status, retryable=False)
