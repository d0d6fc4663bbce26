"""Logging for every `tool-server` command: one stderr handler, third-party chatter kept quiet.

Logs go to stderr: stdout belongs to command output and to MCP over stdio. The SDKs and
libraries below log every request at INFO (Twilio's client alone prints nine lines per call),
which buries the server's own lines, so they log only warnings unless the level is `debug`
(or `trace`). uvicorn's loggers are the server's own: its access log stays at the chosen level.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["ACCESS_LOGGER", "LOG_FORMAT", "QUIET_LOGGERS", "SERVER_LOGGERS", "configure_logging", "python_level"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ACCESS_LOGGER = "uvicorn.access"
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", ACCESS_LOGGER)
TRACE = 5  # uvicorn's level below DEBUG

QUIET_LOGGERS = (
    "alembic",
    "asyncio",
    "dbos",
    "google",
    "google_auth_httplib2",
    "googleapiclient",
    "httpcore",
    "httpx",
    "httpx2",
    "hubspot",
    "mcp",
    "openai",
    "sqlalchemy",
    "sse_starlette",
    "stripe",
    "twilio",
    "urllib3",
)


def python_level(level: str) -> int:
    """`info`, `DEBUG`, `trace`… as a `logging` level number; `ValueError` for an unknown name."""
    name = level.strip().upper()
    if name == "TRACE":
        return TRACE
    number = logging.getLevelName(name)
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(
    level: str = "info",
    *,
    access_log_filters: Sequence[logging.Filter] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log line to stderr at `level`; third-party loggers at WARNING unless debugging.

    `access_log_filters` are attached to uvicorn's access logger (`serve` hands uvicorn no log
    config of its own, so its records come through here): the place for a filter that rewrites
    what an access line shows, e.g. masking phone numbers in query strings.
    """
    number = python_level(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(number)
    quiet = number if number <= logging.DEBUG else max(number, logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    # uvicorn's own logging config (applied by any earlier uvicorn in this process) gives its loggers
    # handlers of their own and stops them propagating: undo it, so every line comes through here.
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    access = logging.getLogger(ACCESS_LOGGER)
    for existing_filter in list(access.filters):
        access.removeFilter(existing_filter)
    for access_filter in access_log_filters:
        access.addFilter(access_filter)
