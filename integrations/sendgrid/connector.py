"""Email through SendGrid's v3 Mail Send API, with the official `sendgrid` SDK.

Every request goes through one `Resilience`; SDK exceptions become capability errors in
`integrations.sendgrid.errors.translate`. Sending is the one write, and SendGrid cannot
deduplicate it, so a send is retried only after failures that prove nothing was accepted, and a
key whose mail SendGrid accepted answers from the `ledger` without sending again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.error import URLError

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from integrations.capabilities.errors import ConfigurationError, ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import EmailRequest, Message
from integrations.common.keylocks import KeyLocks
from integrations.common.linear_regex import compile_linear
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.sendgrid.errors import PROVIDER, MaybeSentError, translate
from integrations.sendgrid.ledger import SentLedger
from integrations.sendgrid.mappers import mail_body, to_message
from integrations.sendgrid.settings import SendGridSettings

__all__ = ["SendGridEmail"]

T = TypeVar("T")

# The SDK's HTTP client logs every request's headers at DEBUG, the API key included.
_BEARER = compile_linear(r"Bearer [^'\"\s,}]+")


class _RedactApiKey(logging.Filter):
    """Rewrites "Bearer SG.…" in python_http_client's log records to "Bearer (redacted)"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Bearer " in message:
            record.msg, record.args = _BEARER.sub("Bearer (redacted)", message), None
        return True


logging.getLogger("python_http_client.client").addFilter(_RedactApiKey())

# The API key permission Mail Send needs (https://www.twilio.com/docs/sendgrid/api-reference/api-key-permissions).
MAIL_SEND_SCOPE = "mail.send"


class SendGridEmail:
    """The `email` capability over SendGrid: one mail at a time from the connection's verified sender.

    No-double-send guarantee: a send is retried automatically only after a 429 or a connection
    that was never established. A 5xx or timeout surfaces as `MaybeSentError` and is not
    repeated; a later send with the same idempotency key may then send again (SendGrid offers no
    way to look a mail up without the paid Email Activity add-on). A key whose mail SendGrid
    accepted answers from the connection's send records, in any process sharing them, without
    contacting SendGrid.

    SendGrid accepts mail to suppressed addresses (unsubscribed, bounced) and drops it later, so
    an opt-out shows up as a "dropped" event on the Event Webhook, not as an error here.
    """

    name = PROVIDER

    def __init__(self, settings: SendGridSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._ledger = SentLedger(env.send_records)
        self._key_locks = KeyLocks()
        self._client: Any = None
        self._client_key: str | None = None

    @property
    def event_webhook_url(self) -> str | None:
        """The URL to set as the account's Event Webhook (None when the connection does not take events).

        SendGrid has no per-mail callback URL: the Event Webhook is configured once, in SendGrid's
        Mail Settings, and every event of the account goes there.
        """
        if not self._settings.status_events:
            return None
        return f"{self._env.public_url}/webhooks/sendgrid/{self._env.connection_id}/events"

    async def send_email(self, request: EmailRequest) -> Message:
        """Send `request` to its one recipient; the same idempotency key and email never mail twice.

        Answers the queued `Message` whose id is SendGrid's `X-Message-Id`. Raises
        `ConfigurationError` naming `from_email` when the sender is not verified at SendGrid,
        `ProviderNotConnectedError` when SendGrid refuses the API key, `RateLimitedError` or
        `UpstreamError` otherwise (`MaybeSentError` when the mail may have gone out).
        """
        mail = mail_body(request, self._settings)
        key = request.idempotency_key
        async with self._key_locks.hold(key):
            if key is not None:
                earlier = await self._ledger.sent(key, mail)
                if earlier is not None:
                    return earlier
            response = await self._send(mail)
            # Every 202 carries X-Message-Id; without one the mail still went, and saying it failed
            # would only invite a second send, so it gets an id of our own (its events go unmatched).
            message_id = response.headers.get("X-Message-Id") or f"unknown-{time.time_ns()}"
            message = to_message(request, message_id, created_at=self._env.clock(), mail=mail)
            if key is not None:
                await self._ledger.record(key, mail, message)
            return message

    async def check_connection(self) -> str:
        """List the API key's scopes: proves the key works and that it may send mail.

        The line also names the URL to set as the account's Event Webhook, when the connection takes events.
        """
        client = await self._sdk()
        # https://www.twilio.com/docs/sendgrid/api-reference/api-key-permissions/retrieve-a-list-of-scopes-for-which-this-user-has-access
        response = await self._call(
            lambda: client.client.scopes.get(timeout=self._resilience.attempt_timeout()), write=False
        )
        try:
            payload = json.loads(response.body or b"{}")
        except ValueError:
            raise UpstreamError(
                PROVIDER, "SendGrid answered the scopes request with something other than JSON"
            ) from None
        scopes = payload.get("scopes") if isinstance(payload, dict) else None
        if not isinstance(scopes, list) or MAIL_SEND_SCOPE not in scopes:
            raise ConfigurationError(
                "api_key", "the SendGrid API key may not send mail; give it the Mail Send permission or use another key"
            )
        line = f"sendgrid api key may send mail as {self._settings.from_email}"
        # SendGrid cannot be told the Event Webhook per mail: say where the account's must point.
        return line if self.event_webhook_url is None else f"{line}; Event Webhook URL: {self.event_webhook_url}"

    async def _send(self, mail: dict[str, Any]) -> Any:
        """POST one mail; answers the SDK's response to a 202."""
        client = await self._sdk()
        # https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
        return await self._call(
            lambda: client.client.mail.send.post(request_body=mail, timeout=self._resilience.attempt_timeout()),
            write=True,
        )

    async def _call(self, request: Callable[[], Any], *, write: bool) -> Any:
        """Run one SDK request under the resilience policy; answers the SDK's response."""
        outcome = await self._run(lambda: self._answer(request, write))
        if isinstance(outcome, MaybeSentError):
            # Not repeated, so not counted by Resilience, but still a sign of a failing vendor.
            self._resilience.breaker.failed()
            raise outcome
        return outcome

    def _answer(self, request: Callable[[], T], write: bool) -> T | MaybeSentError:
        """Run one SDK request on this worker thread, translating what it raises.

        An ambiguous failure of a write is *returned*: `Resilience` retries every retryable error
        it sees, and this one must never be repeated automatically.
        """
        try:
            return request()
        except (HTTPError, URLError, OSError, HTTPException) as error:
            translated = translate(error, write=write, from_email=self._settings.from_email, now=time.time())
            if isinstance(translated, MaybeSentError):
                return translated
            raise translated from error

    async def _run(self, attempt: Callable[[], T]) -> T:
        """`Resilience.run_sync`, marking the connection expired when SendGrid refuses the key."""
        try:
            return await self._resilience.run_sync(attempt)
        except ProviderNotConnectedError as error:
            # A refused API key does not heal by itself: the connection must be redone.
            await self._vault.mark_expired(str(error))
            raise

    async def _sdk(self) -> Any:
        """The SDK client for the current API key (rebuilt when the vault holds a new one)."""
        api_key = (await self._vault.load()).get("api_key")
        if not api_key:
            raise ConfigurationError("api_key", "the SendGrid connection has no API key; connect it again")
        if self._client is None or api_key != self._client_key:
            # https://github.com/sendgrid/sendgrid-python#usage
            self._client = SendGridAPIClient(api_key=api_key, host=self._settings.base_url)
            self._client_key = api_key
        return self._client
