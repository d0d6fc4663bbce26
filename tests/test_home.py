"""One stable home for the data and the key, and the MCP client config that points at it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from tool_server.home import create_private_file, default_home, make_private_directory, tighten
from tool_server.mcp_config import mcp_client_config, server_name
from tool_server.settings import ServerSettings

EXECUTABLE = Path("/opt/tool-server/.venv/bin/tool-server")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_home_is_under_xdg_data_home_when_it_is_set_and_absolute(tmp_path: Path) -> None:
    assert default_home({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "voice-tool-server"


def test_the_default_home_is_under_local_share_without_a_usable_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_home({}) == tmp_path / ".local" / "share" / "voice-tool-server"
    assert default_home({"XDG_DATA_HOME": "relative/dir"}) == tmp_path / ".local" / "share" / "voice-tool-server"


def test_the_database_the_key_and_the_emulator_state_default_to_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOOL_SERVER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    home = tmp_path / "voice-tool-server"

    settings = ServerSettings()

    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home}/tool_server.db"
    assert settings.secret_key_file == home / "secret.key"
    assert settings.sandbox_state_dir == home / "sandbox"


def test_a_relative_home_is_made_absolute_when_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOL_SERVER_HOME", "state")

    settings = ServerSettings()

    assert settings.home == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path}/state/tool_server.db"


def test_private_folders_are_0700_and_private_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "home"

    make_private_directory(folder)
    created = create_private_file(folder / "data.db")

    assert created is True
    assert mode(folder) == 0o700
    assert mode(folder / "data.db") == 0o600
    assert create_private_file(folder / "data.db") is False


def test_a_file_others_can_read_is_tightened_and_a_private_one_left_alone(tmp_path: Path) -> None:
    shared, private = tmp_path / "shared.db", tmp_path / "private.db"
    shared.write_text("x")
    private.write_text("x")
    shared.chmod(0o644)
    private.chmod(0o600)

    assert tighten(shared) is True
    assert tighten(private) is False
    assert mode(shared) == 0o600


def test_the_mcp_config_on_the_defaults_carries_the_executable_the_agent_and_the_home_only(tmp_path: Path) -> None:
    settings = ServerSettings(home=tmp_path)

    built = mcp_client_config(settings, "agt_1", name="clinic", executable=EXECUTABLE)

    assert built.config == {
        "mcpServers": {
            "clinic": {
                "command": str(EXECUTABLE),
                "args": ["mcp", "--agent", "agt_1"],
                "env": {"TOOL_SERVER_HOME": str(tmp_path)},
            }
        }
    }
    assert built.notes == []


def test_the_mcp_config_names_a_database_and_key_file_elsewhere_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServerSettings(
        home=tmp_path / "home",
        database_url="sqlite:///./elsewhere/clinic.db",
        secret_key_file=Path("keys/clinic.key"),
        public_url="https://tools.clinic.example",
    )

    env = mcp_client_config(settings, "agt_1", name="clinic", executable=EXECUTABLE).config["mcpServers"]["clinic"][
        "env"
    ]

    assert env == {
        "TOOL_SERVER_HOME": str(tmp_path / "home"),
        "TOOL_SERVER_DATABASE_URL": f"sqlite:///{tmp_path}/elsewhere/clinic.db",
        "TOOL_SERVER_SECRET_KEY_FILE": str(tmp_path / "keys" / "clinic.key"),
        "TOOL_SERVER_PUBLIC_URL": "https://tools.clinic.example",
    }


def test_the_mcp_config_never_carries_a_secret_and_says_what_it_left_out(tmp_path: Path) -> None:
    settings = ServerSettings(
        home=tmp_path,
        database_url="postgresql://clinic:db-password-123@db.internal/tools",
        secret_key=SecretStr("sealing-key-456"),
    )

    built = mcp_client_config(settings, "agt_1", name="clinic", executable=EXECUTABLE)

    printed = str(built.config)
    assert "db-password-123" not in printed
    assert "sealing-key-456" not in printed
    assert built.config["mcpServers"]["clinic"]["env"]["TOOL_SERVER_DATABASE_URL"] == (
        "postgresql://clinic@db.internal/tools"
    )
    assert "TOOL_SERVER_SECRET_KEY" not in built.config["mcpServers"]["clinic"]["env"]
    assert len(built.notes) == 2


@pytest.mark.parametrize(
    ("agent_name", "expected"),
    [("Smile Dental", "smile-dental"), ("Dr. Ünal's Clinic!", "dr-nal-s-clinic"), ("…", "tool-server")],
)
def test_the_server_name_is_a_slug_of_the_agents_name(agent_name: str, expected: str) -> None:
    assert server_name(agent_name) == expected
