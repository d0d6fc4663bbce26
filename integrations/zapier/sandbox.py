"""An emulator of Zapier's catch hooks ("Webhooks by Zapier" → Catch Hook), over `sandbox_state.ZapierState`.

Served paths, as on hooks.zapier.com (no auth: the URL is the credential):

- `POST`/`PUT`/`GET /hooks/catch/{account_id}/{hook_id}/`: JSON-object, form or query-string
  fields become the trigger data (nested JSON kept as received); answers 200
  `{"attempt", "id", "request_id", "status": "success"}`, whether or not a Zap is on behind the
  hook, as Zapier says it does;
- the same under `…/silent/`: an empty 200;
- a body over 2 MB: 413.

Control routes (beside the kit's `/_state`, `/_faults`, `/_reset`): `POST /_hooks`
`{"account_id", "hook_id"}` adds a Zap's hook; `POST /_hooks/{account_id}/{hook_id}/off` and
`…/on` turn its Zap off and on; `POST /_hooks/{account_id}/{hook_id}/drop` `{"status": 410}`
makes it answer 404/410 (`null`: catch again).
Docs: https://help.zapier.com/hc/en-us/articles/8496288690317-Trigger-Zaps-from-webhooks
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.zapier.sandbox_state import (
    SANDBOX_ACCOUNT_ID,
    SANDBOX_HOOK_ID,
    GoneStatus,
    HookGoneError,
    ZapierState,
)

__all__ = ["MAX_BODY_BYTES", "SANDBOX_ACCOUNT_ID", "SANDBOX_HOOK_ID", "ZapierState", "build_sandbox", "hook_path"]

# unconfirmed: 2 MB is the limit Zapier states for Catch Raw Hook; the 413 status is assumed.
MAX_BODY_BYTES = 2 * 1024 * 1024
_CATCH = "/hooks/catch/{account_id}/{hook_id}/"
_METHODS = ["GET", "POST", "PUT"]


def hook_path(account_id: str = SANDBOX_ACCOUNT_ID, hook_id: str = SANDBOX_HOOK_ID, *, silent: bool = False) -> str:
    """The path of a catch hook below the emulator's mount (and below https://hooks.zapier.com)."""
    return f"/hooks/catch/{account_id}/{hook_id}/" + ("silent/" if silent else "")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # unconfirmed: Zapier documents no error body for catch hooks; this one is a guess in its style.
    return JSONResponse({"status": "error", "message": message}, status_code=status, headers=headers)


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form or query pairs as fields; a repeated name keeps all its values, in order."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            earlier = fields[name]
            fields[name] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
        else:
            fields[name] = value
    return fields


# unconfirmed: Zapier's precedence between query and body fields, and what a Catch Hook makes of a
# JSON array (it is said to trigger once per element); here an array is kept as raw text.
def trigger_data(query: str, content_type: str, body: bytes) -> tuple[dict[str, Any], str | None]:
    """(the trigger data, the body as text when it is neither a JSON object nor a form).

    Query-string fields come first; a body field of the same name replaces one.
    """
    data = _fields(parse_qsl(query, keep_blank_values=True))
    if not body:
        return data, None
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            decoded = json.loads(body)
        except ValueError:
            return data, text
        if isinstance(decoded, dict):
            return {**data, **decoded}, None
        return data, text
    if "x-www-form-urlencoded" in content_type:
        return {**data, **_fields(parse_qsl(text, keep_blank_values=True))}, None
    return data, text


class _NewHook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str
    hook_id: str


class _Drop(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: GoneStatus | None = 410


class _Hooks:
    """The catch routes and the control routes over one `ZapierState`."""

    def __init__(self, state: ZapierState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route(_CATCH, self.catch, methods=_METHODS),
            Route(f"{_CATCH}silent/", self.catch_silently, methods=_METHODS),
            Route("/_hooks", self.add_hook, methods=["POST"]),
            Route("/_hooks/{account_id}/{hook_id}/off", self.turn_off, methods=["POST"]),
            Route("/_hooks/{account_id}/{hook_id}/on", self.turn_on, methods=["POST"]),
            Route("/_hooks/{account_id}/{hook_id}/drop", self.drop, methods=["POST"]),
        ]

    async def catch(self, request: Request) -> Response:
        return await self._catch(request, silent=False)

    async def catch_silently(self, request: Request) -> Response:
        return await self._catch(request, silent=True)

    async def _catch(self, request: Request, *, silent: bool) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "Request body too large")
        content_type = request.headers.get("content-type")
        data, raw_body = trigger_data(request.url.query, content_type or "", body)
        try:
            delivery = self.state.catch(
                request.path_params["account_id"],
                request.path_params["hook_id"],
                silent=silent,
                method=request.method,
                content_type=content_type,
                data=data,
                raw_body=raw_body,
                idempotency_key=request.headers.get("idempotency-key"),
            )
        except HookGoneError as gone:
            return _error(gone.status, "Gone" if gone.status == 410 else "Not Found")
        if silent:
            return Response(status_code=200)
        # Observed: Zapier sends one fresh UUID as all three ids of a delivery.
        return JSONResponse(
            {"attempt": delivery["id"], "id": delivery["id"], "request_id": delivery["id"], "status": "success"}
        )

    async def add_hook(self, request: Request) -> Response:
        try:
            new = _NewHook.model_validate(await request.json())
        except (ValueError, ValidationError):
            return _error(400, "send {account_id, hook_id}")
        self.state.add_hook(new.account_id, new.hook_id)
        return JSONResponse({"path": hook_path(new.account_id, new.hook_id)}, status_code=201)

    async def turn_off(self, request: Request) -> Response:
        return self._turn(request, on=False)

    async def turn_on(self, request: Request) -> Response:
        return self._turn(request, on=True)

    def _turn(self, request: Request, *, on: bool) -> Response:
        try:
            self.state.turn(request.path_params["account_id"], request.path_params["hook_id"], on=on)
        except KeyError:
            return _error(404, "no such hook")
        return Response(status_code=204)

    async def drop(self, request: Request) -> Response:
        try:
            drop = _Drop.model_validate(await request.json() if await request.body() else {})
        except (ValueError, ValidationError):
            return _error(400, "send {status: 404 | 410 | null}")
        try:
            self.state.drop(request.path_params["account_id"], request.path_params["hook_id"], drop.status)
        except KeyError:
            return _error(404, "no such hook")
        return Response(status_code=204)


def _fault(status: int, retry_after: float | None) -> Response:
    """An injected 429 (Zapier documents its rate limit's 429) or 5xx."""
    if status == 429:
        # unconfirmed: that Zapier's 429 carries Retry-After (the connector copes without it).
        seconds = retry_after or 1.0
        header = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        return _error(429, "Too Many Requests", {"Retry-After": header})
    return _error(status, "Service Unavailable" if status == 503 else "Internal Server Error")


def build_sandbox() -> Sandbox:
    """A fresh Zapier emulator: one sandbox account with one catch hook, its Zap on."""
    state = ZapierState()
    return Sandbox(name="zapier", state=state, routes=_Hooks(state).routes(), error=_fault)
