"""The kit every sandbox emulator is built on.

An emulator is a Starlette app that speaks one provider's real paths, bodies, status codes and
error shapes over in-memory state. This kit adds what every emulator shares:

- fault injection, switchable per test: 429 with Retry-After, 5xx, slow answers, an expired
  access token, a revoked refresh token (`Fault`);
- a log of every request it received, so tests can check each one against the provider's spec;
- control routes next to the provider's own: `GET /_state` (a JSON dump of the in-memory
  state), `GET /_requests`, `POST /_faults`, `DELETE /_faults`, `POST /_reset`;
- persistence, when the server asks for it (`persist_to`): the state is loaded from a JSON file
  at start and saved there shortly after every request that may change it, so an emulator keeps
  its world across restarts the way the real provider does.

Faults are answered in the provider's own error format, which each emulator supplies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

__all__ = ["ContactSeeding", "ErrorFormatter", "Fault", "RecordedRequest", "Sandbox", "SandboxState"]

logger = logging.getLogger(__name__)

# Changes are saved this long after the first one, so a burst of requests costs one write.
_SAVE_DELAY_SECONDS = 0.25

FaultKind = Literal["rate_limit", "server_error", "slow", "expire_access_tokens", "revoke_refresh_tokens"]


class Fault(BaseModel):
    """One injected misbehaviour.

    `times` is how many matching requests it affects (0 = until cleared). `path` limits it to
    request paths containing that text, `method` to one HTTP method. Token faults act on the
    state once, immediately.
    """

    kind: FaultKind
    times: int = Field(default=1, ge=0)
    path: str | None = None
    method: str | None = None
    status: int = Field(default=503, ge=500, le=599)
    retry_after: float = Field(default=1.0, ge=0)
    seconds: float = Field(default=1.0, ge=0)


@dataclass
class RecordedRequest:
    """A request as the emulator received it: what the spec tests check."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query, "body": self.body}


class SandboxState(Protocol):
    """In-memory provider state. Token faults call the two token methods when the provider has OAuth."""

    def dump(self) -> dict[str, Any]:
        """What `GET /_state` shows."""
        ...

    def reset(self) -> None: ...

    def expire_access_tokens(self) -> None: ...

    def revoke_refresh_tokens(self) -> None: ...

    def snapshot(self) -> dict[str, Any]:
        """Everything the state holds (tokens and counters included), as JSON-compatible data that
        shares nothing with the live state (it is serialized on another thread)."""
        ...

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Replace the state with one `snapshot` returned. Raises ValueError, KeyError or TypeError
        when the snapshot is not one this state wrote."""
        ...


@runtime_checkable
class ContactSeeding(Protocol):
    """A CRM emulator's state that can hold a contact someone else typed in, exactly as typed.

    The contract suite seeds phones the way a business's staff wrote them ("(415) 555-0123",
    "415.555.0123", "+1 415 555 0123") and checks the connector finds each one.
    """

    def seed_contact(self, *, name: str, phone: str | None = None, email: str | None = None) -> str:
        """Store a contact with these fields verbatim (no normalizing, no uniqueness check); its id."""
        ...


class ErrorFormatter(Protocol):
    """The provider's own error answer for an injected 429 or 5xx."""

    def __call__(self, status: int, retry_after: float | None) -> Response: ...


