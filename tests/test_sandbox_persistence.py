"""The sandbox kit's persistence: an emulator's state saved to a file after writes and loaded at start.

The emulator here is a small real one (named counters behind `POST /count/{name}`), served
in-process through httpx's ASGI transport; each provider's own state is round-tripped in its tests.
"""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox

FORMAT = 1


class Counters:
    """A `SandboxState`: counts by name, in a versioned snapshot like the providers' own."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def dump(self) -> dict[str, Any]:
        return {"counts": dict(self.counts)}

    def reset(self) -> None:
        self.counts = {}

    def expire_access_tokens(self) -> None:
        """No tokens."""

    def revoke_refresh_tokens(self) -> None:
        """No tokens."""

    def snapshot(self) -> dict[str, Any]:
        return {"version": FORMAT, "counts": dict(self.counts)}

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != FORMAT:
            raise ValueError(f"unknown format {snapshot.get('version')!r}")
        counts = snapshot["counts"]
        if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
            raise TypeError("counts must map names to integers")
        self.counts = dict(counts)


def counting_sandbox() -> Sandbox:
    state = Counters()

    async def count(request: Request) -> Response:
        name = request.path_params["name"]
        state.counts[name] = state.counts.get(name, 0) + 1
        return JSONResponse({"name": name, "count": state.counts[name]})

    return Sandbox(
        name="counters",
        state=state,
        routes=[Route("/count/{name}", count, methods=["POST"])],
        error=lambda status, _retry_after: Response(status_code=status),
    )


def counts_of(sandbox: Sandbox) -> dict[str, int]:
    counts: dict[str, int] = sandbox.state.dump()["counts"]
    return counts


def saved_counts(path: Path) -> dict[str, int] | None:
    """The counts in the state file, or None while there is no complete file."""
    try:
        counts: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))["counts"]
    except (OSError, ValueError):
        return None
    return counts


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll until `condition` holds; fail at the deadline."""
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the condition never held"
        await asyncio.sleep(0.01)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "counters.json"


@pytest.fixture
def sandbox() -> Sandbox:
    return counting_sandbox()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url="http://sandbox") as opened:
        yield opened


class HeldExecutor(ThreadPoolExecutor):
    """An executor that runs nothing until told to: a background save, held back on purpose."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.held: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.held.append((future, fn, args))
        return future

    def release(self) -> None:
        for future, fn, args in self.held:
            future.set_result(fn(*args))
        self.held.clear()


# -- saving --------------------------------------------------------------------------------------


async def test_a_write_to_a_persisted_sandbox_is_saved_to_its_file_shortly_after(
    sandbox: Sandbox, client: httpx.AsyncClient, path: Path
) -> None:
    sandbox.persist_to(path)

    answer = await client.post("/count/visits")

    assert answer.json() == {"name": "visits", "count": 1}
    await eventually(lambda: saved_counts(path) == {"visits": 1})


async def test_a_burst_of_writes_leaves_the_file_with_the_state_after_the_last_one(
    sandbox: Sandbox, client: httpx.AsyncClient, path: Path
) -> None:
    sandbox.persist_to(path)

    for _ in range(5):
        await client.post("/count/visits")
    await client.post("/count/calls")

    await eventually(lambda: saved_counts(path) == {"visits": 5, "calls": 1})


async def test_a_reset_through_the_control_route_is_saved_too(
    sandbox: Sandbox, client: httpx.AsyncClient, path: Path
) -> None:
    sandbox.persist_to(path)
    await client.post("/count/visits")
    await eventually(lambda: saved_counts(path) == {"visits": 1})

    await client.post("/_reset")

    await eventually(lambda: saved_counts(path) == {})


def test_saving_a_sandbox_that_is_not_persisted_writes_no_file(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.state.restore({"version": FORMAT, "counts": {"visits": 1}})

    sandbox.save()

    assert sandbox.persist_path is None
    assert list(tmp_path.iterdir()) == []


async def test_a_late_background_save_never_replaces_a_newer_save(
    sandbox: Sandbox, client: httpx.AsyncClient, path: Path
) -> None:
    held = HeldExecutor()
    asyncio.get_running_loop().set_default_executor(held)
    sandbox.persist_to(path)
    await client.post("/count/visits")
    await eventually(lambda: bool(held.held))  # the debounced save of count 1, not yet written

    await client.post("/count/visits")
    sandbox.save()  # count 2, written at once
    held.release()  # the older save arrives last

    assert saved_counts(path) == {"visits": 2}


def test_the_state_file_is_readable_and_writable_by_its_owner_only(sandbox: Sandbox, path: Path) -> None:
    path.parent.mkdir()
    path.write_text(json.dumps({"version": FORMAT, "counts": {}}), encoding="utf-8")
    path.chmod(0o644)
    sandbox.persist_to(path)

    sandbox.save()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_new_file_is_created_readable_and_writable_by_its_owner_only(sandbox: Sandbox, path: Path) -> None:
    sandbox.persist_to(path)

    sandbox.save()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert saved_counts(path) == {}


# -- loading -------------------------------------------------------------------------------------


def test_a_sandbox_started_on_a_saved_file_has_the_saved_state(sandbox: Sandbox, path: Path) -> None:
    sandbox.state.restore({"version": FORMAT, "counts": {"visits": 3}})
    sandbox.persist_to(path)
    sandbox.save()
    restarted = counting_sandbox()

    restarted.persist_to(path)

    assert counts_of(restarted) == {"visits": 3}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        "null",
        '{"version": 2, "counts": {}}',
        '{"version": 1, "counts": {"visits": "three"}}',
        '{"version": 1}',
        b"\xff\xfe not text",
    ],
    ids=["malformed", "an array", "null", "an unknown version", "a wrong type", "a missing field", "not utf-8"],
)
def test_an_unreadable_state_file_is_set_aside_and_the_emulator_starts_empty(
    sandbox: Sandbox, path: Path, content: str | bytes
) -> None:
    unreadable = content if isinstance(content, bytes) else content.encode()
    path.parent.mkdir()
    path.write_bytes(unreadable)
    sandbox.state.restore({"version": FORMAT, "counts": {"before": 1}})

    sandbox.persist_to(path)

    assert counts_of(sandbox) == {}
    assert path.with_name("counters.json.unreadable").read_bytes() == unreadable
    assert not path.exists()
    sandbox.save()
    assert saved_counts(path) == {}
