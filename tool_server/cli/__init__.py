"""The `tool-server` command line.

`main` parses the arguments with a parser that imports nothing heavy, then imports and runs
the one command asked for. Whatever goes wrong ends as one line on stderr: user errors exit 2,
anything unexpected exits 1 and says how to see the details (`TOOL_SERVER_LOG_LEVEL=debug`,
which also prints the traceback).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from tool_server.cli.errors import USER_ERROR, CliError, describe_unexpected, user_error_message
from tool_server.cli.parser import build_parser

__all__ = ["CliError", "main"]

logger = logging.getLogger(__name__)


def _debugging() -> bool:
    # Read straight from the environment: the settings themselves may be what failed.
    return os.environ.get("TOOL_SERVER_LOG_LEVEL", "").strip().lower() in ("debug", "trace")


def _say(message: str) -> None:
    print(f"tool-server: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `tool-server` command; the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        # Values are not repeated: a mistyped option's value may be a secret.
        shown = " ".join(token if token.startswith("-") else "…" for token in extra)
        parser.error(f"unrecognized arguments: {shown}")
    args.extra = extra
    try:
        from tool_server.cli.runtime import run_command

        return run_command(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tool-server providers | head`): nothing more to say, to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # the outermost boundary: one line, never a traceback by default
        message = user_error_message(error)
        if _debugging():
            traceback.print_exc(file=sys.stderr)
        if message is not None:
            _say(message)
            return USER_ERROR
        _say(f"{describe_unexpected(error)} (for details run it again with TOOL_SERVER_LOG_LEVEL=debug)")
        return 1
