"""Paste-ready exports: the platforms' documented fields, and every URL answers on this server."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.tools import CATALOGUE

TARGETS = ["vapi", "retell", "elevenlabs", "bland", "openai", "anthropic"]
SLOW = {spec.name for spec in CATALOGUE if spec.wait_message}

# Documented tool-definition fields (shared/reference/voice-platforms.md): Vapi's
# FunctionToolWithToolCall / Server / ToolMessageStart, Retell's CustomTool.
VAPI_TOOL = {"type", "async", "function", "server", "messages", "strict", "rejectionPlan", "variableExtractionPlan"}
VAPI_SERVER = {"url", "timeoutSeconds", "headers", "credentialId", "backoffPlan", "staticIpAddressesEnabled"}
VAPI_MESSAGE = {"type", "content", "contents", "blocking", "conditions", "timingMilliseconds"}
RETELL_TOOL = {
    "type",
    "name",
    "url",
    "description",
    "method",
    "headers",
    "query_params",
    "parameters",
    "parameter_type",
    "args_at_root",
    "response_variables",
    "speak_during_execution",
    "speak_after_execution",
    "execution_message_description",
    "execution_message_type",
    "enable_typing_sound",
    "timeout_ms",
}
BLAND_RESERVED = {
    "input",
    "speak",
    "transfer",
    "switch",
    "wait",
    "finish",
    "press",
    "button",
    "say",
    "pause",
    "record",
    "play",
    "dial",
    "hang",
}


async def exported(http: httpx.AsyncClient, agent: CreatedAgent, target: str) -> dict[str, Any]:
    response = await http.get(f"/v1/export/{target}", headers={"Authorization": f"Bearer {agent.api_key}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def urls_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [url for value in node.values() for url in urls_in(value)]
    if isinstance(node, list):
        return [url for value in node for url in urls_in(value)]
    return [node] if isinstance(node, str) and node.startswith("http://") else []


@pytest.mark.parametrize("target", TARGETS)
async def test_every_export_covers_the_whole_catalogue_and_points_at_this_server(
    target: str, http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    export = await exported(http, agent, target)

    assert len(export["tools"]) == len(CATALOGUE)
    assert export["how_to_use"]
    urls = urls_in(export)
    assert urls
    assert all(url.startswith(services.settings.public_url) for url in urls)


@pytest.mark.parametrize("target", TARGETS)
async def test_every_url_in_an_export_resolves_on_this_server(
    target: str, http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    export = await exported(http, agent, target)
    paths = {urlsplit(url.replace("{name}", "check_availability")).path for url in urls_in(export)}

    for path in paths:
        response = await http.post(
            path,
            json={"message": {"type": "status-update"}},
            headers={"Authorization": f"Bearer {agent.api_key}"},
        )
        assert response.status_code not in (404, 405), f"{path} -> {response.status_code}"


async def test_the_vapi_export_uses_only_documented_fields_and_its_headers_authenticate(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    tools = (await exported(http, agent, "vapi"))["tools"]

    for tool in tools:
        assert set(tool) <= VAPI_TOOL
        assert set(tool["function"]) == {"name", "description", "parameters"}
        assert set(tool["server"]) <= VAPI_SERVER
        assert 1 <= tool["server"]["timeoutSeconds"] <= 300
        assert tool["function"]["parameters"]["type"] == "object"
        for message in tool.get("messages", []):
            assert set(message) <= VAPI_MESSAGE
            assert message["type"] == "request-start"
        assert ("messages" in tool) == (tool["function"]["name"] in SLOW)
    call = {
        "message": {
            "type": "tool-calls",
            "call": {"id": "c"},
            "toolCallList": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "find_contact", "arguments": '{"contact_phone": "+12125550142"}'},
                }
            ],
        }
    }
    answer = await http.post("/voice/vapi", json=call, headers=tools[0]["server"]["headers"])
    assert "result" in answer.json()["results"][0]


async def test_the_retell_export_uses_only_documented_fields_and_its_urls_run_the_tool(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    tools = (await exported(http, agent, "retell"))["tools"]

    for tool in tools:
        assert set(tool) <= RETELL_TOOL
        assert tool["type"] == "custom"
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool["name"])
        assert tool["parameters"]["type"] == "object"
        assert 1_000 <= tool["timeout_ms"] <= 600_000
        assert tool["speak_during_execution"] == (tool["name"] in SLOW)
    find = next(tool for tool in tools if tool["name"] == "find_contact")
    answer = await http.post(
        urlsplit(find["url"]).path,
        json={"name": "find_contact", "call": {"call_id": "r1"}, "args": {"contact_phone": "+12125550142"}},
        headers=find["headers"],
    )
    assert answer.status_code == 200
    assert answer.json()["found"] is False


async def test_the_elevenlabs_export_fills_call_context_from_system_variables(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    tools = (await exported(http, agent, "elevenlabs"))["tools"]

    for tool in tools:
        assert 5 <= tool["response_timeout_secs"] <= 120
        schema = tool["api_schema"]["request_body_schema"]
        assert schema["properties"]["_call_id"]["dynamic_variable"] == "system__conversation_id"
        assert schema["properties"]["_caller_number"]["dynamic_variable"] == "system__caller_id"
        assert tool["force_pre_tool_speech"] == (tool["name"] in SLOW)


async def test_the_bland_export_avoids_reserved_names_and_maps_speech(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    tools = (await exported(http, agent, "bland"))["tools"]

    for tool in tools:
        assert tool["name"] not in BLAND_RESERVED
        assert tool["response"] == {"speech": "$.speech"}
        assert 1_000 <= tool["timeout"] <= 60_000
        assert all(value == f"{{{{input.{name}}}}}" for name, value in tool["body"].items() if not name.startswith("_"))


async def test_an_unknown_export_is_a_validation_error(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.get("/v1/export/teams", headers={"Authorization": f"Bearer {agent.api_key}"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "target"


async def test_the_mcp_export_gives_the_http_endpoint_and_a_stdio_config_with_absolute_paths(
    http: httpx.AsyncClient, agent: CreatedAgent, services: Services
) -> None:
    response = await http.get("/v1/export/mcp", headers={"Authorization": f"Bearer {agent.api_key}"})

    assert response.status_code == 200
    body = response.json()
    assert body["http"]["url"] == f"{services.settings.public_url.rstrip('/')}/mcp"
    assert body["http"]["headers"] == {"Authorization": f"Bearer {agent.api_key}"}
    [(name, server)] = body["stdio"]["mcpServers"].items()
    assert name == "test-dental"
    assert server["args"] == ["mcp", "--agent", agent.agent.id]
    assert server["command"].startswith("/")
    assert server["command"].endswith("tool-server")
    assert server["env"]["TOOL_SERVER_HOME"].startswith("/")
    assert agent.api_key not in str(server)
