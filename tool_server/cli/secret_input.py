"""Secrets that never touch the command line: a value of `-` reads stdin, `--env-file` a file.

A secret typed as an argument lands in shell history and in `ps`. `-` reads the value from
stdin (prompted without echo when stdin is a terminal); an env file holds `NAME=value` lines.
Nothing here ever repeats a value in a message.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from tool_server.cli.errors import CliError

__all__ = ["STDIN", "option_name", "read_env_file", "read_stdin_value"]

STDIN = "-"


def option_name(raw: str) -> str:
    """`API_KEY`, `api-key`, `--Api-Key` → `api_key`."""
    return raw.strip().lstrip("-").replace("-", "_").lower()


def read_stdin_value(what: str, stdin: TextIO | None = None) -> str:
    """One value from stdin: prompted without echo on a terminal, else all of stdin, stripped."""
    stream = stdin or sys.stdin
    value = (getpass.getpass(f"{what}: ") if stream.isatty() else stream.read()).strip()
    if not value:
        raise CliError(f"{what}: nothing was read from stdin")
    if "\n" in value:
        raise CliError(f"{what}: stdin holds several lines; give one value (or use --env-file for several)")
    return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_env_lines(lines: Iterable[str], source: str) -> dict[str, str]:
    """`NAME=value` lines (blank lines, `# comments` and a leading `export` allowed) → {option: value}."""
    options: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export ") :].lstrip()
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            # The line itself is not shown: it may hold a secret.
            raise CliError(f"{source} line {number}: expected NAME=value")
        options[option_name(name)] = _unquote(value.strip())
    return options


def read_env_file(path: str) -> dict[str, str]:
    """The options of an env file; unreadable files are a one-line user error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise CliError(f"--env-file: cannot read {path} ({reason})") from None
    return parse_env_lines(text.splitlines(), "--env-file")
