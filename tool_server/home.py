"""Where the server keeps its data on this machine: one stable, private home per user.

The embedded database, the generated sealing key and the emulators' state live in one folder,
`TOOL_SERVER_HOME`, so every process (the server, a worker, an MCP client's `tool-server mcp`
started from its own directory) finds the same data whatever its working directory. The
default follows the XDG base directory spec: `$XDG_DATA_HOME/voice-tool-server`, else
`~/.local/share/voice-tool-server`.

The files hold personal data and credentials: folders this module creates are 0700, files
0600, and an existing file that others can read is tightened.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "APP_DIRECTORY",
    "create_private_file",
    "default_database_url",
    "default_home",
    "legacy_database",
    "make_private_directory",
    "tighten",
]

logger = logging.getLogger(__name__)

APP_DIRECTORY = "voice-tool-server"
DATABASE_FILE = "tool_server.db"
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/voice-tool-server`, else `~/.local/share/voice-tool-server`."""
    environ = os.environ if environ is None else environ
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    xdg = environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / APP_DIRECTORY


def default_database_url(home: Path) -> str:
    """The embedded SQLite database inside `home`."""
    return f"sqlite:///{home / DATABASE_FILE}"


def legacy_database(cwd: Path) -> Path | None:
    """The database an earlier version kept under the working directory (`./data/`), if any."""
    path = cwd / "data" / DATABASE_FILE
    return path if path.is_file() else None


def make_private_directory(path: Path) -> None:
    """Create `path` (and its missing parents) with the folder itself 0700; an existing folder is left alone."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return  # another process made it first
    # mkdir's mode is filtered by the umask, which can only remove bits: 0700 or less.


def create_private_file(path: Path) -> bool:
    """Create an empty file readable by its owner alone (0600); False when it already existed."""
    make_private_directory(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(descriptor)
    return True


def tighten(path: Path) -> bool:
    """Make an existing file others can read or write 0600 (owner bits kept); True when it changed."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & _OTHERS:
        return False
    try:
        path.chmod(mode & ~_OTHERS & ~stat.S_IXUSR)
    except PermissionError:
        logger.warning("%s is readable by other users and is not ours to tighten; chmod 600 it", path)
        return False
    logger.warning("%s was readable by other users; it is now 0600", path)
    return True
