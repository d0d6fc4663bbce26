"""Serving sandbox emulators on a real 127.0.0.1 socket, for connectors whose SDKs are synchronous."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import Mount

from integrations.common.sandbox import Sandbox
from tests.support.loopback import serve_on_loopback


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
    with serve_on_loopback(app, "sandbox-server") as base_url:
        yield ServedSandboxes(base_url, sandboxes)
