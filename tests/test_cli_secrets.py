"""Secrets reach `tool-server` through stdin or an env file, never the command line, and are never echoed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.registry import INTEGRATIONS
from tests.conftest import NOW
from tests.support.sandbox_server import ServedSandboxes
from tool_server.clock import fixed_clock
from tool_server.services import Services
from tool_server.settings import ServerSettings

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))


def run(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TOOL_SERVER_DATABASE_URL": database_url}
    return subprocess.run(
        [TOOL_SERVER, *args], input=stdin, capture_output=True, text=True, env=environment, timeout=120
    )


def database_bytes(database_url: str) -> bytes:
    database = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))


@pytest.fixture
def agent_id(database_url: str) -> str:
    return str(json.loads(run(database_url, "agents", "create", "--name", "Clinic").stdout)["id"])


def sandbox(name: str, sandboxes: ServedSandboxes) -> tuple[dict[str, str], dict[str, str]]:
    connection = INTEGRATIONS[name].sandbox_connection(sandboxes.url(name))
    return {k: str(v) for k, v in connection.settings.items()}, connection.secrets


def test_a_provider_option_of_dash_reads_the_secret_from_stdin_and_seals_it(
    database_url: str, agent_id: str, sandboxes: ServedSandboxes, fresh_sandboxes: None
) -> None:
    settings, secrets = sandbox("stripe", sandboxes)

    connected = run(
        database_url,
        "connect",
        agent_id,
        "stripe",
        "--api-key",
        "-",
        "--base-url",
        settings["base_url"],
        "--success-url",
        "https://clinic.example/thanks",
        stdin=secrets["api_key"] + "\n",
    )
    tested = run(database_url, "connections", "test", agent_id, "--json")

    assert connected.returncode == 0, connected.stderr
    assert secrets["api_key"] not in connected.stdout + connected.stderr
    assert secrets["api_key"].encode() not in database_bytes(database_url)
    stripe = next(entry for entry in json.loads(tested.stdout) if entry["provider"] == "stripe")
    assert stripe["status"] == "ok", stripe


def test_connect_reads_secrets_and_settings_from_an_env_file_in_any_spelling(
    database_url: str, agent_id: str, sandboxes: ServedSandboxes, fresh_sandboxes: None, tmp_path: Path
) -> None:
    settings, secrets = sandbox("twilio", sandboxes)
    env_file = tmp_path / "twilio.env"
    env_file.write_text(
        "# Twilio, from the Console\n"
        f"AUTH_TOKEN={secrets['auth_token']}\n"
        f"export account-sid='{settings['account_sid']}'\n"
        f"Base_Url={settings['base_url']}\n"
        "\n"
        f"from_number={settings.get('from_number', '+15005550006')}\n"
    )

    connected = run(database_url, "connect", agent_id, "twilio", "--env-file", str(env_file))
    tested = run(database_url, "connections", "test", agent_id, "--json")

    assert connected.returncode == 0, connected.stderr
    assert secrets["auth_token"] not in connected.stdout + connected.stderr
    assert (
        json.loads(connected.stdout)["connections"]["messaging"]["settings"]["account_sid"] == settings["account_sid"]
    )
    twilio = next(entry for entry in json.loads(tested.stdout) if entry["provider"] == "twilio")
    assert twilio["status"] == "ok", twilio


def test_an_env_file_with_an_unknown_name_or_a_bad_line_is_refused_without_echoing_values(
    database_url: str, agent_id: str, tmp_path: Path
) -> None:
    unknown, malformed = tmp_path / "unknown.env", tmp_path / "malformed.env"
    unknown.write_text("API_KEY=sk_test_unknown_1\nAPI_KEYS=sk_test_typo_2\n")
    malformed.write_text("API_KEY=sk_test_ok_3\nsk_test_pasted_alone_4\n")

    refused_unknown = run(database_url, "connect", agent_id, "stripe", "--env-file", str(unknown))
    refused_malformed = run(database_url, "connect", agent_id, "stripe", "--env-file", str(malformed))

    assert refused_unknown.returncode == 2
    assert "api_keys" in refused_unknown.stderr
    assert refused_malformed.returncode == 2
    assert "line 2" in refused_malformed.stderr
    shown = refused_unknown.stdout + refused_unknown.stderr + refused_malformed.stdout + refused_malformed.stderr
    assert "sk_test_" not in shown


def test_only_one_option_may_read_stdin(database_url: str, agent_id: str) -> None:
    refused = run(database_url, "connect", agent_id, "hubspot", "--client-id", "-", "--client-secret", "-", stdin="x\n")

    assert refused.returncode == 2
    assert "--env-file" in refused.stderr


def test_a_secret_given_as_a_setting_is_refused_rather_than_stored_in_the_clear(
    database_url: str, agent_id: str
) -> None:
    refused = run(database_url, "connect", agent_id, "stripe", "--set", "api_key=sk_test_in_clear_5")

    assert refused.returncode == 2
    assert "sk_test_in_clear_5" not in refused.stderr
    assert b"sk_test_in_clear_5" not in database_bytes(database_url)


async def test_platforms_set_reads_the_secret_from_stdin(database_url: str, agent_id: str) -> None:
    stored = run(database_url, "platforms", "set", agent_id, "retell", "--secret", "-", stdin="key_from_stdin_6\n")
    empty = run(database_url, "platforms", "set", agent_id, "vapi", "--secret", "-", stdin="\n")

    assert stored.returncode == 0, stored.stderr
    assert "key_from_stdin_6" not in stored.stdout + stored.stderr
    assert empty.returncode == 2
    services = Services.build(ServerSettings(database_url=database_url), clock=fixed_clock(NOW))
    try:
        assert await services.platform_secrets.get(agent_id, "retell") == "key_from_stdin_6"
        assert await services.platform_secrets.get(agent_id, "vapi") is None
    finally:
        await services.aclose()


def test_a_text_setting_given_as_digits_stays_text(database_url: str, agent_id: str) -> None:
    # A QuickBooks realm id is all digits; read as JSON it would be a number and be refused.
    connected = run(
        database_url,
        "connect",
        agent_id,
        "quickbooks",
        "--realm-id",
        "9130357999191234",
        "--item-id",
        "7",
        "--minor-version",
        "75",
        "--env-file",
        "/dev/stdin",
        stdin="CLIENT_ID=ABc\nCLIENT_SECRET=sk_test_fake\nREFRESH_TOKEN=AB11fake\n",
    )

    assert connected.returncode == 0, connected.stderr
    settings = json.loads(connected.stdout)["connections"]["accounting"]["settings"]
    assert settings["realm_id"] == "9130357999191234"
    assert settings["item_id"] == "7"
    assert settings["minor_version"] == 75
