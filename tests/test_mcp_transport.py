"""MCP specifics: both protocol eras, flat arguments, isError results, auth, stdio."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import httpx2
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import MONDAY
from tests.support.callers import BASE_URL
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.tools import CATALOGUE


def _http2(app: Any, headers: dict[str, str]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL, headers=headers)


async def test_the_2025_11_25_handshake_works_as_pipecat_and_livekit_use_it(app: Any, agent: CreatedAgent) -> None:
    async with (
        _http2(app, {"Authorization": f"Bearer {agent.api_key}"}) as http,
        streamable_http_client(f"{BASE_URL}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        initialized = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("check_availability", {"date": MONDAY, "max_slots": 2})

    assert initialized.protocol_version == "2025-11-25"
    assert len(tools.tools) == len(CATALOGUE)
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["slots"][0]["start"] == "2026-03-09T09:00:00-04:00"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_both_eras_list_tools_with_schemas_annotations_and_flat_arguments(
    app: Any, agent: CreatedAgent, mode: str
) -> None:
    async with (
        _http2(app, {"Authorization": f"Bearer {agent.api_key}"}) as http,
        Client(streamable_http_client(f"{BASE_URL}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        listed = (await client.list_tools()).tools

    book = next(tool for tool in listed if tool.name == "book_appointment")
    assert set(book.input_schema["properties"]) >= {"start", "caller_name", "caller_phone"}
    assert "req" not in book.input_schema["properties"]
    assert "$ref" not in json.dumps(book.input_schema)
    assert book.output_schema is not None
    assert book.output_schema["properties"]["speech"]["type"] == "string"
    assert book.annotations is not None
    assert (book.annotations.read_only_hint, book.annotations.destructive_hint) == (False, False)
    assert book.annotations.idempotent_hint is True
    cancel = next(tool for tool in listed if tool.name == "cancel_appointment")
    assert cancel.annotations is not None
    assert cancel.annotations.destructive_hint is True
    assert all(tool.description for tool in listed)


async def test_the_2026_07_28_wire_carries_structured_content_and_is_error_in_camel_case(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
    }
    headers = {
        "Authorization": f"Bearer {agent.api_key}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "book_appointment",
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "book_appointment", "arguments": {"start": "2026-03-01T10:00"}, "_meta": meta},
    }

    response = await http.post("/mcp", json=body, headers=headers)

    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["code"] == "VALIDATION_ERROR"
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


async def test_a_tool_failure_is_an_is_error_result_with_code_and_speech(app: Any, agent: CreatedAgent) -> None:
    async with (
        _http2(app, {"Authorization": f"Bearer {agent.api_key}"}) as http,
        Client(streamable_http_client(f"{BASE_URL}/mcp", http_client=http)) as client,  # type: ignore[arg-type]
    ):
        unknown = await client.call_tool("teleport", {})
        wrong = await client.call_tool("check_availability", {"date": 12})

    assert unknown.is_error is True
    assert unknown.structured_content is not None
    assert unknown.structured_content["error"]["code"] == "UNKNOWN_TOOL"
    assert wrong.is_error is True
    assert wrong.structured_content is not None
    assert wrong.structured_content["error"]["code"] == "VALIDATION_ERROR"
    assert wrong.structured_content["error"]["field"] == "date"
    assert wrong.structured_content["error"]["speech"]


@pytest.mark.parametrize("authorization", [None, "Bearer tsk_wrong"], ids=["no key", "wrong key"])
async def test_mcp_without_a_valid_key_is_401_and_nothing_runs(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    response = await http.post("/mcp", json=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_mcp_refuses_a_foreign_host_header(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={"Authorization": f"Bearer {agent.api_key}", "Host": "evil.example", "Accept": "application/json"},
    )

    assert response.status_code == 421


async def test_stdio_serves_the_same_catalogue_for_one_agent(
    services: Services, agent: CreatedAgent, database_url: str
) -> None:
    executable = Path(sys.executable).with_name("tool-server")
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": database_url}
    parameters = StdioServerParameters(
        command=str(executable), args=["mcp", "--agent", agent.agent.id], env=environment
    )

    # The subprocess runs on the real clock: book a Monday two or three weeks from today.
    today = datetime.now(ZoneInfo("America/New_York")).date()
    monday = today + timedelta(days=14 + (7 - today.weekday()) % 7)
    async with Client(parameters) as client:
        tools = await client.list_tools()
        booked = await client.call_tool(
            "book_appointment", {"start": f"{monday}T10:00", "caller_name": "Jo", "caller_phone": "+12125550142"}
        )
        found = await client.call_tool("find_appointments", {"caller_phone": "+12125550142"})

    assert len(tools.tools) == len(CATALOGUE)
    assert booked.is_error is False
    assert found.structured_content is not None
    assert [a["start"][:16] for a in found.structured_content["appointments"]] == [f"{monday}T10:00"]


@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
async def test_the_endpoint_answers_with_or_without_a_trailing_slash(
    http: httpx.AsyncClient, agent: CreatedAgent, path: str
) -> None:
    response = await http.post(
        path,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        headers={"Authorization": f"Bearer {agent.api_key}", "Accept": "application/json, text/event-stream"},
    )

    assert response.status_code == 200
    assert response.json()["result"]["protocolVersion"] == "2025-11-25"
