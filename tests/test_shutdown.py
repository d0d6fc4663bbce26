"""SIGTERM stops the server within seconds, even with provider calls hanging in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import SECRET_KEY, create_sandbox_calendar_agent, free_port, live_server
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database

pytestmark = pytest.mark.e2e


def test_sigterm_stops_the_server_within_seconds_while_provider_calls_hang(tmp_path: Path) -> None:
    port = free_port()
    settings = ServerSettings(home=tmp_path, secret_key=SECRET_KEY, public_url=f"http://127.0.0.1:{port}")
    upgrade_database(settings.database_url)
    key = asyncio.run(create_sandbox_calendar_agent(settings))
    answers: list[int | str] = []

    with live_server(tmp_path, port=port) as live:
        # Google Calendar (the emulator) stops answering for 30 s.
        httpx.post(f"{live.base}/sandbox/google_calendar/_faults", json={"kind": "slow", "seconds": 30, "times": 0})

        def check() -> None:
            try:
                response = httpx.post(
                    f"{live.base}/v1/tools/check_availability",
                    json={"date": "tomorrow"},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=40,
                )
                answers.append(response.status_code)
            except httpx.TransportError as error:
                answers.append(type(error).__name__)

        callers = [threading.Thread(target=check) for _ in range(4)]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = httpx.get(f"{live.base}/sandbox/google_calendar/_requests", timeout=5).json()
            if any("freeBusy" in request["path"] for request in seen):
                break  # the calls are now waiting on the provider
            time.sleep(0.05)
        seconds = live.stop()
        for caller in callers:
            caller.join(timeout=30)

    assert seconds < 8, f"the server took {seconds:.1f} s to stop"
    assert len(answers) == 4
