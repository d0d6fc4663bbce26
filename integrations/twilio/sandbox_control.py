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

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.callbacks import deliver
from integrations.twilio.sandbox_state import TwilioState

__all__ = ["control_routes"]

logger = logging.getLogger(__name__)


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
        delivered, skipped, retry = await deliver("twilio", state.take_callbacks())
        state.requeue(retry)
        return JSONResponse({"delivered": delivered, "skipped": skipped})

    return [
        Route("/_advance", advance, methods=["POST"]),
        Route("/_inbound", inbound, methods=["POST"]),
        Route("/_callbacks", pending, methods=["GET"]),
        Route("/_callbacks/deliver", deliver_pending, methods=["POST"]),
    ]
