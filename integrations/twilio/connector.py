"""Text messages through Twilio Programmable Messaging, with the official `twilio` SDK.

Every request goes through one `Resilience`; SDK exceptions become capability errors in
`integrations.twilio.errors.translate`. Sending is the one write, and Twilio cannot deduplicate
it, so sends are retried only after failures that prove nothing was sent, and a send that ended
ambiguously is looked up at Twilio before the same idempotency key sends again (see `ledger`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from integrations.capabilities.errors import (
    ConfigurationError,
    IntegrationError,
    ProviderNotConnectedError,
    UpstreamError,
)
from integrations.capabilities.models import Message
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.twilio.errors import PROVIDER, MaybeSentError, translate
from integrations.twilio.ledger import Attempt, SentLedger, is_same_send
from integrations.twilio.mappers import create_params, sender_of, to_message
from integrations.twilio.settings import TwilioSettings
from integrations.twilio.transport import RedirectingHttpClient

__all__ = ["TwilioMessaging"]

# How many of the recipient's latest messages to search for an ambiguous earlier send.
LOOKBACK_PAGE_SIZE = 20


class TwilioMessaging:
    """The `messaging` capability over Twilio: SMS from one number or Messaging Service of an account.

    No-double-send guarantee: a send is retried automatically only after a 429 or a connection
    that was never established. A 5xx or timeout surfaces as `MaybeSentError` and is not
    retried; a later send with the same idempotency key (in this process) first lists the
    recipient's recent messages and answers with a matching one instead of sending again. A key
    whose message Twilio confirmed answers from memory without contacting Twilio.
    """

    name = PROVIDER

    def __init__(self, settings: TwilioSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._http = RedirectingHttpClient(settings.base_url, self._resilience.attempt_timeout)
        self._ledger = SentLedger()
        self._key_locks = KeyLocks()
        self._client: Any = None
        self._client_token: str | None = None

    @property
    def status_callback_url(self) -> str | None:
        """Where Twilio should POST this connection's delivery updates (None when turned off)."""
        if not self._settings.status_callback:
            return None
        return f"{self._env.public_url}/webhooks/twilio/{self._env.connection_id}/status"

    async def send_sms(
        self,
        to: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Send one SMS to `to` (E.164); the same `idempotency_key` never sends a second one.

        A key counts as the same send only with the same recipient, body and sender; reusing a
        key for a different text sends that text. `earlier_attempt_at` (an attempt under this key
        began then in a process that died) makes it look for that attempt's message first, as
        for an ambiguous attempt of its own. Raises `RecipientOptedOutError` when the recipient
        replied STOP (Twilio error 21610), `ProviderNotConnectedError` when Twilio refuses the
        credentials, `RateLimitedError` or `UpstreamError` otherwise (`MaybeSentError` when the
        message may have gone out).
        """
        async with self._key_locks.hold(idempotency_key):
            if idempotency_key is not None and earlier_attempt_at is not None:
                self._ledger.adopt(
                    idempotency_key,
                    Attempt(to=to, body=body, sender=sender_of(self._settings), started_at=earlier_attempt_at),
                )
            return await self._send_once(to, body, idempotency_key)

    async def check_connection(self) -> str:
        """Fetch the account: proves the SID and auth token work and the account is active."""
        sid = self._settings.account_sid
        # https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource
        account = await self._call(lambda client: client.api.v2010.accounts(sid).fetch(), write=False)
        status = account.get("status")
        if status not in (None, "active"):
            raise UpstreamError(PROVIDER, f"the Twilio account is {status}")
        return f"twilio account {sid} reachable"

    async def _send_once(self, to: str, body: str, idempotency_key: str | None) -> Message:
        """`send_sms` with the key held: answer from the ledger, look an ambiguous attempt up, or send."""
        attempt = Attempt(to=to, body=body, sender=sender_of(self._settings), started_at=datetime.now(UTC))
        if idempotency_key is not None:
            earlier = self._ledger.get(idempotency_key)
            if earlier is not None and earlier.same_request(attempt):
                if earlier.message is not None:
                    return earlier.message
                found = await self._find_earlier_send(earlier)
                if found is not None:
                    return self._ledger.complete(idempotency_key, earlier, found)
                # Keep the first attempt's start time: its message may still be created late.
                attempt = earlier
            self._ledger.begin(idempotency_key, attempt)
        params = create_params(to, body, self._settings, self.status_callback_url)
        try:
            # https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
            payload = await self._call(lambda client: client.messages.create(**params), write=True, recipient=to)
        except MaybeSentError:
            # Not retryable (so not counted by Resilience), but still a sign of a failing vendor.
            self._resilience.breaker.failed()
            raise
        except IntegrationError:
            if idempotency_key is not None:
                self._ledger.forget(idempotency_key)
            raise
        message = to_message(payload, fallback_created_at=self._env.clock())
        if idempotency_key is not None:
            self._ledger.complete(idempotency_key, attempt, message)
        return message

    async def _find_earlier_send(self, attempt: Attempt) -> Message | None:
        """The message an ambiguous earlier attempt created, if Twilio has it.

        A failure here propagates: not knowing is no reason to risk a second text.
        """
        # https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
        page = await self._call(
            lambda client: client.messages.page(to=attempt.to, page_size=LOOKBACK_PAGE_SIZE), write=False
        )
        claimed = self._ledger.sent_ids()
        for item in page.get("messages") or []:
            if isinstance(item, dict) and is_same_send(item, attempt, claimed=claimed):
                return to_message(item, fallback_created_at=self._env.clock())
        return None

    async def _call(
        self, request: Callable[[Any], object], *, write: bool, recipient: str | None = None
    ) -> dict[str, Any]:
        """Run one SDK request under the resilience policy; answers Twilio's raw JSON."""
        client = await self._sdk()

        def attempt() -> dict[str, Any]:
            try:
                request(client)
            except (TwilioException, RequestException) as error:
                answer = self._http.last_answer()
                retry_after = answer.retry_after() if answer is not None else None
                raise translate(error, write=write, recipient=recipient, retry_after=retry_after) from error
            answer = self._http.last_answer()
            if answer is None:  # the SDK returned without making a request: a bug, not a vendor answer
                raise UpstreamError(PROVIDER, "the SDK returned without an answer from Twilio")
            return answer.json()

        try:
            return await self._resilience.run_sync(attempt)
        except ProviderNotConnectedError as error:
            # A refused auth token does not heal by itself: the connection must be redone.
            await self._vault.mark_expired(str(error))
            raise

    async def _sdk(self) -> Any:
        """The SDK client for the current auth token (rebuilt when the vault holds a new one)."""
        token = (await self._vault.load()).get("auth_token")
        if not token:
            raise ConfigurationError("auth_token", "the Twilio connection has no auth token; connect it again")
        if self._client is None or token != self._client_token:
            # https://www.twilio.com/docs/libraries/reference/twilio-python/
            self._client = Client(self._settings.account_sid, token, http_client=self._http)
            self._client_token = token
        return self._client
