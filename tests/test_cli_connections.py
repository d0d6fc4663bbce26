"""`tool-server` connection commands, as real processes, against the in-process emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.sandbox_server import ServedSandboxes

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))


def run(database_url: str, public_url: str, *args: str, key: str = "old-key") -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "TOOL_SERVER_DATABASE_URL": database_url,
        "TOOL_SERVER_PUBLIC_URL": public_url,
        "TOOL_SERVER_SECRET_KEY": key,
    }
    return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=environment, timeout=120)


def database_bytes(database_url: str) -> bytes:
    database = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))


def test_a_sandbox_agent_is_connected_to_every_emulator_and_each_connection_works(
    database_url: str, sandboxes: ServedSandboxes
) -> None:
    for sandbox in sandboxes.sandboxes.values():
        sandbox.reset()
    created = run(database_url, sandboxes.base_url, "agents", "create", "--name", "Clinic", "--sandbox")
    agent = json.loads(created.stdout)

    tested = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], "--json")

    assert created.returncode == 0, created.stderr
    assert {cap: c["provider"] for cap, c in agent["connections"].items()} == {
        "calendar": "google_calendar",
        "crm": "hubspot",
        "payments": "stripe",
        "messaging": "twilio",
        "email": "sendgrid",
        "team": "slack",
        "automation": "zapier",
        "accounting": "stripe",
    }
    assert agent["connections"]["payments"]["settings"]["base_url"] == sandboxes.url("stripe")
    assert "secret" not in created.stdout.lower()
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert {entry["provider"]: entry["status"] for entry in json.loads(tested.stdout)} == {
        "google_calendar": "ok",
        "hubspot": "ok",
        "stripe": "ok",
        "twilio": "ok",
        "sendgrid": "ok",
        "slack": "ok",
        "zapier": "ok",
    }


def test_connect_seals_secret_options_and_a_bad_key_fails_the_connection_test(
    database_url: str, sandboxes: ServedSandboxes
) -> None:
    agent = json.loads(run(database_url, sandboxes.base_url, "agents", "create", "--name", "Clinic").stdout)
    wrong_key = "sk_test_not_the_sandbox_key_4242"

    connected = run(
        database_url,
        sandboxes.base_url,
        "connect",
        agent["id"],
        "stripe",
        "--api-key",
        wrong_key,
        "--success-url",
        "https://clinic.example/thanks",
        "--base-url",
        sandboxes.url("stripe"),
    )
    tested = run(database_url, sandboxes.base_url, "connections", "test", agent["id"])

    assert connected.returncode == 0, connected.stderr
    settings = json.loads(connected.stdout)["connections"]["payments"]["settings"]
    assert settings["success_url"] == "https://clinic.example/thanks"
    assert "api_key" not in settings
    assert wrong_key not in connected.stdout
    assert wrong_key.encode() not in database_bytes(database_url)
    assert tested.returncode == 1
    assert "stripe" in tested.stdout
    assert "failed" in tested.stdout


def test_connect_refuses_a_provider_without_its_required_secrets(database_url: str, sandboxes: ServedSandboxes) -> None:
    agent = json.loads(run(database_url, sandboxes.base_url, "agents", "create", "--name", "Clinic").stdout)

    refused = run(
        database_url,
        sandboxes.base_url,
        "connect",
        agent["id"],
        "twilio",
        "--account-sid",
        "AC" + "0" * 32,
        "--from-number",
        "+15005550006",
    )

    assert refused.returncode == 2
    assert "auth_token" in refused.stderr


def test_keys_rotate_reseals_credentials_under_the_new_key(database_url: str, sandboxes: ServedSandboxes) -> None:
    agent = json.loads(
        run(database_url, sandboxes.base_url, "agents", "create", "--name", "Clinic", "--sandbox").stdout
    )

    rotated = run(database_url, sandboxes.base_url, "keys", "rotate", key="new-key,old-key")
    with_new_key = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], key="new-key")
    with_old_key = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], key="old-key")

    assert rotated.returncode == 0, rotated.stderr
    assert "8 connection" in rotated.stdout
    assert with_new_key.returncode == 0, with_new_key.stdout + with_new_key.stderr
    assert with_old_key.returncode == 1
    assert "TOOL_SERVER_SECRET_KEY" in with_old_key.stdout
    assert "Traceback" not in with_old_key.stderr


def test_connect_with_sandbox_wires_one_provider_to_its_own_emulator_and_the_connection_works(
    database_url: str, sandboxes: ServedSandboxes
) -> None:
    for sandbox in sandboxes.sandboxes.values():
        sandbox.reset()
    agent = json.loads(run(database_url, sandboxes.base_url, "agents", "create", "--name", "Clinic").stdout)
    for provider in ("outlook_calendar", "calcom", "calendly"):
        connected = run(database_url, sandboxes.base_url, "connect", agent["id"], provider, "--sandbox")
        assert connected.returncode == 0, connected.stderr
        calendar = json.loads(connected.stdout)["connections"]["calendar"]
        assert calendar["provider"] == provider
        assert calendar["settings"]["base_url"] == sandboxes.url(provider)

        tested = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], "--json")

        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert {entry["provider"]: entry["status"] for entry in json.loads(tested.stdout)}[provider] == "ok"
    builtin = run(database_url, sandboxes.base_url, "connect", agent["id"], "local_calendar", "--sandbox")
    assert builtin.returncode != 0
    assert "has no emulator" in builtin.stderr


def test_a_second_crm_is_connected_beside_the_primary_and_both_connections_work(
    database_url: str, sandboxes: ServedSandboxes
) -> None:
    for sandbox in sandboxes.sandboxes.values():
        sandbox.reset()
    agent = json.loads(run(database_url, sandboxes.base_url, "agents", "create", "--name", "Plumbing").stdout)
    assert run(database_url, sandboxes.base_url, "connect", agent["id"], "hubspot", "--sandbox").returncode == 0

    added = run(database_url, sandboxes.base_url, "connect", agent["id"], "salesforce", "--sandbox", "--secondary")
    again = run(database_url, sandboxes.base_url, "connect", agent["id"], "hubspot", "--sandbox", "--secondary")
    tested = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], "--json")

    assert added.returncode == 0, added.stderr
    wired = json.loads(added.stdout)
    assert wired["connections"]["crm"]["provider"] == "hubspot"
    assert [(c["provider"], c["role"]) for c in wired["secondary_connections"]] == [("salesforce", "secondary")]
    assert again.returncode != 0
    assert "already the primary crm" in again.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert {(e["provider"], e["role"], e["status"]) for e in json.loads(tested.stdout)} >= {
        ("hubspot", "primary", "ok"),
        ("salesforce", "secondary", "ok"),
    }
    removed = run(database_url, sandboxes.base_url, "disconnect", agent["id"], "crm", "--provider", "salesforce")
    assert removed.returncode == 0, removed.stderr
    after = json.loads(removed.stdout)
    assert after["secondary_connections"] == []
    assert after["connections"]["crm"]["provider"] == "hubspot"


def test_a_provider_serving_a_crm_and_a_calendar_is_connected_for_both_with_one_command(
    database_url: str, sandboxes: ServedSandboxes
) -> None:
    for sandbox in sandboxes.sandboxes.values():
        sandbox.reset()
    agent = json.loads(run(database_url, sandboxes.base_url, "agents", "create", "--name", "HVAC").stdout)

    for provider in ("gohighlevel", "housecall_pro"):
        connected = run(database_url, sandboxes.base_url, "connect", agent["id"], provider, "--sandbox")
        tested = run(database_url, sandboxes.base_url, "connections", "test", agent["id"], "--json")

        assert connected.returncode == 0, connected.stderr
        wired = json.loads(connected.stdout)["connections"]
        assert (wired["crm"]["provider"], wired["calendar"]["provider"]) == (provider, provider)
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert [e["status"] for e in json.loads(tested.stdout) if e["provider"] == provider] == ["ok", "ok"]
