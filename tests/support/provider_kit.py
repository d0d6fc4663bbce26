"""What every provider's own tests share: the fixed moment, Monday's bookings, typed phones, and
the fixtures that serve one emulator on a real socket and build its connector.

A provider test module takes its fixtures with one line:

    sandbox, served, base_url, vault = emulator_fixtures(SPEC)

and builds connectors with `connect(SPEC, base_url, vault, **settings)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integrations.capabilities.models import BookingRequest
from integrations.common.sandbox import RecordedRequest, Sandbox
from integrations.common.spec import ConnectorEnv, IntegrationSpec
from integrations.common.vault import MemoryVault
from tests.support.sandbox_server import ServedSandboxes, serve_sandboxes

__all__ = ["NOW", "NY", "TYPED_PHONES", "booking", "connect", "emulator_fixtures", "monday", "requests_to"]

# Wednesday 4 March 2026, 10:00 in New York. Monday 9 March is after the DST change (-04:00).
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")

# One number, +14155550123, as a business's staff type it into their CRM.
TYPED_PHONES = [
    "(415) 555-0123",
    "415.555.0123",
    "+1 415 555 0123",
    "415-555-0123",
    "4155550123",
    "+14155550123",
    "1 (415) 555-0123",
    "+1-415-555-0123",
]


def monday(hour: int, minute: int = 0) -> datetime:
    """Monday 9 March 2026 at this New York wall time."""
    return datetime(2026, 3, 9, hour, minute, tzinfo=NY)


def booking(
    hour: int,
    minute: int = 0,
    *,
    minutes: int = 30,
    name: str = "Ada Lovelace",
    phone: str | None = "+12125550142",
    email: str | None = None,
    address: str | None = None,
    notes: str | None = None,
    key: str | None = None,
) -> BookingRequest:
    """A booking request for Monday at `hour:minute` New York time."""
    start = monday(hour, minute)
    return BookingRequest(
        start=start,
        end=start + timedelta(minutes=minutes),
        attendee_name=name,
        attendee_phone=phone,
        attendee_email=email,
        attendee_address=address,
        notes=notes,
        idempotency_key=key,
    )


def connect(
    spec: IntegrationSpec,
    base_url: str,
    vault: MemoryVault,
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    **settings: Any,
) -> Any:
    """The provider's connector on its emulator at `base_url`, with `settings` over the sandbox's."""
    model = spec.settings_model.model_validate({**spec.sandbox_connection(base_url).settings, **settings})
    env = ConnectorEnv(clock=clock, connection_id="con_test", public_url="http://127.0.0.1:9", timezone=NY.key)
    return spec.build(model, vault, env)


def requests_to(sandbox: Sandbox, method: str, path: str | None = None) -> list[RecordedRequest]:
    """The provider requests the emulator received with this method (and path)."""
    return [r for r in sandbox.provider_requests() if r.method == method and (path is None or r.path == path)]


def emulator_fixtures(spec: IntegrationSpec) -> tuple[Any, Any, Any, Any]:
    """(sandbox, served, base_url, vault) fixtures: the emulator (one per module; the module resets
    it before each test, setting its clock), served on 127.0.0.1, its base URL, and a vault holding
    its sandbox credentials."""

    @pytest.fixture(scope="module", name="sandbox")
    def sandbox_fixture() -> Sandbox:
        return spec.sandbox()

    @pytest.fixture(scope="module", name="served")
    def served_fixture(sandbox: Sandbox) -> Iterator[ServedSandboxes]:
        with serve_sandboxes({spec.name: sandbox}) as running:
            yield running

    @pytest.fixture(name="base_url")
    def base_url_fixture(served: ServedSandboxes) -> str:
        return served.url(spec.name)

    @pytest.fixture(name="vault")
    def vault_fixture(base_url: str) -> MemoryVault:
        return MemoryVault(spec.sandbox_connection(base_url).secrets)

    return sandbox_fixture, served_fixture, base_url_fixture, vault_fixture


async def agent_on_emulators(
    providers: Iterable[str],
    make_agent: Callable[..., Awaitable[Any]],
    services: Any,
    sandboxes: ServedSandboxes,
    *,
    also: Iterable[Any] = (),
) -> Any:
    """An agent whose capabilities are served by these providers on their emulators (plus `also` connections)."""
    from tool_server.agents.sandbox import sandbox_connections

    wanted = list(providers)
    pairs = [
        pair
        for pair in sandbox_connections(services.providers, sandboxes.base_url, prefer=wanted)
        if pair[0].provider in wanted
    ]
    return await make_agent(
        connections=[*also, *(connection for connection, _ in pairs)],
        secrets={connection.capability: dict(secrets) for connection, secrets in pairs},
    )
