"""An emulator restarted from its state file, as the server's persisted emulators are across a restart.

Two emulators of one provider are served at the same mount (`/sandbox/<provider>`) on two
127.0.0.1 sockets: `before` takes the test's writes, then `restart()` saves its state with
`save()` and starts `after` from that file with `persist_to`, as the next process would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from integrations.common.sandbox import Sandbox
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes

__all__ = ["Restart", "restartable"]


@dataclass
class Restart:
    """Two emulators of one provider: the one before a restart, and the one after it."""

    name: str
    served_before: ServedSandboxes
    served_after: ServedSandboxes
    path: Path

    @property
    def before(self) -> Sandbox:
        return self.served_before.sandboxes[self.name]

    @property
    def after(self) -> Sandbox:
        return self.served_after.sandboxes[self.name]

    @property
    def url_before(self) -> str:
        return self.served_before.url(self.name)

    @property
    def url_after(self) -> str:
        return self.served_after.url(self.name)

    def restart(self) -> None:
        """`before` saves its state to the file; `after` starts from that file."""
        self.before.persist_to(self.path)
        self.before.save()
        self.after.persist_to(self.path)

    async def dumps(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """`GET /_state` of `before` and of `after`."""
        async with httpx.AsyncClient() as client:
            before = await client.get(f"{self.url_before}/_state")
            after = await client.get(f"{self.url_after}/_state")
        assert (before.status_code, after.status_code) == (200, 200)
        return before.json(), after.json()


@contextlib.contextmanager
def restartable(name: str, build: Callable[[], Sandbox], path: Path) -> Iterator[Restart]:
    """Two fresh emulators from `build`, served until the block ends, restarting through `path`."""
    with serve_sandboxes({name: build()}) as before, serve_sandboxes({name: build()}) as after:
        yield Restart(name, before, after, path)
