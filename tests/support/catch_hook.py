"""A local stand-in for a Zapier catch hook or a Slack incoming webhook, on a real 127.0.0.1 socket."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import serve_on_loopback


@dataclass
class CatchHook:
    """Answers `status` to every POST and keeps what it was sent (body and Idempotency-Key)."""

    base_url: str = ""
    status: int = 200
    received: list[tuple[str, str | None, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def bodies(self, path: str) -> list[Any]:
        return [body for where, _key, body in self.received if where == f"/{path}"]


@contextlib.contextmanager
def serve_catch_hook() -> Iterator[CatchHook]:
    hook = CatchHook()

    async def receive(request: Request) -> Response:
        if hook.status >= 400:
            return JSONResponse({"status": "error"}, status_code=hook.status)
        hook.received.append(
            (request.url.path, request.headers.get("idempotency-key"), json.loads(await request.body()))
        )
        return JSONResponse({"status": "success"})

    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    with serve_on_loopback(app, "catch-hook") as base_url:
        hook.base_url = base_url
        yield hook
