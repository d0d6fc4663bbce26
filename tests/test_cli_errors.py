"""Every refusal and failure of `tool-server` is one line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tool_server.cli.agents import check_name, check_zone
from tool_server.cli.errors import CliError

TOOL_SERVER = str(Path(sys.executable).with_name("tool-server"))


def run(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environment}
    return subprocess.run([TOOL_SERVER, *args], capture_output=True, text=True, env=env, timeout=60)


def one_line(ran: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in ran.stderr.splitlines() if line.startswith("tool-server:")]
    assert "Traceback" not in ran.stderr
    assert len(lines) == 1, ran.stderr
    return lines[0]


@pytest.fixture
def agent_id(database_url: str) -> str:
    created = run("agents", "create", "--name", "Clinic", TOOL_SERVER_DATABASE_URL=database_url)
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["id"])


REFUSED_ZONES = ["EST", "localtime", "Mars/Base", "", "America", "posix/America/New_York"]
REFUSED_NAMES = ["", "   ", "Clinic\x07", "Clinic\u200b", "Line\nbreak"]


@pytest.mark.parametrize("zone", REFUSED_ZONES)
def test_the_cli_zone_check_refuses_anything_but_an_iana_area_location_zone(zone: str) -> None:
    with pytest.raises(CliError, match=r"^--timezone: "):
        check_zone(zone)


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_the_cli_name_check_refuses_blank_names_and_control_characters(name: str) -> None:
    with pytest.raises(CliError, match=r"^--name: "):
        check_name(name)


@pytest.mark.parametrize("zone", ["America", "EST"])
def test_agents_create_refuses_a_zone_folder_or_abbreviation_in_one_line(database_url: str, zone: str) -> None:
    refused = run("agents", "create", "--name", "Clinic", "--timezone", zone, TOOL_SERVER_DATABASE_URL=database_url)

    assert refused.returncode == 2
    assert one_line(refused).startswith("tool-server: --timezone:")


def test_agents_create_stores_a_zone_typed_in_the_wrong_case_in_its_own_spelling(database_url: str) -> None:
    created = run(
        "agents", "create", "--name", "Clinic", "--timezone", "america/chicago", TOOL_SERVER_DATABASE_URL=database_url
    )

    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["timezone"] == "America/Chicago"


@pytest.mark.parametrize("settings", ['{"timezone": "America"}', '{"timezone": ""}'])
def test_connect_refuses_a_timezone_setting_in_one_line_naming_it(
    database_url: str, agent_id: str, settings: str
) -> None:
    refused = run("connect", agent_id, "local_calendar", "--settings", settings, TOOL_SERVER_DATABASE_URL=database_url)

    assert refused.returncode == 2
    assert "timezone" in one_line(refused)


def test_agents_create_refuses_a_blank_name_and_makes_no_agent(database_url: str) -> None:
    refused = run("agents", "create", "--name", " ", TOOL_SERVER_DATABASE_URL=database_url)
    listed = run("agents", "list", "--json", TOOL_SERVER_DATABASE_URL=database_url)

    assert refused.returncode == 2
    assert one_line(refused).startswith("tool-server: --name:")
    assert json.loads(listed.stdout) == []


def test_agents_create_keeps_the_name_without_surrounding_blanks(database_url: str) -> None:
    created = run("agents", "create", "--name", "  Smile Dental ", TOOL_SERVER_DATABASE_URL=database_url)

    assert json.loads(created.stdout)["name"] == "Smile Dental"


def test_an_unknown_agent_is_one_line_with_exit_2(database_url: str) -> None:
    for args in (("agents", "key", "agt_nope"), ("mcp", "--agent", "agt_nope"), ("followups", "show", "agt_nope")):
        refused = run(*args, TOOL_SERVER_DATABASE_URL=database_url)
        assert refused.returncode == 2, args
        assert "agt_nope" in one_line(refused)


def test_a_bad_environment_variable_is_named_in_one_line(database_url: str) -> None:
    refused = run("agents", "list", TOOL_SERVER_DATABASE_URL=database_url, TOOL_SERVER_READ_DEADLINE_SECONDS="soon")
    bad_level = run("agents", "list", TOOL_SERVER_DATABASE_URL=database_url, TOOL_SERVER_LOG_LEVEL="loud")

    assert refused.returncode == 2
    assert one_line(refused).startswith("tool-server: TOOL_SERVER_READ_DEADLINE_SECONDS:")
    assert one_line(bad_level).startswith("tool-server: TOOL_SERVER_LOG_LEVEL:")


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unexpected_failure_is_one_line_exit_1_without_the_database_password() -> None:
    url = f"postgresql://clinic:pw-not-shown-42@127.0.0.1:{unused_port()}/tools"

    failed = run("agents", "list", TOOL_SERVER_DATABASE_URL=url)

    assert failed.returncode == 1
    line = one_line(failed)
    assert "TOOL_SERVER_LOG_LEVEL=debug" in line
    assert "pw-not-shown-42" not in failed.stderr


def test_with_debug_logging_an_unexpected_failure_also_prints_its_traceback() -> None:
    url = f"postgresql://clinic@127.0.0.1:{unused_port()}/tools"

    failed = run("agents", "list", TOOL_SERVER_DATABASE_URL=url, TOOL_SERVER_LOG_LEVEL="debug")

    assert failed.returncode == 1
    assert "Traceback" in failed.stderr


def test_an_unrecognized_option_is_refused_without_repeating_its_value(database_url: str) -> None:
    refused = run(
        "agents", "create", "--name", "X", "--pasword", "hunter2-secret", TOOL_SERVER_DATABASE_URL=database_url
    )

    assert refused.returncode == 2
    assert "--pasword" in refused.stderr
    assert "hunter2-secret" not in refused.stderr
