"""The README's MCP client sample runs as written against a real server, on any day."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_server import SECRET_KEY, live_server
from tool_server.agents import Connection
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.migrate import upgrade_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "scripts" / "mcp_client_example.py"
EVERY_DAY = {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def _open_every_day(settings: ServerSettings) -> str:
    services = Services.build(settings)
    try:
        calendar = Connection(capability="calendar", provider="local_calendar", settings={"weekly_hours": EVERY_DAY})
        contacts = Connection(capability="crm", provider="contact_book")
        created = await services.agents.create(
            "Sample Dental",
            timezone="America/New_York",
            phone_region="US",
            connections=[services.providers.validate(calendar), services.providers.validate(contacts)],
        )
        return created.api_key
    finally:
        await services.aclose()


def test_the_mcp_client_sample_lists_the_tools_and_books_tomorrows_first_slot(tmp_path: Path) -> None:
    settings = ServerSettings(home=tmp_path, secret_key=SECRET_KEY)
    upgrade_database(settings.database_url)
    key = asyncio.run(_open_every_day(settings))

    with live_server(tmp_path, postcall="off") as live:
        ran = subprocess.run(
            [sys.executable, str(SAMPLE), "--url", f"{live.base}/mcp", "--key", key],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("tools: check_availability, book_appointment")
    assert lines[1].startswith("agent says: I have tomorrow at 8 AM")
    assert lines[2].startswith("agent says: You're booked for tomorrow at 8 AM")
    assert lines[3].startswith("appointment: apt_")


def test_the_readme_shows_the_sample_as_it_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = SAMPLE.read_text(encoding="utf-8")
    body = code[code.index("from __future__") :]

    assert body.strip() in readme
