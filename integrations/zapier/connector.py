"""The `automation` capability over a Zapier catch hook ("Webhooks by Zapier" → Catch Hook), with httpx.

Zapier has no SDK and no API for catch hooks: one POST of JSON to the hook URL, which is the
credential. So the request never goes through `httpx.AsyncClient`, which logs every URL it
requests; it is handed to an `httpx.AsyncHTTPTransport` directly, and no error, log line or
`repr` here ever holds the URL.

No-double-trigger rule (as Twilio's no-double-send): a delivery is retried automatically only
after a failure that proves nothing reached Zapier (a connection never made, a 429). A 5xx or a
timeout raises a retryable `UpstreamError` at once, without a second POST. A key Zapier accepted
answers from the connection's send records (`ledger`), in any process sharing them, without
posting again; after an ambiguous failure nothing can be looked up, so the Zap can filter on the
`idempotency_key` field for the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from integrations.capabilities.errors import ProviderNotConnectedError, UpstreamError
from integrations.capabilities.models import WorkflowRun
from integrations.common.keylocks import KeyLocks
from integrations.common.resilience import Resilience
from integrations.common.spec import ConnectorEnv
from integrations.common.tls import tls_context
from integrations.common.vault import CredentialVault
from integrations.zapier.errors import MAX_BODY_BYTES, PROVIDER, MaybeDeliveredError, translate, transport
from integrations.zapier.ledger import DeliveredLedger
from integrations.zapier.mappers import encode, to_run, trigger_payload
from integrations.zapier.settings import HOOK_URL, CatchHookUrl, ZapierSettings, parse_hook_url

__all__ = ["ZapierAutomation"]


class ZapierAutomation:
    """Hands events to the business's Zap through its catch hook; any 2xx counts as accepted.

    Zapier answers success whether or not a live Zap is behind the hook ("regardless of whether
    there is a Zap behind the webhook or if it is paused"), so a paused Zap cannot be seen from
    here. A 410 or 404 (a hook Zapier dropped) marks the connection expired.
    """

    name = PROVIDER

    def __init__(
        self,
        settings: ZapierSettings,
        vault: CredentialVault,
        env: ConnectorEnv,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._vault = vault
        self._env = env
        # A transport shared across attempts (tests pass httpx.MockTransport); None: one per attempt.
        self._http_transport = http_transport
        self._resilience = Resilience(PROVIDER)
        self._ledger = DeliveredLedger(env.send_records)
        self._key_locks = KeyLocks()

    def __repr__(self) -> str:
        return f"ZapierAutomation(connection_id={self._env.connection_id!r}, base_url={self._settings.base_url!r})"

    async def trigger_workflow(
        self, event: str, data: dict[str, Any], *, idempotency_key: str | None = None
    ) -> WorkflowRun:
        """POST `event` and `data` to the catch hook (shape: `integrations.zapier.mappers`).

        The same `idempotency_key` with the same event and data posts no more once Zapier accepted
        it, in any process sharing the connection's send records; without a key, a fresh one is
        sent, so every delivery carries one. Raises `ConfigurationError` for
        a missing or malformed hook URL, `ProviderNotConnectedError` (and marks the connection
        expired) when Zapier says the hook is gone, `RateLimitedError` when a 429 outlasts the
        deadline, `UpstreamError` otherwise (retryable after a 5xx or timeout, which this
        connector never re-posts by itself).
        """
        hook = await self._hook()
        key = idempotency_key or uuid.uuid4().hex
        fingerprint = _fingerprint(event, data)
        async with self._key_locks.hold(idempotency_key):
            # A made-up key was never used before: no record to read.
            if idempotency_key is not None:
                delivered = await self._ledger.get(idempotency_key, fingerprint)
                if delivered is not None:
                    return delivered
            body = encode(trigger_payload(event, data, idempotency_key=key, sent_at=self._env.clock()))
            if len(body) > MAX_BODY_BYTES:
                raise UpstreamError(PROVIDER, "the event's data is too large for a Zapier catch hook (over 2 MB)")
            run = await self._deliver(hook, body, event=event, key=key)
            if idempotency_key is not None:
                await self._ledger.put(key, fingerprint, run)
            return run

    async def check_connection(self) -> str:
        """Check the hook URL's shape without calling it: any call, even a test, would run the Zap."""
        hook = await self._hook()
        kind = "silent catch hook" if hook.silent else "catch hook"
        return f"zapier {kind} configured; not called, a test call would run the Zap"

    async def _hook(self) -> CatchHookUrl:
        return parse_hook_url((await self._vault.load()).get(HOOK_URL), self._settings.base_url)

    async def _deliver(self, hook: CatchHookUrl, body: bytes, *, event: str, key: str) -> WorkflowRun:
        """One delivery under the resilience policy (retries only when nothing reached Zapier)."""

        async def attempt() -> WorkflowRun:
            return await self._post_once(hook, body, event=event, key=key)

        try:
            return await self._resilience.call(attempt)
        except MaybeDeliveredError as ambiguous:
            # Not retried (so not counted by Resilience), but still a sign of a failing vendor.
            self._resilience.breaker.failed()
            raise ambiguous.error from None
        except ProviderNotConnectedError as error:
            # A hook Zapier dropped does not come back: a person must connect a live Zap's URL.
            await self._vault.mark_expired(str(error))
            raise

    async def _post_once(self, hook: CatchHookUrl, body: bytes, *, event: str, key: str) -> WorkflowRun:
        # https://help.zapier.com/hc/en-us/articles/8496288690317-Trigger-Zaps-from-webhooks
        request = httpx.Request(
            "POST",
            hook.url,
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": key},
            extensions={"timeout": httpx.Timeout(self._resilience.attempt_timeout()).as_dict()},
        )
        try:
            async with self._transport() as sender:
                response = await sender.handle_async_request(request)
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
        except httpx.TransportError as error:
            # `from None`: httpx's exception holds the request, whose URL is the credential.
            raise transport(error) from None
        if 200 <= response.status_code < 300:
            return to_run(content, event=event, idempotency_key=key)
        raise translate(response.status_code, response.headers)

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[httpx.AsyncBaseTransport]:
        if self._http_transport is not None:
            yield self._http_transport
            return
        async with httpx.AsyncHTTPTransport(verify=tls_context()) as fresh:
            yield fresh


def _fingerprint(event: str, data: dict[str, Any]) -> str:
    """What a key was used for, so a key reused for another event does not answer with the first."""
    canonical = json.dumps([event, data], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
