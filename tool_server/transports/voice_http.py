"""Voice platforms over HTTP: tool calls mid-call, call-completed webhooks, call records.

Tool calls authenticate with the agent's key (`Authorization: Bearer` or `X-Api-Key`, which every
platform can send as a custom header) and, when the agent stored a secret for the platform, with
the platform's own signature too. Webhooks name the agent in the path and must carry the
platform's signature over the raw body. A failure is a 401 and nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tool_server.agents.models import Agent
from tool_server.calls.models import CallRecord
from tool_server.dispatch import CallInfo, ToolOutcome
from tool_server.errors import ErrorCode, ToolError
from tool_server.json_text import NOT_JSON, loads_or_not_json
from tool_server.mcp_config import find_executable, mcp_client_config, server_name
from tool_server.phones import normalize_phone
from tool_server.services import Services
from tool_server.text_checks import without_control_characters
from tool_server.transports.auth import api_key_from_headers, authenticate_headers
from tool_server.transports.http_api import CurrentAgent
from tool_server.transports.http_errors import error_response
from tool_server.voice import bland, elevenlabs, generic, retell, synthflow, vapi
from tool_server.voice.exports import EXPORTS, export
from tool_server.voice.parsing import as_dict
from tool_server.voice.platform_secrets import PLATFORMS, Platform
from tool_server.voice.signatures import (
    SignatureError,
    verify_bland,
    verify_elevenlabs,
    verify_retell,
    verify_synthflow,
    verify_vapi,
)

__all__ = ["build_voice_router"]

logger = logging.getLogger(__name__)

_META_KEYS = ("_call_id", "_caller_number")


ToolPlatform = Literal["elevenlabs", "bland", "synthflow"]


class PlatformSecret(BaseModel):
    secret: str = Field(min_length=8, max_length=512, description="The platform's signing secret or API key.")


Normalizer = Callable[[Any], CallRecord]


def _json(body: bytes) -> Any:
    if not body.strip():
        return {}
    parsed = loads_or_not_json(body)
    if parsed is NOT_JSON:
        raise ToolError.invalid("body", "the body is not valid JSON (or is nested too deeply)")
    return parsed


def _normalized(payload: Any, normalize: Normalizer, phone_region: str, *, strict: bool) -> tuple[Any, CallRecord]:
    """The payload without control characters, and the call record read from it.

    A platform's payload is cleaned before it is read (the caller cannot fix the platform's
    report); a `strict` one (our own `/v1/calls` shape) is read as sent, so control characters
    are refused with the field named.
    """
    cleaned = without_control_characters(payload)
    try:
        record = normalize(payload if strict else cleaned)
    except ToolError:
        raise
    except Exception as error:
        # A platform payload of an unexpected shape is refused, never a 500; the log shows where.
        logger.warning("could not read a call report (%s)", type(error).__name__, exc_info=error)
        raise ToolError.invalid("body", "the body is not a call report of the documented shape") from None
    if record.caller_phone:
        # A number that does not parse is kept as the platform reported it.
        with contextlib.suppress(ToolError):
            phone = normalize_phone(record.caller_phone[:64], phone_region, "caller_phone")
            record = record.model_copy(update={"caller_phone": phone})
    return cleaned, record


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

    async def record(
        agent: Agent, event: str, payload: Any, normalize: Normalizer, *, final: bool = True, strict: bool = False
    ) -> Response:
        """Store one platform event and start the post-call sync when it is the call's last word.

        Cleaning and normalizing a payload of up to a megabyte is CPU work: it runs on a thread.
        """
        try:
            cleaned, normalized = await asyncio.to_thread(
                partial(_normalized, payload, normalize, agent.phone_region, strict=strict)
            )
        except ToolError as error:
            return error_response(error.info())
        if not normalized.call_id:
            return error_response(ToolError.invalid("call_id", "the payload carries no call id").info())
        recorded = await services.calls.record(agent.id, event, normalized, cleaned, final=final)
        if recorded.ready and services.sync is not None:
            try:
                # Only enqueued here, so the platform gets its answer at once.
                await services.sync.submit(recorded.record_id)
            except Exception:
                # The record stays queued; the engine's sweep starts its sync later.
                logger.exception("post-call sync: could not enqueue %s; the sweep will", recorded.record_id)
        return JSONResponse(
            {
                "call_id": normalized.call_id,
                "event": event,
                "duplicate": recorded.duplicate,
                "sync_status": recorded.record.sync_status,
            }
        )

    # -- tool calls during a call -------------------------------------------------------------

    @router.post("/voice/vapi", summary="Every Vapi server message (tool-calls, end-of-call-report, …)")
    async def vapi_messages(request: Request) -> Response:
        try:
            body = await request.body()
            agent = await agent_for_tools(request, "vapi", body)
            message = vapi.as_message(_json(body))
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
            return await record(agent, "end-of-call-report", message, vapi.normalize)
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
            arguments, call_id, caller = retell.function_call(_json(body))
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
            parsed = _json(body)
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

    # -- call-completed webhooks ------------------------------------------------------------------

    async def webhook_agent(agent_id: str, platform: Platform) -> tuple[Agent, str]:
        agent = await services.agents.get(agent_id)
        secret = None if agent is None else await services.platform_secrets.get(agent.id, platform)
        if agent is None or secret is None:
            # One answer for both, so the route does not reveal which agents exist.
            raise ToolError(ErrorCode.UNAUTHORIZED, f"no {platform} secret is set for this agent")
        return agent, secret

    @router.post("/voice/retell/webhook/{agent_id}", summary="Retell call_ended / call_analyzed")
    async def retell_webhook(agent_id: str, request: Request) -> Response:
        try:
            body = await request.body()
            agent, secret = await webhook_agent(agent_id, "retell")
            now_ms = int(clock().timestamp() * 1000)
            verify_retell(secret, body, request.headers.get("x-retell-signature"), now_ms)
            payload = _json(body)
        except SignatureError as error:
            return error_response(ToolError(ErrorCode.UNAUTHORIZED, str(error)).info())
        except ToolError as error:
            return error_response(error.info())
        event = str(payload.get("event", ""))
        if event not in ("call_ended", "call_analyzed"):
            return JSONResponse({"event": event, "ignored": True})
        # call_analyzed follows call_ended with the summary and sentiment; it starts the sync.
        final = event == "call_analyzed"
        return await record(agent, event, payload, _retell_call, final=final)

    @router.post("/voice/elevenlabs/webhook/{agent_id}", summary="ElevenLabs post_call_transcription")
    async def elevenlabs_webhook(agent_id: str, request: Request) -> Response:
        try:
            body = await request.body()
            agent, secret = await webhook_agent(agent_id, "elevenlabs")
            verify_elevenlabs(secret, body, request.headers.get("elevenlabs-signature"), int(clock().timestamp()))
            payload = _json(body)
        except SignatureError as error:
            return error_response(ToolError(ErrorCode.UNAUTHORIZED, str(error)).info())
        except ToolError as error:
            return error_response(error.info())
        event = str(payload.get("type", ""))
        if event != "post_call_transcription":
            return JSONResponse({"event": event, "ignored": True})
        return await record(agent, event, payload, _elevenlabs_data)

    @router.post("/voice/bland/webhook/{agent_id}", summary="Bland post-call webhook")
    async def bland_webhook(agent_id: str, request: Request) -> Response:
        try:
            body = await request.body()
            agent, secret = await webhook_agent(agent_id, "bland")
            verify_bland(secret, body, request.headers.get("x-webhook-signature"))
            payload = _json(body)
        except SignatureError as error:
            return error_response(ToolError(ErrorCode.UNAUTHORIZED, str(error)).info())
        except ToolError as error:
            return error_response(error.info())
        return await record(agent, "call_completed", payload, bland.normalize)

    @router.post("/voice/synthflow/webhook/{agent_id}", summary="Synthflow post-call webhook")
    async def synthflow_webhook(agent_id: str, request: Request) -> Response:
        try:
            body = await request.body()
            agent, secret = await webhook_agent(agent_id, "synthflow")
            payload = _json(body)
            # Synthflow's docs name the header in CGI spelling; accept the plain one too.
            signature = request.headers.get("http_synthflow_signature") or request.headers.get("synthflow-signature")
            verify_synthflow(secret, synthflow.call_id_of(payload), signature)
        except SignatureError as error:
            return error_response(ToolError(ErrorCode.UNAUTHORIZED, str(error)).info())
        except ToolError as error:
            return error_response(error.info())
        return await record(agent, "post_call", payload, synthflow.normalize)

    # -- the generic call API and records -----------------------------------------------------------

    @router.post("/v1/calls", tags=["calls"], summary="Report a finished call in the flat integration shape")
    async def post_call(request: Request, agent: CurrentAgent) -> Response:
        try:
            payload = _json(await request.body())
            if not isinstance(payload, dict):
                raise ToolError.invalid("body", "the body must be a JSON object")
        except ToolError as error:
            return error_response(error.info())
        event = payload.get("event") or "call_completed"
        if not isinstance(event, str) or len(event) > 64:
            return error_response(ToolError.invalid("event", "must be a short string such as call_completed").info())

        def flat(cleaned: Any) -> CallRecord:
            return generic.parse(cleaned, phone_region=agent.phone_region)

        return await record(agent, event, payload, flat, strict=True)

    @router.get("/v1/calls/{call_id}", tags=["calls"], summary="A call record, with every platform payload")
    async def get_call(call_id: str, agent: CurrentAgent) -> Response:
        found = await services.calls.get(agent.id, call_id)
        if found is None or found.record_id is None:
            return error_response(ToolError(ErrorCode.NOT_FOUND, f"no call {call_id!r} for this agent").info())
        steps = await services.ledger.states(found.record_id)
        return JSONResponse({**found.model_dump(mode="json"), "sync_steps": [s.model_dump(mode="json") for s in steps]})

    @router.post("/v1/calls/{call_id}/retry", tags=["calls"], summary="Run the call's failed post-call steps again")
    async def retry_call(call_id: str, agent: CurrentAgent) -> Response:
        found = await services.calls.get(agent.id, call_id)
        if found is None or found.record_id is None:
            return error_response(ToolError(ErrorCode.NOT_FOUND, f"no call {call_id!r} for this agent").info())
        if services.sync is None:
            return error_response(
                ToolError(ErrorCode.NOT_CONNECTED, "post-call sync is turned off on this server").info()
            )
        retried = await services.sync.retry(found.record_id)
        return JSONResponse({"call_id": call_id, "retried": retried}, status_code=202 if retried else 200)

    @router.put("/v1/platforms/{platform}/secret", tags=["calls"], status_code=204, summary="Store a platform secret")
    async def put_platform_secret(platform: str, secret: PlatformSecret, agent: CurrentAgent) -> Response:
        if platform not in PLATFORMS:
            return error_response(
                ToolError.invalid("platform", f"unknown platform; one of {', '.join(PLATFORMS)}").info()
            )
        await services.platform_secrets.set(agent.id, platform, secret.secret)
        return Response(status_code=204)

    @router.get("/v1/export/{target}", tags=["calls"], summary="Paste-ready tool definitions for a platform")
    async def export_tools(target: str, request: Request, agent: CurrentAgent) -> Response:
        key = api_key_from_headers(request.headers) or ""
        if target == "mcp":
            return JSONResponse(_mcp_export(services, agent, key))
        if target not in EXPORTS:
            known = ", ".join((*EXPORTS, "mcp"))
            return error_response(ToolError.invalid("target", f"unknown export; one of {known}").info())
        return JSONResponse(
            export(
                target,
                services.catalogue,
                base=services.settings.public_url,
                key=key,
                agent_id=agent.id,
                deadlines=services.dispatcher.deadlines,
            )
        )

    return router


def _mcp_export(services: Services, agent: Agent, key: str) -> dict[str, Any]:
    """How an MCP client reaches this agent: over streamable HTTP (URL and header), and over stdio
    on this machine (the `mcpServers` config `tool-server mcp-config` prints, absolute paths)."""
    base = services.settings.public_url.rstrip("/")
    answer: dict[str, Any] = {
        "platform": "mcp",
        "how_to_use": "Streamable HTTP: give your MCP client `http.url` with `http.headers`. Stdio (Claude "
        "Desktop, Cursor, editors) on this machine: paste `stdio` into the client's MCP config.",
        "http": {"url": f"{base}/mcp", "headers": {"Authorization": f"Bearer {key}"}},
    }
    executable = find_executable()
    if executable is not None:
        name = server_name(agent.name)
        built = mcp_client_config(services.settings, agent.id, name=name, executable=executable)
        answer["stdio"], answer["notes"] = built.config, built.notes
    return answer


def _retell_call(payload: Any) -> CallRecord:
    return retell.normalize(as_dict(as_dict(payload).get("call")))


def _elevenlabs_data(payload: Any) -> CallRecord:
    return elevenlabs.normalize(as_dict(as_dict(payload).get("data")))


def _text(value: Any) -> str | None:
    return str(value)[:255] if value not in (None, "") else None
