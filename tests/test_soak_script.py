"""scripts/soak.py: its load plan, its fault mix, its lost/duplicated count, and a short run end to end.

The full soak (10 minutes) is not part of the suite; the last test runs the script for 15 seconds
with a handful of records and tool calls and one worker SIGKILLed, so a change that breaks it
shows up here.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.postcall import ZONE, batch_calls
from tests.support.postgres import PostgresUnavailableError, find_server_binaries

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "soak.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_script"] = module
    spec.loader.exec_module(module)
    return module


soak = load_script()


def test_the_plan_has_exactly_the_requested_calls_and_every_retry_repeats_an_earlier_write_under_its_key() -> None:
    ops = soak.plan_tool_calls(2000, 600.0, random.Random(1), date(2026, 12, 3))

    assert len(ops) == 2000
    assert {op.tool for op in ops} == {"check_availability", "book_appointment", "send_sms", "create_contact"}
    retries = [op for op in ops if op.retry_of is not None]
    assert 100 < len(retries) < 300
    for retry in retries:
        first = ops[retry.retry_of]
        assert (first.tool, first.body, first.key) == (retry.tool, retry.body, retry.key)
        assert retry.at == first.at if retry.race else retry.at > first.at
    assert all(op.key is not None for op in ops if op.tool != "check_availability")


def test_distinct_bookings_never_ask_for_the_same_slot_nor_one_the_call_records_ask_for() -> None:
    # The same day batch_calls counts from.
    today = datetime.now(ZoneInfo(ZONE)).date()
    ops = soak.plan_tool_calls(3000, 600.0, random.Random(2), today)
    starts = Counter(op.body["start"] for op in ops if op.tool == "book_appointment" and op.retry_of is None)
    records = {f"{c['appointment_requested']['date']}T{c['appointment_requested']['time']}" for c in batch_calls(1000)}

    assert starts
    assert max(starts.values()) == 1
    assert not set(starts) & records


async def test_the_fault_mix_faults_provider_requests_through_the_fault_api_and_never_control_routes() -> None:
    sandbox = soak.INTEGRATIONS["twilio"].sandbox()
    mix = soak.FaultMix(sandbox, 1.0, random.Random(3), slow_seconds=0.01)
    transport = httpx.ASGITransport(app=mix)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        answers = [(await client.get("/2010-04-01/Accounts/AC123/Messages.json")).status_code for _ in range(20)]
        control = (await client.get("/_state")).status_code

    assert control == 200
    assert sum(mix.injected.values()) == 20 == mix.taken()
    assert set(mix.injected) == {"server_error", "rate_limit", "slow"}
    assert sum(status == 429 for status in answers) == mix.injected["rate_limit"]
    assert sum(status >= 500 for status in answers) == mix.injected["server_error"]


def test_the_count_finds_a_synced_records_missing_effects_and_a_callers_second_contact() -> None:
    sandboxes = {name: soak.INTEGRATIONS[name].sandbox() for _capability, name in soak.PROVIDERS}
    served = soak.ServedSandboxes("http://127.0.0.1:1", sandboxes)
    calls: list[dict[str, Any]] = batch_calls(2, prefix="count")
    for _ in range(2):
        sandboxes["hubspot"].state.seed_contact(name="Caller 0001", phone=calls[1]["customer_phone"])
    statuses = {calls[0]["call_id"]: "synced", calls[1]["call_id"]: "failed"}

    tally = soak.count_state(served, calls, statuses, [])

    first, second = calls[0]["call_id"], calls[1]["call_id"]
    assert sorted(tally.lost) == sorted(
        [
            f"record {second}: failed",
            f"contact for {first}: missing",
            f"note for {first}: missing",
            f"call activity for {first}: missing",
            f"event for {first}: missing",
            f"confirmation SMS for {first}: missing",
        ]
    )
    assert tally.duplicated == [f"contact for {second}: 2"]


def _postgres_installed() -> bool:
    try:
        find_server_binaries()
    except PostgresUnavailableError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.skipif(not _postgres_installed(), reason="PostgreSQL server binaries are not installed")
def test_a_short_soak_with_a_worker_killed_ends_with_nothing_lost_and_nothing_duplicated() -> None:
    command = [sys.executable, str(SCRIPT), "--minutes", "0.25", "--calls", "6", "--tool-calls", "40"]
    result = subprocess.run(
        [*command, "--kill-every", "10", "--settle-seconds", "240", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "workers SIGKILLed: 1;" in result.stdout
    assert "lost: 0; duplicated: 0" in result.stdout
    assert "statuses {'synced': 6}" in result.stdout
