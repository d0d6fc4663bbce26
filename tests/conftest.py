"""Shared fixtures: a migrated database per test, a pinned clock, agents, and the transport matrix."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.registry import INTEGRATIONS
from tests.support.callers import BASE_URL, DirectCaller, HttpCaller, McpCaller, ToolCaller
from tests.support.postgres import running_postgres
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes
from tool_server.agents import Connection, CreatedAgent
from tool_server.app import create_app
from tool_server.clock import fixed_clock
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database

# Wednesday 4 March 2026, 10:00 in New York (EST, -05:00). US daylight saving starts on Sunday
# 8 March, so Monday 9 March is at -04:00: tests cross a DST change without trying.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
MONDAY = "2026-03-09"
DEFAULT_CONNECTIONS = [
    Connection(capability="calendar", provider="local_calendar"),
    Connection(capability="crm", provider="contact_book"),
]


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and socketpairs
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TOOL_SERVER_HOME is a temporary folder: no test, nor any process a test starts, touches the real one."""
    home = tmp_path_factory.mktemp("tool-server-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOL_SERVER_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def _only_loopback_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider: any connection off 127.0.0.1 fails loudly."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[ServedSandboxes]:
    """Every registered provider's emulator on one real 127.0.0.1 socket (SDKs are synchronous)."""
    with serve_sandboxes({name: spec.sandbox() for name, spec in INTEGRATIONS.items()}) as served:
        yield served


@pytest.fixture
def fresh_sandboxes(sandboxes: ServedSandboxes) -> None:
    """Empty every emulator (state, faults, request log) before the test."""
    for sandbox in sandboxes.sandboxes.values():
        sandbox.reset()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server on 127.0.0.1 for the session; fails (never skips) if it cannot start."""
    with running_postgres() as url:
        yield url


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: Path) -> str:
    path = tmp_path / "tool_server.db"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> ServerSettings:
    # Post-call sync off: tests that exercise it start their own engine (DBOS is one per process).
    return ServerSettings(database_url=database_url, postcall="off")


@pytest.fixture
async def services(settings: ServerSettings) -> AsyncIterator[Services]:
    built = Services.build(settings, clock=fixed_clock(NOW))
    yield built
    await built.aclose()


AgentFactory = Callable[..., Awaitable[CreatedAgent]]


@pytest.fixture
def make_agent(services: Services) -> AgentFactory:
    async def make(
        name: str = "Test Dental",
        *,
        timezone: str = "America/New_York",
        region: str = "US",
        connections: list[Connection] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
    ) -> CreatedAgent:
        secrets = secrets or {}
        return await services.agents.create(
            name,
            timezone=timezone,
            phone_region=region,
            connections=[
                services.providers.validate(c, secrets.get(c.capability)) for c in (connections or DEFAULT_CONNECTIONS)
            ],
            secrets=secrets,
        )

    return make


@pytest.fixture
async def agent(make_agent: AgentFactory) -> CreatedAgent:
    return await make_agent()


@pytest.fixture
async def app(services: Services) -> AsyncIterator[Any]:
    """The ASGI app with its lifespan running.

    The lifespan is held open by its own task because the MCP session manager's task group
    must be exited by the task that entered it, and fixture teardown runs in another task.
    """
    application = create_app(services=services)
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold_lifespan() -> None:
        async with application.router.lifespan_context(application):
            started.set()
            await stop.wait()

    holder = asyncio.create_task(hold_lifespan())
    await asyncio.wait({holder, asyncio.ensure_future(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if holder.done():
        holder.result()
    yield application
    stop.set()
    await holder


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


CallerFactory = Callable[[str, CreatedAgent], Awaitable[ToolCaller]]


@pytest.fixture
def make_caller(services: Services, app: Any, http: httpx.AsyncClient) -> CallerFactory:
    async def make(transport: str, created: CreatedAgent) -> ToolCaller:
        if transport == "direct":
            return DirectCaller(services.dispatcher, created.agent)
        if transport == "http":
            return HttpCaller(http, created.api_key)
        if transport in ("mcp", "mcp-legacy"):
            return McpCaller(app, created.api_key, mode="legacy" if transport == "mcp-legacy" else "auto")
        raise ValueError(transport)

    return make


TRANSPORTS = ["direct", "http", "mcp"]


@pytest.fixture(params=TRANSPORTS)
async def caller(request: pytest.FixtureRequest, make_caller: CallerFactory, agent: CreatedAgent) -> ToolCaller:
    """The test's default agent, reached over each transport in turn."""
    return await make_caller(request.param, agent)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Keep slow end-to-end tests (real processes and sockets) last so failures show up early.
    items.sort(key=lambda item: 1 if item.get_closest_marker("e2e") else 0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real server processes on 127.0.0.1")