@dataclass
class Sandbox:
    """An emulator: provider routes + state + faults + request log, as one ASGI app."""

    name: str
    state: SandboxState
    routes: Sequence[BaseRoute]
    error: ErrorFormatter
    # Paths never faulted (token endpoints stay reachable unless a token fault says otherwise).
    exempt_paths: tuple[str, ...] = ()
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    persist_path: Path | None = None
    _save_pending: bool = field(default=False, init=False, repr=False)
    # Snapshots are numbered as taken; the file only ever moves to a later one (see `_write`).
    _snapshots_taken: int = field(default=0, init=False, repr=False)
    _snapshot_written: int = field(default=0, init=False, repr=False)
    _take_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _write_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        control: list[BaseRoute] = [
            Route("/_state", self._state, methods=["GET"]),
            Route("/_requests", self._requests, methods=["GET"]),
            Route("/_faults", self._add_fault, methods=["POST"]),
            Route("/_faults", self._clear_faults, methods=["DELETE"]),
            Route("/_reset", self._reset, methods=["POST"]),
        ]
        self._app = Starlette(routes=[*control, *self.routes])

    # -- what tests call directly -------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        if fault.kind == "expire_access_tokens":
            self.state.expire_access_tokens()
        elif fault.kind == "revoke_refresh_tokens":
            self.state.revoke_refresh_tokens()
        else:
            self.faults.append(fault)

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.requests.clear()

    def persist_to(self, path: Path) -> None:
        """Keep the state in `path` (JSON, readable by the owner only): load it now, save every change.

        A file this emulator cannot read back (hand-edited, or from an incompatible version) is
        set aside as `<name>.unreadable` and the emulator starts empty.
        """
        self.persist_path = path
        if not path.exists():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(saved, dict):
                raise TypeError(f"a snapshot is a JSON object, not {type(saved).__name__}")
            self.state.restore(saved)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("sandbox %s: could not restore %s (%s); starting empty", self.name, path, error)
            self.state.reset()
            try:
                path.replace(path.with_name(f"{path.name}.unreadable"))
            except OSError as moving:
                # A read-only folder: keep serving, empty and unpersisted, rather than fail the server.
                logger.warning("sandbox %s: could not set %s aside (%s); not persisting", self.name, path, moving)
                self.persist_path = None

    def save(self) -> None:
        """Write the state to its file now (atomically). Does nothing when it is not persisted."""
        if self.persist_path is not None:
            self._write(self.persist_path, *self._take_snapshot())

    def provider_requests(self) -> list[RecordedRequest]:
        """Requests to the provider's own routes (control routes excluded)."""
        return [r for r in self.requests if not r.path.startswith("/_")]

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send)
        finally:
            if scope["method"] != "GET":
                self._schedule_save()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _local_path(scope)
        if path.startswith("/_"):
            await self._app(scope, receive, send)
            return
        body = await _read_body(receive)
        request = Request(scope)
        self.requests.append(
            RecordedRequest(
                method=scope["method"],
                path=path,
                query={k: request.query_params.getlist(k) for k in request.query_params},
                headers={k.lower(): v for k, v in request.headers.items()},
                body=_decode(body, request.headers.get("content-type", "")),
            )
        )
        fault = self._take_fault(scope["method"], path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "rate_limit":
                await self.error(429, fault.retry_after)(scope, _replay(body), send)
                return
            elif fault.kind == "server_error":
                await self.error(fault.status, None)(scope, _replay(body), send)
                return
        await self._app(scope, _replay(body), send)

    def _schedule_save(self) -> None:
        """Save shortly after this request: the snapshot is taken on the loop, written on a thread."""
        if self.persist_path is None or self._save_pending:
            return
        self._save_pending = True
        loop = asyncio.get_running_loop()

        def save_soon() -> None:
            self._save_pending = False
            path = self.persist_path
            if path is not None:
                loop.run_in_executor(None, self._write, path, *self._take_snapshot())

        loop.call_later(_SAVE_DELAY_SECONDS, save_soon)

    def _take_snapshot(self) -> tuple[int, dict[str, Any]]:
        with self._take_lock:
            self._snapshots_taken += 1
            return self._snapshots_taken, self.state.snapshot()

    def _write(self, path: Path, taken: int, snapshot: dict[str, Any]) -> None:
        # Writes run on pool threads (and `save()` on the caller's): one at a time, and a snapshot
        # taken before the one already on disk is dropped, so an older state never replaces a newer.
        with self._write_lock:
            if taken > self._snapshot_written:
                _write_snapshot(path, snapshot)
                self._snapshot_written = taken

    def _take_fault(self, method: str, path: str) -> Fault | None:
        if any(path.startswith(exempt) for exempt in self.exempt_paths):
            return None
        for fault in self.faults:
            if (fault.path is None or fault.path in path) and (fault.method is None or fault.method == method):
                if fault.times == 1:
                    self.faults.remove(fault)
                elif fault.times > 1:
                    fault.times -= 1
                return fault
        return None

    # -- control routes --------------------------------------------------------------------------

    async def _state(self, _request: Request) -> Response:
        return JSONResponse(self.state.dump())

    async def _requests(self, _request: Request) -> Response:
        return JSONResponse([r.as_json() for r in self.provider_requests()])

    async def _add_fault(self, request: Request) -> Response:
        fault = Fault.model_validate(await request.json())
        self.inject(fault)
        return JSONResponse(fault.model_dump(), status_code=201)

    async def _clear_faults(self, _request: Request) -> Response:
        self.faults.clear()
        return Response(status_code=204)

    async def _reset(self, _request: Request) -> Response:
        self.reset()
        return Response(status_code=204)


def _write_snapshot(path: Path, snapshot: dict[str, Any]) -> None:
    try:
        text = json.dumps(snapshot, separators=(",", ":"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("could not save sandbox state to %s: %s", path, error)


def _local_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and sets root_path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


def _decode(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if "json" in content_type:
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")
    if "x-www-form-urlencoded" in content_type:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        form: dict[str, Any] = {}
        for key, value in pairs:
            form.setdefault(key, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    return body.decode("utf-8", "replace")
