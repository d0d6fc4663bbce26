"""scripts/demo, started for real: with the key it prints, the flow works over HTTP and MCP alike."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def next_weekday(weeks_ahead: int) -> date:
    """A Wednesday some weeks from today in the demo agent's zone (the demo runs on the real clock)."""
    today = datetime.now(ZoneInfo("America/New_York")).date()
    return today + timedelta(days=7 * weeks_ahead + (2 - today.weekday()) % 7)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of a running scripts/demo on its own database and port."""
    port = free_port()
    database = tmp_path_factory.mktemp("demo") / "demo.db"
    log_path = database.with_suffix(".log")
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": f"sqlite:///{database}"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "demo"), "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"scripts/demo did not come up:\n{log_path.read_text()}")
        banner = log_path.read_text()
        key = re.search(r"API key\s+(tsk_\S+)", banner)
        assert key, banner
        assert f"MCP URL   {base}/mcp" in banner
        assert "curl -s -X POST" in banner
        yield base, key.group(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


async def http_call(base: str, key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        response = await client.post(f"/v1/tools/{tool}", json=arguments)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def mcp_call(base: str, key: str, tool: str, arguments: dict[str, Any], mode: str) -> dict[str, Any]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        result = await client.call_tool(tool, arguments)
    assert result.is_error is False, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def run_flow(call: Any, day: date, caller_phone: str) -> list[dict[str, Any]]:
    """check_availability, then book_appointment, find_appointments, cancel_appointment; ids stripped."""
    available = await call("check_availability", {"date": day.isoformat()})
    start = available["slots"][0]["start"]
    booked = await call("book_appointment", {"start": start, "caller_name": "Jane Doe", "caller_phone": caller_phone})
    appointment_id = booked["appointment"]["appointment_id"]
    found = await call("find_appointments", {"caller_phone": caller_phone})
    assert [a["appointment_id"] for a in found["appointments"]] == [appointment_id]
    cancelled = await call("cancel_appointment", {"appointment_id": appointment_id})
    assert cancelled["appointment"]["status"] == "cancelled"

    def without_ids(data: dict[str, Any]) -> dict[str, Any]:
        return {"text": str(data).replace(appointment_id, "ID").replace(caller_phone, "PHONE")}

    return [without_ids(step) for step in (available, booked, found, cancelled)]


async def test_the_printed_key_runs_the_same_flow_with_the_same_results_over_http_and_mcp(
    demo: tuple[str, str],
) -> None:
    base, key = demo
    day = next_weekday(2)

    over_http = await run_flow(lambda tool, args: http_call(base, key, tool, args), day, "+12125550101")
    over_mcp = await run_flow(lambda tool, args: mcp_call(base, key, tool, args, "auto"), day, "+12125550102")
    over_legacy_mcp = await run_flow(lambda tool, args: mcp_call(base, key, tool, args, "legacy"), day, "+12125550103")

    assert over_http == over_mcp == over_legacy_mcp


def sandbox_state(base: str, provider: str) -> Any:
    response = httpx.get(f"{base}/sandbox/{provider}/_state", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def google_events(base: str) -> list[dict[str, Any]]:
    calendars = sandbox_state(base, "google_calendar")["calendars"].values()
    return [event for calendar in calendars for event in calendar["events"]]


@pytest.mark.parametrize("transport", ["http", "mcp"])
async def test_the_five_tools_go_through_the_real_sdks_to_the_emulators_and_state_shows_them(
    demo: tuple[str, str], transport: str
) -> None:
    base, key = demo
    suffix = "01" if transport == "http" else "02"
    phone = f"+121255502{suffix}"

    async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if transport == "http":
            return await http_call(base, key, tool, arguments)
        return await mcp_call(base, key, tool, arguments, "auto")

    day = next_weekday(4 if transport == "http" else 5)
    slots = (await call("check_availability", {"date": day.isoformat()}))["slots"]
    booked = await call("book_appointment", {"start": slots[0]["start"], "caller_name": "Jo", "caller_phone": phone})
    contact = await call("create_contact", {"contact_name": "Jo Doe", "contact_phone": phone})
    link = await call("create_payment_link", {"amount_minor": 4900, "description": "Deposit", "customer_phone": phone})
    text = await call("send_sms", {"to": phone, "body": f"Pay here: {link['payment_link']['url']}"})

    assert booked["appointment"]["appointment_id"] in {event["id"] for event in google_events(base)}
    assert contact["contact"]["contact_id"] in {c["id"] for c in sandbox_state(base, "hubspot")["contacts"]}
    sessions = {s["id"]: s for s in sandbox_state(base, "stripe")["checkout_sessions"]}
    assert link["payment_link"]["payment_link_id"] in sessions
    assert link["payment_link"]["url"].startswith("https://checkout.stripe.com/")
    messages = {m["sid"]: m for m in sandbox_state(base, "twilio")["messages"]}
    assert messages[text["message"]["message_id"]]["to"] == phone


async def test_twenty_concurrent_bookings_over_real_sockets_make_one_appointment(demo: tuple[str, str]) -> None:
    import asyncio

    base, key = demo
    day = next_weekday(3)
    start = (await http_call(base, key, "check_availability", {"date": day.isoformat()}))["slots"][0]["start"]
    arguments = {"start": start, "caller_name": "Jo", "caller_phone": "+12125550111"}

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/tools/book_appointment", json=arguments) for _ in range(20))
        )
        found = (await client.post("/v1/tools/find_appointments", json={"caller_phone": "+12125550111"})).json()

    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["appointment"]["appointment_id"] for response in responses}) == 1
    assert len(found["appointments"]) == 1
