"""HTTP function calling: list the tools in OpenAI, Anthropic or MCP shape, and run one by name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from tool_server.agents.models import Agent
from tool_server.dispatch import CallInfo
from tool_server.errors import ErrorInfo, ToolError
from tool_server.json_text import NOT_JSON, loads_or_not_json
from tool_server.services import Services
from tool_server.tools.base import ToolSpec
from tool_server.transports.auth import authenticate_headers
from tool_server.transports.http_errors import STATUS, error_response
from tool_server.transports.schemas import render_tools

__all__ = ["build_tools_router"]

_MAX_HEADER_VALUE = 255


class _ErrorBody(BaseModel):
    error: ErrorInfo


class ToolList(BaseModel):
    format: Literal["openai", "anthropic", "mcp"]
    tools: list[dict[str, Any]]


def _header(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > _MAX_HEADER_VALUE:
        raise ToolError.invalid(name, f"header is longer than {_MAX_HEADER_VALUE} characters")
    return value.strip()


async def _arguments(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    parsed = loads_or_not_json(raw)
    if parsed is NOT_JSON:
        raise ToolError.invalid("body", "the body is not valid JSON (or is nested too deeply)")
    return parsed


async def current_agent(request: Request) -> Agent:
    """The agent owning the request's API key (401 UNAUTHORIZED otherwise)."""
    services: Services = request.app.state.services
    return await authenticate_headers(services.agents, request.headers)


CurrentAgent = Annotated[Agent, Depends(current_agent)]


def build_tools_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tools"])

    @router.get("/tools", response_model=ToolList, summary="List the agent's tools")
    async def list_tools(
        agent: CurrentAgent,
        schema_format: Annotated[Literal["openai", "anthropic", "mcp"], Query(alias="format")] = "openai",
    ) -> ToolList:
        return ToolList(format=schema_format, tools=render_tools(services.catalogue, schema_format))

    async def run_tool(name: str, request: Request, agent: Agent) -> Response:
        try:
            call = CallInfo(
                transport="http",
                call_id=_header(request, "X-Call-Id"),
                idempotency_key=_header(request, "Idempotency-Key"),
            )
            arguments = await _arguments(request)
        except ToolError as error:
            return error_response(error.info())
        outcome = await services.dispatcher.execute(agent, name, arguments, call)
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        if outcome.error is not None:
            return error_response(outcome.error, headers)
        return JSONResponse(outcome.result, headers=headers)

    error_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": _ErrorBody} for status in sorted(set(STATUS.values()))
    }

    def add_tool_route(spec: ToolSpec[Any, Any]) -> None:
        async def endpoint(request: Request, agent: CurrentAgent) -> Response:
            return await run_tool(spec.name, request, agent)

        router.add_api_route(
            f"/tools/{spec.name}",
            endpoint,
            methods=["POST"],
            name=spec.name,
            summary=spec.title,
            description=spec.full_description,
            responses={200: {"model": spec.output_model}, **error_responses},
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": spec.input_schema}}},
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
                    {"name": "X-Call-Id", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
            },
        )

    for spec in services.catalogue:
        add_tool_route(spec)

    @router.post("/tools/{name}", include_in_schema=False)
    async def unknown_tool(name: str, request: Request, agent: CurrentAgent) -> Response:
        return await run_tool(name, request, agent)

    return router
