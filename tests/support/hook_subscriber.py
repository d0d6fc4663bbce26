"""A REST-hook subscriber (a Zapier, Make or n8n stand-in) on a real 127.0.0.1 socket.

It answers each POST with the next status of its script (200 once the script runs out) and keeps
every request it got: path, headers and raw body, so tests can check signatures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import serve_on_loopback


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Subscriber:
    base_url: str = ""
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def url(self, path: str = "hook") -> str:
        return f"{self.base_url}/{path}"

    def accepted(self) -> list[Received]:
        return [item for item in self.received if 200 <= item.answered < 300]


@contextlib.contextmanager
def serve_subscriber() -> Iterator[Subscriber]:
    subscriber = Subscriber()

    async def receive(request: Request) -> Response:
        status = subscriber.script.pop(0) if subscriber.script else 200
        subscriber.received.append(Received(request.url.path, dict(request.headers), await request.body(), status))
        return JSONResponse({"ok": status < 300}, status_code=status)

    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    with serve_on_loopback(app, "hook-subscriber") as base_url:
        subscriber.base_url = base_url
        yield subscriber
