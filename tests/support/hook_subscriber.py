"""A REST-hook subscriber (a Zapier, Make or n8n stand-in) on a real 127.0.0.1 socket.

It answers each POST with the next status of its script (200 once the script runs out) and keeps
every request it got: path, headers and raw body, so tests can check signatures.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


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
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="hook-subscriber", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("hook subscriber did not start")
        time.sleep(0.01)
    subscriber.base_url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield subscriber
    finally:
        server.should_exit = True
        thread.join(timeout=10)
