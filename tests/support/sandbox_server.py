"""Serving sandbox emulators on a real 127.0.0.1 socket, for connectors whose SDKs are synchronous."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from integrations.common.sandbox import Sandbox


@dataclass
class ServedSandboxes:
    base_url: str
    sandboxes: Mapping[str, Sandbox]

    def url(self, name: str) -> str:
        """The emulator's base URL, e.g. http://127.0.0.1:PORT/sandbox/stripe."""
        return f"{self.base_url}/sandbox/{name}"


@contextlib.contextmanager
def serve_sandboxes(sandboxes: Mapping[str, Sandbox]) -> Iterator[ServedSandboxes]:
    """Run the emulators under /sandbox/<name> on a free port in a background thread."""
    app = Starlette(routes=[Mount(f"/sandbox/{name}", app=sandbox) for name, sandbox in sandboxes.items()])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ServedSandboxes(f"http://127.0.0.1:{port}", sandboxes)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
