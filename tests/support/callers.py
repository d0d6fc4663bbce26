"""One way to call a tool per transport, all answering the same `Outcome`.

Tool tests take the `caller` fixture and run once per transport: a direct dispatcher call,
HTTP function calling, and MCP through the official Python client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tool_server.agents.models import Agent
from tool_server.dispatch import CallInfo, Dispatcher

BASE_URL = "http://127.0.0.1:8000"


@dataclass
class Outcome:
    """A tool call's answer, whatever carried it."""

    transport: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def code(self) -> str | None:
        return None if self.error is None else self.error["code"]

    @property
    def field(self) -> str | None:
        return None if self.error is None else self.error.get("field")

    @property
    def details(self) -> dict[str, Any]:
        return {} if self.error is None else dict(self.error.get("details") or {})

    def unwrap(self) -> dict[str, Any]:
        assert self.error is None, f"{self.transport}: expected success, got {self.error}"
        assert self.result is not None
        return self.result


class ToolCaller(Protocol):
    transport: str

    async def call(
        self, tool: str, arguments: Any, *, call_id: str | None = None, idempotency_key: str | None = None
    ) -> Outcome: ...


@dataclass
class DirectCaller:
    dispatcher: Dispatcher
    agent: Agent
    transport: str = "direct"

    async def call(
        self, tool: str, arguments: Any, *, call_id: str | None = None, idempotency_key: str | None = None
    ) -> Outcome:
        outcome = await self.dispatcher.execute(
            self.agent, tool, arguments, CallInfo("direct", call_id=call_id, idempotency_key=idempotency_key)
        )
        error = None if outcome.error is None else outcome.error.model_dump(mode="json")
        return Outcome("direct", result=outcome.result, error=error)


def _headers(api_key: str, call_id: str | None, idempotency_key: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    if call_id:
        headers["X-Call-Id"] = call_id
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


@dataclass
class HttpCaller:
    client: httpx.AsyncClient
    api_key: str
    transport: str = "http"

    async def call(
        self, tool: str, arguments: Any, *, call_id: str | None = None, idempotency_key: str | None = None
    ) -> Outcome:
        response = await self.client.post(
            f"/v1/tools/{tool}", json=arguments, headers=_headers(self.api_key, call_id, idempotency_key)
        )
        body = response.json()
        if response.status_code == 200:
            return Outcome("http", result=body, status=200)
        assert 400 <= response.status_code < 600, body
        assert "error" in body, body
        return Outcome("http", error=body["error"], status=response.status_code)


@dataclass
class McpCaller:
    """MCP over streamable HTTP through `mcp.Client`.

    Each call opens its own client (a discover or initialize round trip, then the call), so the
    client's task group lives and dies inside the calling task.
    """

    app: Any
    api_key: str
    mode: str = "auto"
    transport: str = "mcp"

    @contextlib.asynccontextmanager
    async def client(self, call_id: str | None = None, idempotency_key: str | None = None) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.app),
            base_url=BASE_URL,
            headers=_headers(self.api_key, call_id, idempotency_key),
        ) as http:
            transport = streamable_http_client(f"{BASE_URL}/mcp", http_client=http)
            async with Client(transport, mode=self.mode) as client:  # type: ignore[arg-type]
                yield client

    async def call(
        self, tool: str, arguments: Any, *, call_id: str | None = None, idempotency_key: str | None = None
    ) -> Outcome:
        async with self.client(call_id, idempotency_key) as client:
            result = await client.call_tool(tool, arguments)
        structured = result.structured_content
        assert isinstance(structured, dict), result
        if result.is_error:
            return Outcome("mcp", error=structured["error"])
        return Outcome("mcp", result=structured)
