"""Finished calls over HTTP: each platform's call-completed webhook, the flat `/v1/calls` shape, the
records and their retries, platform secrets, and paste-ready exports.

Webhooks name the agent in the path and must carry the platform's signature over the raw body;
a failure is a 401 and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tool_server.agents.models import Agent
from tool_server.calls.models import CallRecord
from tool_server.errors import ErrorCode, ToolError
from tool_server.mcp_config import find_executable, mcp_client_config, server_name
from tool_server.services import Services
from tool_server.transports.auth import api_key_from_headers
from tool_server.transports.call_recording import CallRecorder, json_body
from tool_server.transports.http_api import CurrentAgent
from tool_server.transports.http_errors import error_response
from tool_server.voice import bland, elevenlabs, generic, retell, synthflow
from tool_server.voice.exports import EXPORTS, export
from tool_server.voice.parsing import as_dict
from tool_server.voice.platform_secrets import PLATFORMS, Platform
from tool_server.voice.signatures import (
    SignatureError,
    verify_bland,
    verify_elevenlabs,
    verify_retell,
    verify_synthflow,
)

__all__ = ["build_calls_router"]


class PlatformSecret(BaseModel):
    secret: str = Field(min_length=8, max_length=512, description="The platform's signing secret or API key.")


def build_calls_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["voice platforms"])
    clock = services.clock
    recorder = CallRecorder(services)
    record = recorder.record

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
            payload = json_body(body)
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
            payload = json_body(body)
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
            payload = json_body(body)
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
            payload = json_body(body)
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
            payload = json_body(await request.body())
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
