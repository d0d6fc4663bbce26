"""The `tool-server` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import NOW
from tool_server.clock import fixed_clock
from tool_server.services import Services
from tool_server.settings import ServerSettings

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": database_url}
    return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=environment, timeout=60)


async def test_agents_create_prints_one_json_object_whose_key_authenticates(database_url: str) -> None:
    created = run(database_url, "agents", "create", "--name", "Smile Co", "--timezone", "America/Chicago")

    assert created.returncode == 0, created.stderr
    agent = json.loads(created.stdout)
    assert agent["id"].startswith("agt_")
    assert agent["api_key"].startswith("tsk_")
    assert agent["timezone"] == "America/Chicago"
    assert set(agent["connections"]) == {"calendar", "crm"}
    services = Services.build(ServerSettings(database_url=database_url), clock=fixed_clock(NOW))
    try:
        found = await services.agents.authenticate(agent["api_key"])
    finally:
        await services.aclose()
    assert found is not None
    assert found.id == agent["id"]


def test_the_api_key_is_stored_only_as_a_hash(database_url: str) -> None:
    agent = json.loads(run(database_url, "agents", "create", "--name", "Hash Co").stdout)

    database = Path(database_url.removeprefix("sqlite:///"))
    raw = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert agent["api_key"].encode() not in raw
    assert agent["api_key"][4:20].encode() not in raw


def test_agents_list_shows_every_agent(database_url: str) -> None:
    run(database_url, "agents", "create", "--name", "First")
    run(database_url, "agents", "create", "--name", "Second")

    listed = run(database_url, "agents", "list", "--json")

    assert [agent["name"] for agent in json.loads(listed.stdout)] == ["First", "Second"]
    assert "First" in run(database_url, "agents", "list").stdout


def test_bad_agent_options_fail_with_a_clear_message(database_url: str) -> None:
    bad_zone = run(database_url, "agents", "create", "--name", "X", "--timezone", "Nowhere/City")
    bad_region = run(database_url, "agents", "create", "--name", "X", "--region", "ZZ")

    assert bad_zone.returncode == 2
    assert bad_zone.stderr.startswith("tool-server: --timezone:")
    assert "Traceback" not in bad_zone.stderr
    assert bad_region.returncode == 2
    assert bad_region.stderr.startswith("tool-server: --region:")


def test_connect_validates_settings_and_names_the_bad_one(database_url: str) -> None:
    agent = json.loads(run(database_url, "agents", "create", "--name", "Clinic").stdout)

    bad = run(database_url, "connect", agent["id"], "local_calendar", "--set", "slot_minutes=1")
    good = run(
        database_url,
        "connect",
        agent["id"],
        "local_calendar",
        "--settings",
        '{"weekly_hours": {"sat": ["10:00-14:00"]}}',
        "--set",
        "buffer_minutes=10",
    )

    assert bad.returncode == 2
    assert "slot_minutes" in bad.stderr
    assert good.returncode == 0, good.stderr
    settings = json.loads(good.stdout)["connections"]["calendar"]["settings"]
    assert settings["weekly_hours"] == {"sat": ["10:00-14:00"]}
    assert settings["buffer_minutes"] == 10


def test_connect_and_disconnect_the_outbox(database_url: str) -> None:
    agent = json.loads(run(database_url, "agents", "create", "--name", "Clinic").stdout)

    connected = json.loads(run(database_url, "connect", agent["id"], "outbox").stdout)
    disconnected = json.loads(run(database_url, "disconnect", agent["id"], "messaging").stdout)

    assert connected["connections"]["messaging"]["provider"] == "outbox"
    assert "messaging" not in disconnected["connections"]


def test_unknown_providers_are_refused_with_the_list_to_pick_from(database_url: str) -> None:
    agent = json.loads(run(database_url, "agents", "create", "--name", "Clinic").stdout)

    refused = run(database_url, "connect", agent["id"], "acme_crm")

    assert refused.returncode == 2
    assert "tool-server providers" in refused.stderr


def test_tools_prints_the_catalogue_in_the_asked_format(database_url: str) -> None:
    tools = json.loads(run(database_url, "tools", "--format", "anthropic").stdout)

    assert [tool["name"] for tool in tools][:2] == ["check_availability", "book_appointment"]
    assert "input_schema" in tools[0]


def test_migrate_creates_a_fresh_sqlite_file_and_its_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/fresh.db"

    migrated = run(url, "migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "nested" / "dir" / "fresh.db").exists()


async def test_platforms_set_stores_a_sealed_secret_the_server_then_checks(database_url: str) -> None:
    agent = json.loads(run(database_url, "agents", "create", "--name", "Clinic").stdout)

    stored = run(database_url, "platforms", "set", agent["id"], "retell", "--secret", "key_retell_sealed_123")
    refused = run(database_url, "platforms", "set", agent["id"], "acme", "--secret", "x" * 12)

    assert stored.returncode == 0, stored.stderr
    assert "key_retell_sealed_123" not in stored.stdout
    assert refused.returncode == 2
    database = Path(database_url.removeprefix("sqlite:///"))
    raw = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    assert b"key_retell_sealed_123" not in raw
    services = Services.build(ServerSettings(database_url=database_url), clock=fixed_clock(NOW))
    try:
        assert await services.platform_secrets.get(agent["id"], "retell") == "key_retell_sealed_123"
    finally:
        await services.aclose()


def test_agents_create_sets_how_long_a_hold_lasts_and_refuses_a_silly_one(database_url: str) -> None:
    created = run(database_url, "agents", "create", "--name", "Quick Clinic", "--hold-minutes", "2")
    refused = run(database_url, "agents", "create", "--name", "Slow Clinic", "--hold-minutes", "0")

    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["hold_minutes"] == 2
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == ["tool-server: --hold-minutes must be between 1 and 60, got 0"]
