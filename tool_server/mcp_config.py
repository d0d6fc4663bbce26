"""The MCP client config that starts `tool-server mcp` for one agent, from any directory.

Claude Desktop, Cursor and other MCP clients read `{"mcpServers": {NAME: {command, args, env}}}`
and start the command from their own working directory, with little of the user's
environment. So the config carries absolute paths only: the executable, `TOOL_SERVER_HOME`
(where the database and the generated key live) and, when they are not the home's defaults,
the database URL, the key file and the public URL. It never carries a secret: a database
password or `TOOL_SERVER_SECRET_KEY` are left out, and a note says what to add by hand.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tool_server.home import default_database_url
from tool_server.settings import ServerSettings

__all__ = ["McpClientConfig", "find_executable", "mcp_client_config", "server_name"]

_DEFAULT_PUBLIC_URL = ServerSettings.model_fields["public_url"].default


@dataclass(frozen=True)
class McpClientConfig:
    """The config to paste, and what it could not include (for the person pasting it)."""

    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def find_executable() -> Path | None:
    """The absolute path of the `tool-server` executable running now (or of the one beside Python)."""
    invoked = Path(sys.argv[0])
    if invoked.name == "tool-server" and invoked.is_file():
        return invoked.absolute()
    # `python -m tool_server`, or a server started by an embedder: the console script beside Python.
    beside = Path(sys.executable).with_name("tool-server")
    if beside.is_file():
        return beside.absolute()
    found = shutil.which("tool-server")
    return None if found is None else Path(found).absolute()


def server_name(agent_name: str) -> str:
    """A config key from an agent's name: "Smile Dental" → "smile-dental"."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in agent_name.lower()).split()
    return "-".join(words) or "tool-server"


def _absolute_database_url(url: str, notes: list[str]) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            parsed = parsed.set(database=str(Path(database).expanduser().absolute()))
    if parsed.password is not None:
        parsed = parsed._replace(password=None)  # URL.set ignores None
        notes.append(
            "the database password is left out of TOOL_SERVER_DATABASE_URL: give it to the client through "
            "~/.pgpass (or PGPASSWORD), or add it to the URL in the client's config yourself"
        )
    return parsed.render_as_string(hide_password=False)


def mcp_client_config(settings: ServerSettings, agent_id: str, *, name: str, executable: Path) -> McpClientConfig:
    """The `mcpServers` entry `name` that runs `executable mcp --agent agent_id` on `settings`' data."""
    notes: list[str] = []
    home = settings.home.expanduser().absolute()
    env = {"TOOL_SERVER_HOME": str(home)}
    if settings.database_url != default_database_url(settings.home):
        env["TOOL_SERVER_DATABASE_URL"] = _absolute_database_url(settings.database_url, notes)
    if settings.secret_key is not None:
        notes.append(
            "TOOL_SERVER_SECRET_KEY is set here and is not printed: add it to the client's env yourself, "
            "or keep the key in a file and set TOOL_SERVER_SECRET_KEY_FILE"
        )
    elif settings.secret_key_file.expanduser().absolute() != home / "secret.key":
        env["TOOL_SERVER_SECRET_KEY_FILE"] = str(settings.secret_key_file.expanduser().absolute())
    if settings.public_url != _DEFAULT_PUBLIC_URL:
        env["TOOL_SERVER_PUBLIC_URL"] = settings.public_url
    server = {"command": str(executable.expanduser().absolute()), "args": ["mcp", "--agent", agent_id], "env": env}
    return McpClientConfig(config={"mcpServers": {name: server}}, notes=notes)
