"""The ASGI app: HTTP function calling under /v1, MCP at /mcp, docs at /docs, health at /healthz."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from tool_server import __version__
from tool_server.clock import Clock, system_clock
from tool_server.errors import ErrorCode, ToolError
from tool_server.postcall.engine import PostCallEngine
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.transports.body_limit import BodySizeLimit
from tool_server.transports.calls_http import build_calls_router
from tool_server.transports.http_api import build_tools_router
from tool_server.transports.http_errors import error_response
from tool_server.transports.mcp_http import McpHttpEndpoint
from tool_server.transports.messages_http import build_messages_router
from tool_server.transports.provider_webhooks import build_webhooks_router
from tool_server.transports.voice_http import build_voice_router

__all__ = ["create_app", "sandbox_state_dir"]

logger = logging.getLogger(__name__)

DESCRIPTION = """
Tools for voice and chat agents to act in a business's own systems during a live call.

Authenticate with `Authorization: Bearer <api key>`. Every tool result carries `speech`, one
short sentence an agent can say; every error is `{"error": {"code", "message", "speech", ...}}`.
Writes are idempotent: send `Idempotency-Key`, or `X-Call-Id` to deduplicate within a call.
MCP (streamable HTTP) is served at `/mcp` with the same bearer key.
"""


def sandbox_state_dir(settings: ServerSettings) -> Path:
    """Where the emulators keep their state: the setting when given, else beside an SQLite database
    (each database its own sandbox world), else under the data home."""
    if "sandbox_state_dir" in settings.model_fields_set:
        return settings.sandbox_state_dir
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent / "sandbox"
    return settings.sandbox_state_dir


def create_app(
    settings: ServerSettings | None = None, *, clock: Clock = system_clock, services: Services | None = None
) -> FastAPI:
    """Build the app. Settings are read here, never at import time."""
    services = services or Services.build(settings or ServerSettings(), clock=clock)
    mcp_endpoint = McpHttpEndpoint(services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A mounted MCP app's own lifespan never runs; the host runs the session manager.
        mode = services.settings.postcall
        engine = None if mode == "off" else PostCallEngine(services, listen=mode == "inline")
        if engine is not None:
            await engine.start()
        try:
            async with mcp_endpoint.session_manager.run():
                yield
        finally:
            if engine is not None:
                await engine.stop()
            await services.aclose()
            for sandbox in app.state.sandboxes.values():
                sandbox.save()

    app = FastAPI(title="Voice tool server", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services

    @app.get("/", tags=["operations"], summary="What this server is and where to go next")
    async def index() -> Response:
        return JSONResponse(
            {
                "name": "voice-tool-server",
                "version": __version__,
                "docs": "/docs",
                "health": "/healthz",
                "tools": "/v1/tools",
                "mcp": "/mcp",
            }
        )

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    async def healthz() -> Response:
        try:
            await services.db.run(lambda session: session.execute(text("SELECT 1")))
        except Exception:
            logger.exception("health check: database unreachable")
            return JSONResponse({"status": "unhealthy", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__, "tools": len(services.catalogue)})

    app.include_router(build_tools_router(services))
    app.include_router(build_webhooks_router(services))
    app.include_router(build_messages_router(services))
    app.include_router(build_voice_router(services))
    app.include_router(build_calls_router(services))
    app.state.sandboxes = {}
    if services.settings.sandbox:
        # The provider emulators, each speaking its vendor's own paths below /sandbox/<provider>/,
        # keeping their world in a file beside the database across restarts, as a provider would.
        state_dir = sandbox_state_dir(services.settings)
        for name, spec in services.providers.specs.items():
            if spec.integration is not None:
                sandbox = spec.integration.sandbox()
                sandbox.persist_to(state_dir / f"{name}.json")
                app.state.sandboxes[name] = sandbox
                app.mount(f"/sandbox/{name}", sandbox, name=f"sandbox-{name}")
    # Both spellings are served directly: many MCP clients do not follow a 307 on POST.
    for path in ("/mcp", "/mcp/"):
        app.router.routes.append(Route(path, endpoint=mcp_endpoint, methods=["GET", "POST", "DELETE"]))

    @app.exception_handler(ToolError)
    async def tool_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, ToolError)
        return error_response(error.info())

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = error.errors()
        field = ".".join(str(part) for part in problems[0]["loc"][1:]) if problems else "request"
        message = problems[0].get("msg", "invalid request") if problems else "invalid request"
        return error_response(ToolError.invalid(field or "request", str(message)).info())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404:
            code, message = ErrorCode.UNKNOWN_ROUTE, f"nothing is served at {request.url.path[:200]}; see /docs"
        elif error.status_code == 405:
            code, message = ErrorCode.METHOD_NOT_ALLOWED, f"{request.method} is not allowed here; see /docs"
        else:
            code, message = ErrorCode.VALIDATION_ERROR, str(error.detail)
        info = ToolError(code, message).info()
        body = {"error": info.model_dump(mode="json")}
        return JSONResponse(body, status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> Response:
        logger.error("unhandled error", exc_info=error)
        return error_response(ToolError(ErrorCode.INTERNAL_ERROR, "unexpected server error; it was logged").info())

    app.add_middleware(BodySizeLimit, max_bytes=services.settings.max_body_bytes)
    return app
