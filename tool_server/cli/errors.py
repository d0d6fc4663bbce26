"""How a failed command reads: one line on stderr, never a traceback unless debugging.

User errors (a bad option, an unknown agent, a setting to fix) exit 2. Anything unexpected
exits 1 with its type and first line, with credentials in URLs masked, and says how to see
the details (`TOOL_SERVER_LOG_LEVEL=debug`).
"""

from __future__ import annotations

import sys
from typing import Any

from integrations.common.linear_regex import compile_linear

__all__ = ["USER_ERROR", "CliError", "describe_unexpected", "user_error_message"]

USER_ERROR = 2
_MAX_LENGTH = 300
_URL_CREDENTIALS = compile_linear(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")

# Exceptions that are the user's to fix, by module and class. They are looked up in
# `sys.modules` rather than imported: an error of a class whose module was never loaded
# cannot have been raised, and the error path stays as light as `--help`.
_USER_ERRORS = (
    ("integrations.capabilities.errors", "ConfigurationError"),
    ("integrations.common.zones", "UnknownZoneError"),
    ("tool_server.store.migrate", "SchemaError"),
    ("tool_server.secret_box", "SecretKeyError"),
    ("tool_server.secret_box", "SecretKeyFileError"),
)


class CliError(Exception):
    """A user error: printed as one line without a traceback, exit status 2."""


def _loaded(module: str, name: str) -> type[BaseException] | None:
    found: Any = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _validation_message(error: Any) -> str:
    problems = error.errors()
    first = problems[0] if problems else {"loc": (), "msg": str(error)}
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def _one_line(text: str) -> str:
    line = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text.strip().splitlines()[0] if text.strip() else "")
    return line if len(line) <= _MAX_LENGTH else line[: _MAX_LENGTH - 1] + "…"


def user_error_message(error: BaseException) -> str | None:
    """The one line to print when `error` is the user's to fix; None when it is unexpected."""
    if isinstance(error, CliError):
        return _one_line(str(error))
    validation = _loaded("pydantic_core", "ValidationError")
    if validation is not None and isinstance(error, validation):
        return _one_line(_validation_message(error))
    for module, name in _USER_ERRORS:
        kind = _loaded(module, name)
        if kind is not None and isinstance(error, kind):
            return _one_line(str(error))
    return None


def describe_unexpected(error: BaseException) -> str:
    """`Type: first line` of an unexpected error, without SQL, parameters or URL credentials."""
    # SQLAlchemy's message carries the statement and its parameters (personal data); the
    # driver's own error says what went wrong.
    original = getattr(error, "orig", None)
    shown = original if isinstance(original, BaseException) else error
    return _one_line(f"{type(shown).__name__}: {shown}")
