"""A restarted server keeps its emulators' world: what a replayed booking claims is still true.

Before, the emulators came back empty while our idempotency records still replayed "You're
booked for …" for a slot the calendar showed free. Now each emulator keeps its state in a file
beside the database, loaded at start and saved after every change.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.live_server import SECRET_KEY, create_sandbox_calendar_agent, free_port, live_server
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database

pytestmark = pytest.mark.e2e


def next_weekday_at_ten() -> str:
    today = datetime.now(ZoneInfo("America/New_York")).date()
    day = today + timedelta(days=7 + (2 - today.weekday()) % 7)  # a Wednesday one to two weeks out
    return f"{day.isoformat()}T10:00"


def test_a_booking_made_before_a_restart_is_still_in_the_emulator_and_its_replay_tells_the_truth(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = ServerSettings(home=tmp_path, secret_key=SECRET_KEY, public_url=f"http://127.0.0.1:{port}")
    upgrade_database(settings.database_url)
    key = asyncio.run(create_sandbox_calendar_agent(settings))
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "restart-booking-1"}
    booking = {"start": next_weekday_at_ten(), "caller_name": "Jane Doe", "caller_phone": "+12125550142"}

    with live_server(tmp_path, port=port, postcall="off") as first:
        booked = httpx.post(f"{first.base}/v1/tools/book_appointment", json=booking, headers=headers, timeout=30)
        assert booked.status_code == 200, booked.text
    assert (tmp_path / "sandbox" / "google_calendar.json").exists()

    with live_server(tmp_path, port=port, postcall="off") as second:
        replayed = httpx.post(f"{second.base}/v1/tools/book_appointment", json=booking, headers=headers, timeout=30)
        state = httpx.get(f"{second.base}/sandbox/google_calendar/_state", timeout=10).json()
        found = httpx.post(
            f"{second.base}/v1/tools/find_appointments",
            json={"caller_phone": "+12125550142"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    assert replayed.headers.get("Idempotent-Replayed") == "true"
    appointment_id = booked.json()["appointment"]["appointment_id"]
    assert replayed.json()["appointment"]["appointment_id"] == appointment_id
    assert found.status_code == 200, found.text
    assert [a["appointment_id"] for a in found.json()["appointments"]] == [appointment_id]
    assert appointment_id in str(state)
