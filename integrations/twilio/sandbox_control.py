"""Control routes of the Twilio emulator: drive the far side over HTTP and send the queued webhooks.

Next to the kit's `/_state`, `/_faults`, … (see `integrations.common.sandbox`):

- `POST /_advance {"sid", "status", "error_code"?}`: a delivery status change (`TwilioState.advance`);
- `POST /_inbound {"from", "body", "url"?}`: a text or WhatsApp message from a caller
  (`TwilioState.receive_inbound`), its signed webhook queued for `url` when given;
- `GET /_callbacks`: the signed webhook requests waiting to be sent (not cleared);
- `POST /_callbacks/deliver`: POSTs them, only to http(s) URLs on 127.0.0.1 or localhost; answers
  `{"delivered": n, "skipped": m}`. Others are dropped and counted as skipped; a request that
  gets no answer (the receiver is not up) is put back in the queue and counted as skipped too.

A demo can so play the caller and the carrier without Python access to the emulator.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.twilio.sandbox_state import TwilioState
from integrations.twilio.sandbox_wire import Callback

__all__ = ["LOOPBACK_HOSTS", "control_routes", "deliver", "is_loopback"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_DELIVERY_TIMEOUT_SECONDS = 10.0


def is_loopback(url: str) -> bool:
    """Whether the emulator may POST to `url`: http(s) on 127.0.0.1 or localhost, nothing else."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS


async def deliver(callbacks: list[Callback]) -> tuple[int, int, list[Callback]]:
    """POST each callback to its URL: (delivered, skipped, the ones to try again later).

    A callback for a host off this machine is skipped and dropped: the emulator never sends
    traffic anywhere else. One whose receiver did not answer is skipped and handed back.
    """
    delivered = skipped = 0
    retry: list[Callback] = []
    async with httpx.AsyncClient(timeout=_DELIVERY_TIMEOUT_SECONDS, trust_env=False) as client:
        for callback in callbacks:
            if not is_loopback(callback.url):
                logger.warning("twilio sandbox: not delivering a callback to %s (not loopback)", callback.url)
                skipped += 1
                continue
            try:
                answer = await client.post(callback.url, content=callback.body, headers=callback.headers)
            except httpx.HTTPError as error:
                logger.warning("twilio sandbox: callback to %s failed (%s); kept", callback.url, error)
                skipped += 1
                retry.append(callback)
                continue
            if answer.status_code >= 300:
                # Twilio does not retry a refused webhook either; the receiver's answer is logged.
                logger.warning("twilio sandbox: %s answered %s to a callback", callback.url, answer.status_code)
            delivered += 1
    return delivered, skipped, retry


def _bad_request(detail: str) -> Response:
    return JSONResponse({"error": detail}, status_code=400)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        payload = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def control_routes(state: TwilioState) -> list[Route]:
    """The emulator's own control routes over `state` (served next to the kit's)."""

    async def advance(request: Request) -> Response:
        payload = await _json_object(request)
        if payload is None or not isinstance(payload.get("sid"), str) or not isinstance(payload.get("status"), str):
            return _bad_request('send {"sid": "SM…", "status": "delivered", "error_code": 30003?}')
        code = payload.get("error_code")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            return _bad_request("error_code must be an integer")
        try:
            delivery = state.advance(payload["sid"], payload["status"], code)
        except KeyError:
            return JSONResponse({"error": f"no message {payload['sid']}"}, status_code=404)
        return JSONResponse({"message": state.get(payload["sid"]), "callback_queued": delivery is not None})

    async def inbound(request: Request) -> Response:
        payload = await _json_object(request)
        sender, body, url = (payload or {}).get("from"), (payload or {}).get("body"), (payload or {}).get("url")
        if not isinstance(sender, str) or not isinstance(body, str) or not isinstance(url, str | None):
            return _bad_request('send {"from": "+1…" or "whatsapp:+1…", "body": "…", "url": "http://127.0.0.1…"?}')
        params = state.receive_inbound(sender, body, url=url)
        return JSONResponse({"params": params, "callback_queued": url is not None})

    async def pending(request: Request) -> Response:
        return JSONResponse({"callbacks": state.dump()["pending_callbacks"]})

    async def deliver_pending(request: Request) -> Response:
        delivered, skipped, retry = await deliver(state.take_callbacks())
        state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})

    return [
        Route("/_advance", advance, methods=["POST"]),
        Route("/_inbound", inbound, methods=["POST"]),
        Route("/_callbacks", pending, methods=["GET"]),
        Route("/_callbacks/deliver", deliver_pending, methods=["POST"]),
    ]
