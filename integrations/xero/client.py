"""Blocking calls to Xero's Accounting API through xero-python, with Xero's errors and limits translated.

The SDK's `AccountingApi` is pointed at `{base_url}/api.xro/2.0`. It carries no credentials of its
own: `_BearerApiClient` puts the access token of the call running on this thread into the
`Authorization` header, so one SDK client (and its connection pool) serves every connection to
the same base URL and the SDK never tries to refresh tokens itself (the connector's
`TokenManager` does, saving each rotated refresh token).

Answers are read raw (`_preload_content=False`): `raw` keeps Xero's own JSON, and the rate-limit
headers of every answer (`X-MinLimit-Remaining`, `X-DayLimit-Remaining`, `X-AppMinLimit-Remaining`)
reach `XeroAnswer.limits`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import urllib3.exceptions
from urllib3.util.retry import Retry
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import ApiException, OpenApiException

from integrations.capabilities.errors import IntegrationError, NotFoundError, RateLimitedError, UpstreamError

__all__ = ["LIMIT_HEADERS", "PROVIDER", "XeroAnswer", "XeroClient", "translate", "wait_for"]

PROVIDER = "xero"
# https://developer.xero.com/documentation/guides/oauth2/limits
LIMIT_HEADERS = ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining")
# What a 429 waits when Xero names the day limit but sends no Retry-After: longer than any tool call,
# so `Resilience` gives up at once instead of retrying into a closed day.
_DAY_WAIT_SECONDS = 3600.0
# Enough of Xero's validation message to act on; its messages never echo credentials.
_MESSAGE_CHARS = 200
# Concurrent calls per host before urllib3 opens throwaway connections.
_POOL_SIZE = 32

_local = threading.local()


class _BearerApiClient(ApiClient):  # type: ignore[misc]  # xero-python ships no type hints
    """An `ApiClient` sending the access token of the call on this thread, never refreshing it."""

    def update_params_for_auth(self, headers: dict[str, str], querys: Any, auth_settings: Any) -> None:
        token = getattr(_local, "token", None)
        if token:
            headers["Authorization"] = f"Bearer {token}"


@cache
def _api(accounting_url: str) -> Any:
    # One SDK client per base URL for the process: each owns a urllib3 pool.
    client = _BearerApiClient(Configuration(oauth2_token=OAuth2Token()))
    # urllib3's own retries would run outside the tool call's deadline; `Resilience` decides on retries.
    client.rest_client.pool_manager.connection_pool_kw["retries"] = Retry(total=False)
    client.rest_client.pool_manager.connection_pool_kw["maxsize"] = _POOL_SIZE
    return AccountingApi(client, base_url=accounting_url)


@dataclass(frozen=True)
class XeroAnswer:
    """One successful answer: its JSON body (empty for 204) and the rate-limit headers it carried."""

    status: int
    body: dict[str, Any]
    limits: dict[str, str] = field(default_factory=dict)


def _limits(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        name: lowered[name.lower()]
        for name in (*LIMIT_HEADERS, "X-Rate-Limit-Problem", "Retry-After")
        if name.lower() in lowered
    }


class XeroClient:
    """The Accounting API endpoints the connector uses, for one tenant. Every method blocks."""

    def __init__(self, base_url: str, tenant_id: str) -> None:
        self.api = _api(f"{base_url.rstrip('/')}/api.xro/2.0")
        self.tenant_id = tenant_id

    def call(
        self,
        operation: str,
        token: str,
        timeout: float,
        *args: Any,
        record: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> XeroAnswer:
        """`AccountingApi.<operation>(tenant, *args, **kwargs)` with `token`, answered raw."""
        method: Callable[..., Any] = getattr(self.api, operation)
        _local.token = token
        try:
            response = method(self.tenant_id, *args, _preload_content=False, _request_timeout=timeout, **kwargs)
        except (OpenApiException, urllib3.exceptions.HTTPError) as error:
            raise translate(error, record=record) from None
        finally:
            _local.token = None
        data = response.data or b""
        body = json.loads(data) if data else {}
        return XeroAnswer(response.status, body if isinstance(body, dict) else {}, _limits(response.headers))


def translate(error: BaseException, *, record: tuple[str, str] | None = None) -> IntegrationError:
    """An SDK or urllib3 failure as the capability error it means (see ADDING_A_PROVIDER.md)."""
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return UpstreamError(PROVIDER, "timed out", retryable=True)
    if isinstance(error, urllib3.exceptions.HTTPError):
        return UpstreamError(PROVIDER, f"unreachable ({type(error).__name__})", retryable=True)
    if not isinstance(error, ApiException):
        return UpstreamError(PROVIDER, f"client error ({type(error).__name__})", retryable=False)
    status = int(error.status or 0)
    headers = _limits(dict(error.headers or {}))
    if status == 429:
        return RateLimitedError(PROVIDER, _retry_after(headers))
    if status == 404 and record is not None:
        return NotFoundError(*record)
    if status == 0 or status >= 500:
        return UpstreamError(PROVIDER, "server error", status=status or None, retryable=True)
    return UpstreamError(PROVIDER, _message(error.body), status=status, retryable=False)


def _retry_after(headers: dict[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    if headers.get("X-Rate-Limit-Problem", "").lower() == "day":
        return _DAY_WAIT_SECONDS
    return None


def _message(body: Any) -> str:
    """Xero's ValidationException messages, else its problem title, else a generic word."""
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) and body else body
    except ValueError:
        return "request refused"
    if not isinstance(data, dict):
        return "request refused"
    messages = [
        str(item.get("Message"))
        for element in data.get("Elements") or []
        if isinstance(element, dict)
        for item in element.get("ValidationErrors") or []
        if isinstance(item, dict)
    ]
    text = "; ".join(messages) or str(data.get("Message") or data.get("Detail") or data.get("Title") or "refused")
    return text[:_MESSAGE_CHARS]


def wait_for(limits: Mapping[str, str]) -> float | None:
    """How long to hold off after an answer whose headers say a limit is used up; None when none is."""
    if limits.get("X-DayLimit-Remaining") == "0":
        return _DAY_WAIT_SECONDS
    if limits.get("X-MinLimit-Remaining") == "0" or limits.get("X-AppMinLimit-Remaining") == "0":
        # The minute window rolls over within 60 seconds.
        return 60.0
    return None
