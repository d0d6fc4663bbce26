"""The Twilio SDK's HTTP client, pointed at `settings.base_url` and timed by the tool call's deadline.

The SDK has no base-URL option (`edge`/`region` only rewrite `*.twilio.com` host names), so a
subclass of its own `TwilioHttpClient` swaps the scheme and host of each request for the
configured base URL. It also keeps the last answer per thread, which gives the connector the
vendor's raw JSON (the SDK's instances drop it) and the Retry-After header of a 429 (the SDK's
exception drops it). Each SDK call runs on its own worker thread, so a thread's last answer is
the answer to the call that thread just made.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient

__all__ = ["TWILIO_API", "Answer", "RedirectingHttpClient", "rebase"]

TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True)
class Answer:
    """What Twilio answered to one request: status, headers and body text."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> dict[str, Any]:
        payload = json.loads(self.text)
        return payload if isinstance(payload, dict) else {}

    def retry_after(self) -> float | None:
        """Seconds from a Retry-After header in seconds form (Twilio never sends the date form)."""
        value = self.headers.get("Retry-After")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


def rebase(url: str, base_url: str) -> str:
    """`url` with Twilio's scheme and host replaced by `base_url` (whose path becomes a prefix).

    With the default base URL nothing changes, so an edge or region chosen through the SDK's
    TWILIO_EDGE / TWILIO_REGION environment variables still applies in production.
    """
    if base_url == TWILIO_API:
        return url
    parts = urlsplit(url)
    if not parts.netloc.endswith("twilio.com"):
        return url
    base = urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, parts.fragment))


# Connections kept per host; urllib3 opens (and discards) extra ones beyond it.
_POOL_SIZE = 32


# The SDK ships no type information, so mypy sees its base class as Any.
class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """`TwilioHttpClient` that sends every request to `base_url` with a per-attempt timeout.

    `timeout` is called on the worker thread at each request: `Resilience.attempt_timeout` reads
    the tool call's deadline from a context variable, which `asyncio.to_thread` carries over.
    """

    def __init__(self, base_url: str, timeout: Callable[[], float]) -> None:
        super().__init__(pool_connections=True)
        # The SDK pools https only, CPU count + 4 connections deep: too few for the post-call
        # workers' 16 concurrent texts, and none for an http base URL (the emulator).
        adapter = HTTPAdapter(pool_maxsize=_POOL_SIZE, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._base_url = base_url
        self._attempt_timeout = timeout
        self._answers = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        self._answers.last = None
        response = super().request(
            method,
            rebase(url, self._base_url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=self._attempt_timeout() if timeout is None else timeout,
            allow_redirects=allow_redirects,
        )
        self._answers.last = Answer(
            status=int(response.status_code), headers=response.headers or {}, text=str(response.text)
        )
        return response

    def last_answer(self) -> Answer | None:
        """The answer to this thread's most recent request (None when it got no answer)."""
        answer: Answer | None = getattr(self._answers, "last", None)
        return answer
