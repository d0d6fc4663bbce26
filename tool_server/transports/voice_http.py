"""Voice platforms' tool calls mid-call: Vapi's server messages, Retell custom functions, and the
ElevenLabs, Bland and Synthflow tools.

Tool calls authenticate with the agent's key (`Authorization: Bearer` or `X-Api-Key`, which every
platform can send as a custom header) and, when the agent stored a secret for the platform, with
the platform's own signature too. A failure is a 401 and nothing runs. Vapi's one server URL also
takes its end-of-call report, recorded like the other platforms' webhooks (`calls_http`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tool_server.agents.models import Agent
from tool_server.dispatch import CallInfo, ToolOutcome
from tool_server.errors import ErrorCode, ToolError
from tool_server.services import Services
from tool_server.transports.auth import authenticate_headers
from tool_server.transports.call_recording import CallRecorder, json_body
from tool_server.transports.http_errors import error_response
from tool_server.voice import retell, vapi
from tool_server.voice.signatures import SignatureError, verify_retell, verify_vapi

__all__ = ["build_voice_router"]

logger = logging.getLogger(__name__)

ToolPlatform = Literal["elevenlabs", "bland", "synthflow"]


def _safe_outcome(tool: str, outcome: ToolOutcome | BaseException) -> ToolOutcome:
    """A call's outcome, or INTERNAL_ERROR for that call alone when running it raised."""
    if isinstance(outcome, ToolOutcome):
        return outcome
    logger.error("tool call %s in a batch raised", tool[:64], exc_info=outcome)
    error = ToolError(ErrorCode.INTERNAL_ERROR, "the call failed unexpectedly; it was logged")
    return ToolOutcome(tool=tool[:64], error=error.info())


def _tool_answer(outcome: ToolOutcome) -> Response:
    """What a platform hands its LLM: the result, or the error with the sentence to say (HTTP 200)."""
    if outcome.error is not None:
        error = outcome.error.model_dump(mode="json", include={"code", "message", "speech", "field"})
        return JSONResponse({"error": error, "speech": outcome.error.speech})
    return JSONResponse(outcome.result)


def build_voice_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["voice platforms"])
    clock = services.clock
    recorder = CallRecorder(services)

    async def verify_tool_call(agent: Agent, platform: str, body: bytes, request: Request) -> None:
        secret = await services.platform_secrets.get(agent.id, platform)
        if secret is None:
            return
        now = clock()
        try:
            if platform == "retell":
                verify_retell(secret, body, request.headers.get("x-retell-signature"), int(now.timestamp() * 1000))
            elif platform == "vapi":
                verify_vapi(secret, body, {k.lower(): v for k, v in request.headers.items()}, int(now.timestamp()))
        except SignatureError as error:
            raise ToolError(ErrorCode.UNAUTHORIZED, str(error)) from None

    async def agent_for_tools(request: Request, platform: str, body: bytes) -> Agent:
        agent = await authenticate_headers(services.agents, request.headers)
        await verify_tool_call(agent, platform, body, request)
        return agent

    # -- tool calls during a call -------------------------------------------------------------

    @router.post("/voice/vapi", summary="Every Vapi server message (tool-calls, end-of-call-report, …)")
    async def vapi_messages(request: Request) -> Response:
        try:
            body = await request.body()
            agent = await agent_for_tools(request, "vapi", body)
            message = vapi.as_message(json_body(body))
        except ToolError as error:
            return error_response(error.info())
        kind = message.get("type")
        if kind == "tool-calls":
            try:
                calls = vapi.tool_calls(message)
            except ToolError as error:
                return error_response(error.info())
            call_id, caller = vapi.call_context(message)
            info = CallInfo(transport="vapi", call_id=call_id, caller_phone=caller)

            async def run(tool_call: vapi.ToolCall) -> ToolOutcome:
                arguments: Any = tool_call.arguments if tool_call.arguments is not None else "unparseable"
                return await services.dispatcher.execute(agent, tool_call.name, arguments, info)

            # Parallel calls run concurrently; each keeps its own result whatever another one does,
            # and results keep the order of the calls.
            outcomes = await asyncio.gather(*(run(c) for c in calls), return_exceptions=True)
            results = [
                vapi.result_entry(tool_call, _safe_outcome(tool_call.name, outcome))
                for tool_call, outcome in zip(calls, outcomes, strict=True)
            ]
            return JSONResponse({"results": results})
        if kind == "end-of-call-report":
            return await recorder.record(agent, "end-of-call-report", message, vapi.normalize)
        if kind in vapi.IGNORED_MESSAGES:
            return JSONResponse({})
        shown = str(kind)[:64] if kind is not None else "nothing"
        return error_response(
            ToolError.invalid("message.type", f"{shown} is not a Vapi server message this endpoint takes").info()
        )

    async def retell_function(tool: str, request: Request) -> Response:
        try:
            body = await request.body()
            agent = await agent_for_tools(request, "retell", body)
            arguments, call_id, caller = retell.function_call(json_body(body))
        except ToolError as error:
            return error_response(error.info())
        info = CallInfo(
            transport="retell",
            call_id=call_id or request.headers.get("x-call-id"),
            caller_phone=caller or request.headers.get("x-caller-number"),
        )
        return _tool_answer(await services.dispatcher.execute(agent, tool, arguments, info))

    async def platform_tool(
        platform: Literal["elevenlabs", "bland", "synthflow"], tool: str, request: Request
    ) -> Response:
        try:
            body = await request.body()
            agent = await agent_for_tools(request, platform, body)
            parsed = json_body(body)
            if not isinstance(parsed, dict):
                raise ToolError.invalid("body", "the body must be a JSON object of the tool's arguments")
        except ToolError as error:
            return error_response(error.info())
        arguments = {**dict(request.query_params), **parsed}
        call_id = arguments.pop("_call_id", None) or request.headers.get("x-call-id")
        caller = arguments.pop("_caller_number", None) or request.headers.get("x-caller-number")
        info = CallInfo(transport=platform, call_id=_text(call_id), caller_phone=_text(caller))
        return _tool_answer(await services.dispatcher.execute(agent, tool, arguments, info))

    # Platforms let builders pick the method; POST is documented, the others behave the same.
    for path, endpoint, summary in (
        (
            "/voice/retell/functions/{tool}",
            retell_function,
            "A Retell custom function ({name, call, args} or args at the root)",
        ),
        ("/voice/{platform}/tools/{tool}", platform_tool, "An ElevenLabs server tool, Bland tool or Synthflow action"),
    ):
        router.add_api_route(path, endpoint, methods=["POST"], summary=summary)
        router.add_api_route(path, endpoint, methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)

    return router


def _text(value: Any) -> str | None:
    return str(value)[:255] if value not in (None, "") else None
