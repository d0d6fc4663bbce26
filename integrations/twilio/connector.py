"""Text and WhatsApp messages through Twilio Programmable Messaging, with the official `twilio` SDK.

Every request goes through one `Resilience`; SDK exceptions become capability errors in
`integrations.twilio.errors.translate`. Sending is the one write, and Twilio cannot deduplicate
it, so sends are retried only after failures that prove nothing was sent, and a send that ended
ambiguously is looked up at Twilio before the same idempotency key sends again (see `ledger`).
SMS and WhatsApp share that path: a WhatsApp message is the same Messages API call with
"whatsapp:" addresses, and free text or an approved template (ContentSid) as its content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
from integrations.capabilities.models import Message, WhatsAppTemplate
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.vault import CredentialVault
from integrations.twilio.errors import PROVIDER, MaybeSentError, translate
from integrations.twilio.ledger import Attempt, SentLedger, TemplateSend, is_same_send
from integrations.twilio.mappers import (
    content_variables,
    create_params,
    sender_of,
    template_body,
    to_message,
    whatsapp_address,
)
from integrations.twilio.settings import TwilioSettings
from integrations.twilio.transport import RedirectingHttpClient

__all__ = ["TwilioMessaging"]

# How many of the recipient's latest messages to search for an ambiguous earlier send.
LOOKBACK_PAGE_SIZE = 20


class TwilioMessaging:
    """The `messaging` capability over Twilio: SMS from one number or Messaging Service of an account,
    and WhatsApp from the account's WhatsApp sender (`WhatsAppSender`) when the connection has one.

    No-double-send guarantee: a send is retried automatically only after a 429 or a connection
    that was never established. A 5xx or timeout surfaces as `MaybeSentError` and is not
    retried; a later send with the same idempotency key, in any process sharing the connection's
    send records, first lists the recipient's recent messages and answers with a matching one
    (claimed for that key, so never one another key sent) instead of sending again. A key whose
    message Twilio confirmed answers from the records without contacting Twilio.
    """

    name = PROVIDER

    def __init__(self, settings: TwilioSettings, vault: CredentialVault, env: ConnectorEnv) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        self._resilience = Resilience(PROVIDER)
        self._http = RedirectingHttpClient(settings.base_url, self._resilience.attempt_timeout)
        self._ledger = SentLedger(env.send_records)
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
        asked = Attempt(to=to, body=body, sender=sender_of(self._settings), started_at=datetime.now(UTC))
        return await self._send(asked, recipient=to, idempotency_key=idempotency_key, earlier=earlier_attempt_at)

    def whatsapp_templates(self) -> list[str]:
        """The template names this connection can send (empty when WhatsApp is not set up)."""
        if self._settings.whatsapp_from is None:
            return []
        return sorted(self._settings.whatsapp_templates)

    async def send_whatsapp(
        self,
        to: str,
        *,
        body: str | None = None,
        template: WhatsAppTemplate | None = None,
        idempotency_key: str | None = None,
        earlier_attempt_at: datetime | None = None,
    ) -> Message:
        """Send one WhatsApp message to `to` (E.164, no prefix): free text `body` or an approved `template`.

        Exactly one of the two (anything else is a `ValueError`: the caller's mistake). Free text
        is only delivered inside the 24-hour window the recipient's last message opened: outside
        it Twilio accepts the message and fails it later (63016, in a status callback), so the
        caller chooses the template. Raises `ConfigurationError` naming `whatsapp_from` (no
        WhatsApp sender) or `whatsapp_templates` (a template name the connection does not map),
        `RecipientOptedOutError` (21610) when the number opted out on either channel, and
        otherwise as `send_sms`, with the same one-send-per-key guarantee: a key is the same send
        only with the same channel, recipient, sender and text or template and variables.
        """
        if (body is None) == (template is None):
            raise ValueError("send_whatsapp needs exactly one of body or template")
        sender = self._settings.whatsapp_from
        if sender is None:
            raise ConfigurationError("whatsapp_from", "the Twilio connection has no WhatsApp sender; set whatsapp_from")
        sent_template = None if template is None else self._resolve(template)
        asked = Attempt(
            to=whatsapp_address(to),
            body=body or "",
            sender=whatsapp_address(sender),
            started_at=datetime.now(UTC),
            channel="whatsapp",
            template=sent_template,
        )
        return await self._send(asked, recipient=to, idempotency_key=idempotency_key, earlier=earlier_attempt_at)

    async def check_connection(self) -> str:
        """Fetch the account: proves the SID and auth token work and the account is active."""
        sid = self._settings.account_sid
        # https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource
        account = await self._call(lambda client: client.api.v2010.accounts(sid).fetch(), write=False)
        status = account.get("status")
        if status not in (None, "active"):
            raise UpstreamError(PROVIDER, f"the Twilio account is {status}")
        return f"twilio account {sid} reachable"

    def _resolve(self, template: WhatsAppTemplate) -> TemplateSend:
        """The Content SID and ContentVariables a template name and its variables send."""
        content_sid = self._settings.whatsapp_templates.get(template.name)
        if content_sid is None:
            known = ", ".join(sorted(self._settings.whatsapp_templates)) or "none"
            raise ConfigurationError(
                "whatsapp_templates", f"no WhatsApp template named {template.name!r} (known: {known})"
            )
        return TemplateSend(
            name=template.name,
            content_sid=content_sid,
            variables_json=content_variables(template.variables),
            variables=tuple(template.variables.values()),
        )

    async def _send(
        self, asked: Attempt, *, recipient: str, idempotency_key: str | None, earlier: datetime | None
    ) -> Message:
        """Send `asked` once per key; `earlier` is the start of another process's unanswered attempt."""
        async with self._key_locks.hold(idempotency_key):
            if idempotency_key is not None and earlier is not None:
                await self._ledger.adopt(idempotency_key, replace(asked, started_at=earlier))
            return await self._send_once(asked, recipient, idempotency_key)

    async def _send_once(self, attempt: Attempt, recipient: str, idempotency_key: str | None) -> Message:
        """A send with the key held: answer from the ledger, look an ambiguous attempt up, or send."""
        if idempotency_key is not None:
            earlier = await self._ledger.get(idempotency_key)
            if earlier is not None and earlier.same_request(attempt):
                if earlier.message is not None:
                    return earlier.message
                found = await self._find_earlier_send(earlier, idempotency_key)
                if found is not None:
                    return await self._ledger.complete(idempotency_key, earlier, found)
                # Keep the first attempt's start time: its message may still be created late.
                attempt = earlier
            await self._ledger.begin(idempotency_key, attempt)
        params = create_params(attempt, self._settings, self.status_callback_url)
        try:
            # https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
            # WhatsApp templates: https://www.twilio.com/docs/content/send-templates-created-with-the-content-template-builder
            payload = await self._call(lambda client: client.messages.create(**params), write=True, recipient=recipient)
        except MaybeSentError:
            # Not retryable (so not counted by Resilience), but still a sign of a failing vendor.
            self._resilience.breaker.failed()
            raise
        except IntegrationError:
            if idempotency_key is not None:
                await self._ledger.forget(idempotency_key)
            raise
        message = self._message(payload, attempt)
        if idempotency_key is not None:
            await self._ledger.complete(idempotency_key, attempt, message)
        return message

    def _message(self, payload: dict[str, Any], attempt: Attempt) -> Message:
        """The shared model of a message `attempt` created; a template send reports its name and variables."""
        sent = attempt.template
        body = None if sent is None else template_body(sent.name, sent.variables_json)
        return to_message(payload, fallback_created_at=self._env.clock(), body=body)

    async def _find_earlier_send(self, attempt: Attempt, key: str) -> Message | None:
        """The message an ambiguous earlier attempt created, if Twilio has it.

        Twilio lists a WhatsApp message under its "whatsapp:" To, which the attempt holds. A
        failure here propagates: not knowing is no reason to risk a second text.
        """
        # https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
        page = await self._call(
            lambda client: client.messages.page(to=attempt.to, page_size=LOOKBACK_PAGE_SIZE), write=False
        )
        for item in page.get("messages") or []:
            # Claimed in the shared records: an identical text another key sent is not this one.
            if (
                isinstance(item, dict)
                and is_same_send(item, attempt)
                and await self._ledger.claim(key, str(item.get("sid")))
            ):
                return self._message(item, attempt)
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
