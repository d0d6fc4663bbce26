"""`tool-server serve | migrate | providers | tools`.

`serve --workers N` (N > 1) runs N uvicorn processes on one port. The parent does everything
that must happen once before they start: it migrates the database, makes sure the generated
secret key exists, and, when the post-call engine runs in the server (`postcall=inline`), runs
that engine itself, on a thread of its own, under the configured executor id. The workers only
serve requests: they read their settings from the same `TOOL_SERVER_*` environment, start
post-call workflows (`postcall=enqueue`, each under an executor id of its own, so none of them
ever recovers another process's workflows) and never migrate. The sandbox emulators keep their
world in each process's memory, so they cannot be mounted with more than one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from tool_server.cli.errors import CliError
from tool_server.cli.runtime import ready_database
from tool_server.settings import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["WORKER_ROUTE", "migrate", "print_providers", "print_tools", "serve", "worker_app"]

logger = logging.getLogger(__name__)

# Which process answered: its pid, post-call mode and executor id (ops, and the tests and
# benchmark that check requests spread over the workers).
WORKER_ROUTE = "/healthz/worker"
# Set by the parent for its workers: the post-call engine runs in the parent.
_ENGINE_IN_PARENT = "TOOL_SERVER_SERVE_ENGINE_IN_PARENT"
_GRACEFUL_SECONDS = 5


def _add_worker_route(app: FastAPI, settings: ServerSettings) -> None:
    from fastapi.responses import JSONResponse, Response

    async def worker() -> Response:
        return JSONResponse(
            {"pid": os.getpid(), "postcall": settings.postcall, "executor_id": settings.postcall_executor_id}
        )

    app.add_api_route(WORKER_ROUTE, worker, methods=["GET"], tags=["operations"], summary="Which process answered")


def serve(settings: ServerSettings, args: argparse.Namespace) -> int:
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{args.host}:{args.port}"})
    if args.workers > 1:
        return _serve_workers(settings, args)

    import uvicorn

    from tool_server.app import create_app

    ready_database(settings, migrate=not args.no_migrate)
    app = create_app(settings)
    _add_worker_route(app, settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        # Logging is already set up (tool_server.logs); uvicorn's records go through it.
        log_config=None,
        timeout_graceful_shutdown=_GRACEFUL_SECONDS,
    )
    return 0


def _serve_workers(settings: ServerSettings, args: argparse.Namespace) -> int:
    import uvicorn

    from tool_server.secret_box import SecretBox

    if settings.sandbox:
        raise CliError(
            f"--workers {args.workers} cannot mount the sandbox emulators: each process would keep its own "
            "emulator world in memory. Set TOOL_SERVER_SANDBOX=false, or serve with --workers 1"
        )
    # Once, here, before any worker exists: workers never migrate, and never race to generate the key.
    ready_database(settings, migrate=not args.no_migrate)
    SecretBox.from_settings(settings)
    # The workers are fresh interpreters (uvicorn spawns them) that read ServerSettings from this
    # environment: what the parent decided goes there.
    os.environ["TOOL_SERVER_PUBLIC_URL"] = settings.public_url
    engine: ParentEngine | None = None
    if settings.postcall == "inline":
        engine = ParentEngine(settings)
        engine.start()
        logger.info("post-call engine running in the parent process (executor %s)", settings.postcall_executor_id)
    os.environ[_ENGINE_IN_PARENT] = "1" if engine is not None else "0"
    try:
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level=settings.log_level,
            log_config=None,
            timeout_graceful_shutdown=_GRACEFUL_SECONDS,
        )
    finally:
        # uvicorn has stopped and joined every worker (SIGTERM to each) before it returns.
        if engine is not None:
            engine.stop()
    return 0


def worker_app() -> FastAPI:
    """The app of one `serve --workers N` process (uvicorn's factory, called in each worker)."""
    from tool_server.app import create_app
    from tool_server.cli.runtime import load_settings
    from tool_server.logs import configure_logging
    from tool_server.transports.access_log import MaskedQueryStrings

    settings = load_settings()
    configure_logging(settings.log_level, access_log_filters=(MaskedQueryStrings(),))
    update: dict[str, Any] = {
        # An id no other process uses: DBOS recovers an executor's pending workflows when it
        # launches, and two processes under one id would both run them.
        "postcall_executor_id": f"{settings.postcall_executor_id}-http-{os.getpid()}",
    }
    if os.environ.get(_ENGINE_IN_PARENT) == "1":
        update["postcall"] = "enqueue"  # the parent runs the workflows; workers only start them
    settings = settings.model_copy(update=update)
    app = create_app(settings)
    _add_worker_route(app, settings)
    _stop_when_orphaned()
    return app


def _stop_when_orphaned(interval: float = 0.5) -> None:
    """Stop this worker gracefully once its parent is gone (killed, or exited without stopping us).

    uvicorn's workers are not tied to their parent's life: left running, they would keep the
    port and take requests with no post-call engine behind them, and a restarted server could not
    bind its port.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        logger.warning("the serve parent process %s is gone; this worker stops", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class ParentEngine:
    """The post-call engine of a multi-worker server: one, in the parent, on its own event loop.

    Running it in exactly one process keeps `postcall=inline` what it is with one worker: one
    DBOS executor under `postcall_executor_id`, which recovers its own unfinished workflows when
    the server restarts, whatever happens to the request workers in between.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self._settings = settings
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="postcall-engine", daemon=True)

    def start(self, timeout: float = 60) -> None:
        """Start the engine; raises what stopped it from starting."""
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the post-call engine did not start")
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._stopping is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("the post-call engine did not stop within %s s; exiting anyway", timeout)

    async def _run(self) -> None:
        from tool_server.postcall.engine import PostCallEngine
        from tool_server.services import Services

        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        services = Services.build(self._settings)
        engine = PostCallEngine(services, listen=True)
        try:
            await engine.start()
        except BaseException as error:
            self._error = error
            self._started.set()
            await services.aclose()
            return
        self._started.set()
        await self._stopping.wait()
        try:
            await engine.stop()
        except Exception:
            # The workers are already gone; the process exits either way. Say so in the log
            # rather than as a thread's traceback.
            logger.exception("the post-call engine did not stop cleanly")
        finally:
            await services.aclose()


def migrate(settings: ServerSettings, _args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    ready_database(settings, migrate=True)
    print(f"database is up to date: {make_url(settings.database_url).render_as_string(hide_password=True)}")
    return 0


def print_providers(_settings: ServerSettings, _args: argparse.Namespace) -> int:
    from tool_server.providers import PROVIDERS

    providers = [
        {
            "provider": spec.name,
            "capabilities": sorted(spec.capabilities),
            "description": spec.description,
            "secrets": {"required": list(spec.required_secrets), "optional": list(spec.optional_secrets)},
            "settings_schema": spec.settings_model.model_json_schema(),
        }
        for spec in PROVIDERS.values()
    ]
    print(json.dumps(providers, indent=2))
    return 0


def print_tools(_settings: ServerSettings, args: argparse.Namespace) -> int:
    from tool_server.tools.catalogue import CATALOGUE
    from tool_server.transports.schemas import render_tools

    print(json.dumps(render_tools(CATALOGUE, args.format), indent=2))
    return 0
