"""A local stand-in for an OpenAI-compatible chat-completions API, scriptable per test.

`POST /v1/chat/completions` answers with the next scripted `Reply` in the real response shape
(https://platform.openai.com/docs/api-reference/chat/object) and records every request it received,
so tests can assert what the SDK actually sent. With nothing scripted it answers 500 and tells the SDK
not to retry, so a test that forgot to script a reply fails rather than hangs.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import serve_on_loopback

__all__ = ["FakeOpenAI", "ReceivedRequest", "Reply", "serve_fake_openai"]

# A fixed `created` timestamp keeps responses deterministic.
_CREATED = 1_772_636_400


@dataclass(frozen=True)
class Reply:
    """One scripted answer: message `content` (any string, JSON or not), an HTTP error `status`, a
    `delay_seconds` before answering (cut short when the client hangs up), a `refusal`, a
    `finish_reason`, or a `raw_body` sent instead of a chat completion."""

    content: str | None = None
    status: int = 200
    delay_seconds: float = 0.0
    refusal: str | None = None
    finish_reason: str = "stop"
    raw_body: str | None = None

    @classmethod
    def answer(cls, data: Mapping[str, Any]) -> Reply:
        """The model's structured answer, serialized as the message content."""
        return cls(content=json.dumps(data))

    @classmethod
    def error(cls, status: int) -> Reply:
        """An HTTP error in OpenAI's error shape."""
        return cls(status=status)

    @classmethod
    def stalled(cls, seconds: float) -> Reply:
        """A valid-looking answer that arrives only after `seconds` (for client timeouts)."""
        return cls(content="{}", delay_seconds=seconds)


@dataclass(frozen=True)
class ReceivedRequest:
    """What the client sent: lower-cased headers and the parsed JSON body."""

    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def message(self, role: str) -> str:
        """The content of the first message with `role`."""
        return next(str(message["content"]) for message in self.messages if message["role"] == role)


@dataclass
class FakeOpenAI:
    """The scripted server's state. Shared with the server thread, hence the lock."""

    _script: deque[Reply] = field(default_factory=deque)
    _received: list[ReceivedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order, one per request."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._received.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def app(self) -> Starlette:
        """The ASGI app serving `POST /v1/chat/completions`."""
        return Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])

    async def _completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return _error(400, "invalid_request_error", "We could not parse the JSON body of your request.")
        with self._lock:
            self._received.append(ReceivedRequest({k.lower(): v for k, v in request.headers.items()}, body))
            reply = self._script.popleft() if self._script else None
            number = len(self._received)
        if reply is None:
            return _error(500, "server_error", "fake_openai: no reply scripted for this request", retry=False)
        if reply.delay_seconds:
            # Once the body is read, receive() returns only when the client disconnects: a client
            # timeout ends the wait at once instead of holding the server for the whole delay.
            with anyio.move_on_after(reply.delay_seconds):
                await request.receive()
        if reply.status != 200:
            return _error(reply.status, "server_error", "The server had an error while processing your request.")
        if reply.raw_body is not None:
            return Response(reply.raw_body, media_type="application/json")
        return JSONResponse(
            {
                "id": f"chatcmpl-fake{number}",
                "object": "chat.completion",
                "created": _CREATED,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }
        )


def _error(status: int, kind: str, message: str, *, retry: bool = True) -> JSONResponse:
    # retry-after-ms is a header OpenAI itself sends; 1 ms keeps the SDK's one retry from sleeping
    # its default half second.
    headers = {"retry-after-ms": "1"} if retry else {"x-should-retry": "false"}
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status, headers=headers
    )


@contextlib.contextmanager
def serve_fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    """Serve a fresh `FakeOpenAI` on 127.0.0.1 (a free port) in a background thread.

    Yields the fake and its base URL, e.g. http://127.0.0.1:PORT/v1, as the SDK's `base_url`.
    """
    fake = FakeOpenAI()
    with serve_on_loopback(fake.app(), "fake-openai") as base_url:
        yield fake, f"{base_url}/v1"
